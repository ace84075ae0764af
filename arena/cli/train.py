"""`arena tasks` and `arena train`: the core, in-process, no service needed."""

from __future__ import annotations

import json
import sys
import time

from arena.cli.errors import UsageError
from arena.cli.formats import budget_text
from arena.cli.options import (
    add_architecture_options,
    add_budget_options,
    architecture_from_args,
    budget_from_args,
    load_track,
    method_name,
    parse_settings,
)
from arena.cli.output import interactive, show_table, wrapped_table
from arena.methods import ALGORITHMS, METHODS, describe_settings, label
from arena.runspec import check_seed, resolve
from arena.tasks import TASKS, task_info


def register(commands) -> None:
    tasks = commands.add_parser("tasks", help="list the benchmark tasks", description="List the benchmark tasks.")
    tasks.add_argument("--json", action="store_true", help="print the task list as JSON")
    tasks.add_argument("--settings", action="store_true", help="also list each method's settings with defaults and ranges")
    tasks.set_defaults(handler=list_tasks)

    train = commands.add_parser(
        "train",
        help="train one run in this process and print its result",
        description="Train one run (one method, one task, one seed) in this process.",
    )
    train.add_argument("--task", required=True, help="a task name (see `arena tasks`)")
    train.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    train.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    add_budget_options(train)
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a method setting, e.g. --set population_size=100 or ga.population_size=100 (repeatable)")
    add_architecture_options(train)
    train.add_argument("--track", metavar="NAME|FILE.json", help="car tasks: a built-in track or a JSON file {\"points\": [[x, y], ...], \"width\": w}")
    train.add_argument("--json", action="store_true", help="print the run result (the run contract's fields) as JSON")
    train.add_argument("--weights", action="store_true", help="with --json: include the best weights")
    train.add_argument("--plot", metavar="OUT.png", help="car tasks: draw the best policy's trajectories to a PNG")
    train.set_defaults(handler=train_command)


SCREEN = 100  # `arena tasks --settings` fits this many columns


def list_tasks(args) -> int:
    if args.json:
        print(json.dumps([info.public() for info in TASKS.values()], indent=2))
        return 0
    if args.settings:
        print(format_task_settings())
        return 0
    rows = [[i.name, i.default_architecture.describe(), f"{i.score_name} ({'higher' if i.higher_is_better else 'lower'} is better)", i.description] for i in TASKS.values()]
    if interactive():
        show_table(["task", "default network", "score", "description"], rows)
        return 0
    width = [max(len(r[c]) for r in rows) for c in range(3)]
    print(f"{'task':<{width[0]}}  {'default network':<{width[1]}}  {'score':<{width[2]}}  description")
    for row in rows:
        print(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]:<{width[2]}}  {row[3]}")
    return 0


def tuned_settings(info) -> dict[str, dict]:
    """{algorithm: {setting: value}}: the task's defaults that differ from the algorithm's model defaults."""
    tuned = {}
    for algorithm, values in (info.method_defaults or {}).items():
        module = ALGORITHMS.get(algorithm)
        fields = module.Settings.model_fields if module is not None else {}
        changed = {key: value for key, value in values.items() if key not in fields or fields[key].default != value}
        if changed:
            tuned[algorithm] = changed
    return tuned


