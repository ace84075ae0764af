"""The `arena` command: the parser and `main`, which turns user errors into one line and exit code 2.

The package, from the bottom up (each module imports only the ones above it in this list):
    errors    UsageError, first_line
    output    tables and number formats
    http      ServiceClient: the API over HTTP, failures as one line
    options   budget, network, track and --set options shared by `train` and `submit`
    formats   the service's answers (runs, leaderboards, comparisons, summaries) as text
    progress  waiting for jobs with progress bars
    commands, one module per group: train (tasks, train), jobs (submit, jobs, status, cancel,
    leaderboard, compare, summary), local (up, api, worker, migrate), demo, export (export, plot), keys
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from arena.errors import ArenaError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line and exit 2, like ours
        self.exit(2, f"arena: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from arena import __version__
    from arena.cli import demo, export, jobs, keys, local, study, train

    parser = Parser(
        prog="arena",
        description="Neuroevolution (GA, CMA-ES) against gradient descent (backprop) on the same network, task and budget.",
        epilog="Start with `arena tasks`, `arena train --task xor --method ga`, or `arena up` then `arena demo`. "
        "`arena COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"arena {__version__}")
    # Not required: a bare `arena` prints this help and exits 0, as git and pip do.
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    train.register(commands)
    local.register(commands)
    jobs.register(commands)
    export.register(commands)
    demo.register(commands)
    keys.register(commands)
    study.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args) or 0
    except ArenaError as error:
        print(f"arena: {error.message}", file=sys.stderr)
        return 2
    except ValidationError as error:  # a model built directly from options; resolve() words its own errors
        from arena.validation import describe

        print(f"arena: {describe(error.errors()[0])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arena: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `arena tasks | head`: the reader left; not an error worth a traceback
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
