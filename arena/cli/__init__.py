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


def interactive(stream=None) -> bool:
    """Whether output goes to a person (a terminal) rather than a pipe, a file or a test."""
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def show_table(headers: list[str], rows: list[list], right: set[int] | None = None, title: str | None = None) -> None:
    """Print a table: drawn by rich on a terminal, plain aligned text (the stable, greppable form) otherwise."""
    from arena.cli.client import table

    if interactive():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # rich is optional at run time: plain text is always right
            pass
        else:
            drawn = Table(title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False)
            for index, header in enumerate(headers):
                drawn.add_column(str(header), justify="right" if index in (right or set()) else "left", overflow="fold")
            for row in rows:
                drawn.add_row(*("" if value is None else str(value) for value in row))
            Console().print(drawn)
            return
    if title:
        print(title)
    print(table(headers, rows, right))


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line and exit 2, like ours
        self.exit(2, f"arena: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from arena import __version__
    from arena.cli import client, demo, export, keys, local, train

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
    client.register(commands)
    export.register(commands)
    demo.register(commands)
    keys.register(commands)
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