def format_task_settings() -> str:
    """Per group of tasks with the same defaults: budget, network and the settings tuned for them; then
    each algorithm's settings with model defaults and ranges. Every line fits SCREEN columns."""
    import textwrap

    groups: dict[tuple, list[str]] = {}
    for info in TASKS.values():
        tuned = tuned_settings(info)
        text = "; ".join(f"{algorithm}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for algorithm, values in tuned.items())
        key = (info.family, budget_text(info.default_budget), info.default_architecture.describe(), text or "(model defaults)")
        groups.setdefault(key, []).append(info.name)
    rows = [[", ".join(names), budget, network, text] for (_family, budget, network, text), names in groups.items()]
    widths = [20, 16, 20]
    widths.append(SCREEN - sum(widths) - 2 * len(widths))
    lines = ["Task defaults: budget, network, and settings tuned per task (others: the model defaults below)."]
    lines.extend(wrapped_table(["tasks", "budget", "network", "tuned settings"], rows, widths))
    lines.append("Override any of them: `arena train --set KEY=VALUE`, `arena submit --set METHOD.KEY=VALUE`.")
    for name, module in ALGORITHMS.items():
        runs_it = [
            f"{m.name} on every task" if m.supervised is m.control else f"{m.name} on {kind} tasks"
            for m in METHODS.values() for kind in ("supervised", "control") if m.algorithm(kind) is module
        ]
        runs_it = list(dict.fromkeys(runs_it))
        lines.append("")
        lines.extend(textwrap.wrap(f"{name} settings ({', '.join(runs_it)}), model defaults:", SCREEN))
        for row in describe_settings(module):
            allowed = ", ".join(map(str, row["choices"])) if "choices" in row else f"{row['range'][0]:g} .. {row['range'][1]:g}"
            text = f"{row['name']:<22} default {row['default']!s:<10} [{allowed}]  {row['help']}"
            lines.extend(textwrap.wrap(text, SCREEN, initial_indent="  ", subsequent_indent=" " * 26, break_on_hyphens=False))
    return "\n".join(lines)


class LiveProgress:
    """One status line on a terminal, refreshed at most ten times a second (cheap on a 1 ms generation)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        score = "-" if progress.score is None else f"{progress.score:.6g}"
        sys.stderr.write(f"\r  step {progress.step:>7}  evaluations {progress.evaluations:>12,}  {progress.seconds:7.2f}s  best {score}   ")
        sys.stderr.flush()

    def close(self):
        if self.enabled and self.last:
            sys.stderr.write("\r" + " " * 90 + "\r")


def train_command(args) -> int:
    from arena.methods import get_method

    args.method = method_name(args.method)
    info = task_info(args.task)
    algorithm = get_method(args.method).algorithm(info.kind).NAME
    spec = resolve(
        args.task,
        args.method,
        budget=budget_from_args(args, info.default_budget),
        settings=parse_settings(args.set, args.method, algorithm),
        architecture=architecture_from_args(args, info.default_architecture),
        task_options=load_track(args.track),
    )
    check_seed(args.seed)
    if args.plot and info.kind != "control":
        raise UsageError("--plot draws car trajectories; it needs a car task")
    from arena.runner import execute  # torch is imported only once the input is valid

    live = LiveProgress(enabled=not args.json and sys.stderr.isatty())
    try:
        result = execute(spec, args.seed, progress=live)
    finally:
        live.close()
    if args.plot:
        from arena.tasks.car.plot import plot_trajectories

        title_info = {"method": label(spec.method, spec.algorithm), "seed": args.seed, "score": result.score}
        plot_trajectories(spec.task, result.weights, spec.architecture, spec.task_options or None, args.plot, title_info=title_info)
    if args.json:
        print(json.dumps({**spec.to_dict(), "seed": args.seed, **result.to_dict(weights=args.weights)}, indent=2))
        return 0
    direction = "higher" if info.higher_is_better else "lower"
    print(f"{label(spec.method, spec.algorithm)} on {spec.task} (seed {args.seed}), network {spec.architecture.describe()} ({spec.architecture.num_parameters} parameters)")
    print(f"  solved:       {'yes' if result.solved else 'no'} ({info.solved_rule})")
    print(f"  score:        {result.score:.6g} {info.score_name} ({direction} is better)")
    if result.solved and result.evaluations_to_solve is not None:
        print(f"  to solve:     {result.evaluations_to_solve:,} evaluations, {result.seconds_to_solve:.3f} s")
    print(f"  spent:        {result.evaluations:,} evaluations, {result.seconds:.3f} s, {result.cpu_seconds:.3f} CPU s (stopped: {result.stopped})")
    for key, value in result.metrics.items():
        if isinstance(value, dict):  # car tasks' compute: one readable line of name value pairs
            value = ", ".join(f"{name} {inner:,.6g}" if isinstance(inner, float) else f"{name} {inner:,}" if isinstance(inner, int) else f"{name} {inner}"
                              for name, inner in value.items())
        print(f"  {key + ':':<13} {value:.6g}" if isinstance(value, float) else f"  {key + ':':<13} {value}")
    if args.plot:
        print(f"  trajectories: {args.plot}")
    return 0
