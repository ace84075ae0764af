"""A study's answer as curves: per method, success rate and ERT (with their intervals) against an axis,
and the crossover of each pair of methods (where their ordering flips, and where it cannot be told).

Input: the per-cell comparison bodies the job comparison route serves (`arena.verdict.report.comparison`
on each cell's runs); no statistic is recomputed here, so every cell's verdict is the job verdict (its
tests, Holm family and intervals). No I/O.
"""

from __future__ import annotations

LENS = "evaluations"  # the crossover's lens: ERT in evaluations, failures counted


def _value_words(value) -> str:
    return str(value) if not isinstance(value, list) else ",".join(map(str, value))


def curves(axis: str, cells: list[dict]) -> dict:
    """{method label: [{value, n, solved, success_rate, success_rate_ci, ert_evaluations, ert_evaluations_ci}]}
    in the order of `cells` ({"value", "comparison"}); a method without finished runs in a cell is left out there."""
    out: dict[str, list[dict]] = {}
    for cell in cells:
        for name, stats in ((cell.get("comparison") or {}).get("methods") or {}).items():
            out.setdefault(name, []).append({
                "value": cell["value"], "n": stats["runs"], "solved": stats["solved"],
                "success_rate": stats["success_rate"], "success_rate_ci": stats["success_rate_ci"],
                "ert_evaluations": stats["ert_evaluations"], "ert_evaluations_ci": stats["ert_evaluations_ci"],
            })  # fmt: skip
    return out


def pair_outcomes(cells: list[dict], lens: str = LENS) -> dict[tuple[str, str], list]:
    """{(first, second): [winner label, or None when the cell cannot tell them apart, per cell]}."""
    pairs: dict[tuple[str, str], list] = {}
    for index, cell in enumerate(cells):
        for comparison in (cell.get("comparison") or {}).get("comparisons") or []:
            key = tuple(sorted((comparison["first"], comparison["second"])))
            pairs.setdefault(key, [None] * len(cells))[index] = comparison["verdict"][lens]["winner"]
    return pairs


def crossover(axis: str, values: list, first: str, second: str, winners: list, lens: str = LENS) -> dict:
    """Where the ordering of `first` and `second` flips along the axis, with its uncertainty.

    `winners[i]` is the verdict at `values[i]`: a label, or None (cannot be told apart). A flip is two
    decided cells with different winners; it lies between the last cell decided one way and the first
    decided the other way (the undecided cells between are its uncertainty)."""
    decided = [(i, w) for i, w in enumerate(winners) if w is not None]
    flips = []
    for (i, a), (j, b) in zip(decided, decided[1:]):
        if a != b:
            flips.append({"after": values[i], "before": values[j], "from": a, "to": b, "undecided_between": [values[k] for k in range(i + 1, j)]})
    what = "needs fewer evaluations (ERT, failures counted)" if lens == "evaluations" else f"is better on {lens}"
    segments, start = [], 0
    for k in range(1, len(winners) + 1):  # runs of equal outcome, in words
        if k == len(winners) or winners[k] != winners[start]:
            segments.append((winners[start], values[start], values[k - 1], k - start))
            start = k
    parts = []
    for winner, low, high, count in segments:
        where = f"at {axis} {_value_words(low)}" if count == 1 else f"from {axis} {_value_words(low)} to {_value_words(high)}"
        if winner is None:
            parts.append(f"{where} {first} and {second} cannot be told apart")
        else:
            loser = second if winner == first else first
            parts.append(f"{where} {winner} {what} than {loser}")
    text = "; ".join(parts)
    if flips:
        text += ". The ordering flips " + "; ".join(
            f"between {axis} {_value_words(f['after'])} and {_value_words(f['before'])}" for f in flips
        )
    elif not decided:
        text += ". No crossover: no cell decides this pair"
    else:
        text += ". No crossover on this axis"
    return {"first": first, "second": second, "lens": lens, "winners": winners, "flips": flips, "text": text + "."}


def study_answer(axis: str, cells: list[dict]) -> dict:
    """The curves and every pair's crossover along one axis, over cells {"value", "comparison"} in axis order."""
    values = [cell["value"] for cell in cells]
    return {
        "axis": axis,
        "values": values,
        "curves": curves(axis, cells),
        "crossovers": [crossover(axis, values, a, b, winners) for (a, b), winners in sorted(pair_outcomes(cells).items())],
    }
