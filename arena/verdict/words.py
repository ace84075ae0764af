"""The verdict in words: what a decision says, per pair and per lens (no statistics computed here)."""

from __future__ import annotations

# CPU seconds are a property of this machine under its load (docs/statistics.md): the words say so.
LENS_WORDS = {"evaluations": "needs fewer evaluations", "cpu_seconds": "needs less CPU time on this machine"}


def format_p(p: float | None) -> str:
    if p is None:
        return "p unavailable"
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


def undecided(n_first: int, n_second: int) -> str:
    """No test separated the two: "we could not tell at this n", not "they are equal"."""
    return f"no detectable difference (n={n_first} vs {n_second})"


def too_few_runs(n_first: int, n_second: int, minimum: int) -> str:
    return f"no detectable difference: too few runs (n={n_first} vs {n_second}; a verdict needs at least {minimum} each)"


def more_reliable(winner: str, loser: str, solved: dict, n: dict, p: float | None) -> str:
    return f"{winner} more reliable ({solved[winner]}/{n[winner]} vs {solved[loser]}/{n[loser]}, {format_p(p)})"


def faster(winner: str, lens: str, improvement: tuple[float, float, float], p: float | None) -> str:
    """The winner's probability of improvement among solved runs (estimate, low, high), from its side."""
    estimate, low, high = improvement
    return (
        f"{winner} {LENS_WORDS[lens]} when both solve (probability of improvement among solved runs "
        f"{estimate:.2f} [{low:.2f}, {high:.2f}], {format_p(p)})"
    )


def lens_text(comparisons: list[dict], names: list[str], lens: str, overall: str | None) -> str:
    """A lens's verdict in one sentence: the overall winner (if any, among more than two names), then
    each pair's verdict."""
    if not comparisons:
        return "nothing to compare (one method)" if names else "no runs"
    pairs = "; ".join(f"{c['first']} vs {c['second']}: {c['verdict'][lens]['text']}" for c in comparisons)
    return (f"{overall} best. " if overall and len(comparisons) > 1 else "") + pairs


def stopping(action: str, n: int, maximum: int) -> str:
    """Why seeds stopped being added (or why they continue), for the job page and the CLI."""
    saved = f"; {maximum - n} of {maximum} seeds saved" if n < maximum else ""
    return {
        "continue": f"continuing after {n} seeds: some lens is not yet decided",
        "stop-decided": f"stopped at {n} seeds: every lens decided or ruled out a difference of the stated size{saved}",
        "stop-futility": f"stopped at {n} seeds: no detectable difference, and none of the stated size remains plausible{saved}",
        "stop-max": f"stopped at the maximum, {n} seeds: some lens still undecided",
    }[action]
