"""The `arena` command. Each module here adds its subcommands; `main` turns user errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from arena.errors import ArenaError


class UsageError(ArenaError):
    """A command-line mistake (bad option value, unreachable service...): one line, exit code 2."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error or message: what fits in a one-line CLI report."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line and exit 2, like ours
        self.exit(2, f"arena: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from arena.cli import client, demo, local, train

    parser = Parser(prog="arena", description="Neuroevolution (GA, CMA-ES) against gradient descent (backprop) on the same network, task and budget.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    train.register(commands)
    local.register(commands)
    client.register(commands)
    demo.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
