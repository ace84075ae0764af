"""Options shared by `arena train` (one run here) and `arena submit` (a job on the service): the budget,
the network, the task's track and the methods' settings, read and checked the same way by both."""

from __future__ import annotations

import argparse
import json

from arena.cli.errors import UsageError
from arena.contract import Budget
from arena.methods import ALGORITHMS, METHODS, label, parse_value
from arena.validation import did_you_mean


def count(text: str) -> int:
    """A whole number as people write it: 1000000, 1_000_000, 1,000,000 or 1e6."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    try:
        value = float(cleaned) if any(c in cleaned for c in ".eE") else int(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number is needed (1000000, 1_000_000 or 1e6), got {text!r}") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"a whole number is needed, got {text!r}")
    return int(value)


def method_name(text: str) -> str:
    """A method as typed: `GA` and `CMA-ES` (its label) are `ga` and `cmaes`."""
    name = text.strip()
    if name in METHODS:
        return name
    for key, method in METHODS.items():
        if name.lower() in (key.lower(), method.label.lower()):
            return key
    return name  # unknown: get_method's error says so, with its "did you mean"


def add_budget_options(parser) -> None:
    parser.add_argument("--evaluations", type=count, help="budget: forward passes (a backward pass counts as two; agent-steps for car tasks)")
    parser.add_argument("--seconds", type=float, help="budget: wall-clock seconds of training")
    parser.add_argument("--no-stop-on-solve", action="store_true", help="keep training after the task is solved")


def add_architecture_options(parser) -> None:
    parser.add_argument("--hidden", metavar="N,N", help="hidden layer sizes, e.g. 8 or 8,8 ('' for none); input and output sizes come from the task")
    parser.add_argument("--hidden-activation", help="sigmoid, tanh, relu or softsign")
    parser.add_argument("--output-activation", help="identity, sigmoid or tanh")


def budget_from_args(args, default: Budget) -> dict | None:
    """Giving one limit replaces the task's default budget; --no-stop-on-solve alone keeps its limits."""
    if args.evaluations is None and args.seconds is None and not args.no_stop_on_solve:
        return None
    explicit = args.evaluations is not None or args.seconds is not None
    return {
        "evaluations": args.evaluations if explicit else default.evaluations,
        "seconds": args.seconds if explicit else default.seconds,
        "stop_on_solve": not args.no_stop_on_solve,
    }


def architecture_from_args(args, default) -> dict | None:
    if args.hidden is None and args.hidden_activation is None and args.output_activation is None:
        return None
    arch = default.model_dump(mode="json")
    if args.hidden is not None:
        arch["hidden_sizes"] = list(default.with_hidden(args.hidden).hidden_sizes)
    if args.hidden_activation is not None:
        arch["hidden_activation"] = args.hidden_activation
    if args.output_activation is not None:
        arch["output_activation"] = args.output_activation
    return arch


def parse_settings(pairs: list[str], method: str | None = None, algorithm: str | None = None) -> dict:
    """--set KEY=VALUE, or METHOD.KEY=VALUE as `arena submit` takes it (METHOD: this run's method or algorithm)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}")
        prefix, dot, rest = key.partition(".")
        if dot and rest:
            if prefix not in (method, algorithm):
                raise UsageError(f"--set {pair!r}: this run trains {label(method, algorithm) if method else 'one method'}; use KEY=VALUE or {method}.KEY=VALUE")
            key = rest.strip()
        settings[key] = parse_value(value)
    return settings


def load_track(value: str | None) -> dict | None:
    if value is None:
        return None
    if not value.endswith(".json"):
        return {"track": value}
    try:
        with open(value) as handle:
            return {"track": json.load(handle)}
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"cannot read track file {value!r}: {error}") from None


def parse_method_setting(item: str, methods: list[str] | None = None, kind: str | None = None) -> list[tuple[str, str, object]]:
    """--set METHOD.KEY=VALUE -> [(METHOD, KEY, VALUE)]. KEY=VALUE alone, as `arena train --set` takes it, goes
    to each of `methods` whose settings (for this kind of task) have KEY."""
    name, equals, text = item.partition("=")
    prefix, dot, key = name.strip().partition(".")
    if equals and not dot and prefix and text.strip() and methods:
        if len(methods) == 1:
            return [(methods[0], prefix.strip(), parse_value(text.strip()))]
        having = [m for m in methods if kind and prefix.strip() in METHODS[m].algorithm(kind).Settings.model_fields]
        if not having:
            raise UsageError(f"--set {item!r}: none of {', '.join(methods)} has a setting {prefix.strip()!r}; see `arena tasks --settings`")
        return [(m, prefix.strip(), parse_value(text.strip())) for m in having]
    if not equals or not dot or not key or not text.strip():
        raise UsageError(f"--set wants METHOD.KEY=VALUE (e.g. ga.population_size=100), got {item!r}")
    if prefix not in METHODS and prefix not in ALGORITHMS:
        raise UsageError(f"--set {item!r}: unknown method {prefix!r}{did_you_mean(prefix, METHODS)}; valid methods: {', '.join(METHODS)}")
    return [(prefix, key.strip(), parse_value(text.strip()))]
