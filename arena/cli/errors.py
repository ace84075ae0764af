"""The CLI's one kind of error: a user's mistake, reported as one line and exit code 2."""

from __future__ import annotations

from arena.errors import ArenaError


class UsageError(ArenaError):
    """A command-line mistake (bad option value, unreachable service...): one line, exit code 2."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error or message: what fits in a one-line CLI report."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
