"""Plain output: tables (rich on a terminal, aligned text elsewhere) and the number formats every command uses."""

from __future__ import annotations

import sys


def interactive(stream=None) -> bool:
    """Whether output goes to a person (a terminal) rather than a pipe, a file or a test."""
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def show_table(headers: list[str], rows: list[list], right: set[int] | None = None, title: str | None = None) -> None:
    """Print a table: drawn by rich on a terminal, plain aligned text (the stable, greppable form) otherwise."""
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


def table(headers: list[str], rows: list[list], right: set[int] | None = None) -> str:
    """A plain-text table; columns in `right` (numbers) are right-aligned."""
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def number(value, digits: int = 4) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:  # evaluations (medians are floats): 15,690 rather than 1.569e+04
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def short(value, seconds: bool = False) -> str:
    """A number in a few characters: 950, 12.3k, 1.25M; seconds with 3 significant digits."""
    if value is None:
        return "?"
    if seconds:
        return f"{value:.3g}"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if magnitude >= 10 else f"{value:.3g}"


def with_interval(estimate, interval, seconds: bool = False) -> str | None:
    """'1.2k [900-2.1k]'; an unbounded high end is 'inf'; None without an estimate."""
    if estimate is None:
        return None
    if not interval:
        return short(estimate, seconds)
    low, high = interval
    return f"{short(estimate, seconds)} [{short(low, seconds)}-{'inf' if high is None else short(high, seconds)}]"


def p_value(value) -> str | None:
    if value is None:
        return None
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def bar(fraction: float, width: int) -> str:
    filled = int(round(fraction * width))
    return "#" * filled + "-" * (width - filled)


def wrapped_table(headers: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    """A plain-text table whose cells wrap inside fixed column widths (the last column takes the rest)."""
    import textwrap

    def lines_of(cells):
        wrapped = [textwrap.wrap(str(cell), width, break_on_hyphens=False) or [""] for cell, width in zip(cells, widths)]
        height = max(len(column) for column in wrapped)
        return ["  ".join(f"{(column[k] if k < len(column) else ''):<{width}}" for column, width in zip(wrapped, widths)).rstrip() for k in range(height)]

    out = lines_of(headers) + ["  ".join("-" * width for width in widths)]
    for row in rows:
        out.extend(lines_of(row))
    return out
