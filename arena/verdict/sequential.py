"""Seeds until the answer is clear: after each round of seeds, continue or stop (a pure function).

A job that asks for `seeds: {"min": 10, "max": 200, "until": "decided"}` is looked at after `min` seeds
and then after every `round_size` more, up to `max`: the looks are fixed in advance, so the information
fraction of look j is t_j = n_j / max. At each look every lens (reliability, and each speed lens) of
every pair is tested with the same exact tests as a fixed-n verdict (`significance`), at a *nominal*
level from an O'Brien-Fleming-type alpha-spending function (Lan & DeMets 1983):

    alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)),    look j tests at alpha(t_j) - alpha(t_{j-1}),

split equally across the lenses (Bonferroni) and Holm-corrected across pairs within a lens. Summed over
the looks, the levels are at most alpha(1) = alpha, so the chance of any false "better" over all looks
and lenses is at most 5% whatever the tests' correlation (no normal approximation is needed, which
keeps the exact tests exact). O'Brien-Fleming spending keeps early looks strict: the first look at 10 of
200 seeds tests at ~1e-10, so a few lucky seeds cannot decide.

A lens is *settled* when it is decided, or futile: the 95% interval of its effect lies inside the
stated size (`Plan.success_difference` for reliability, `Plan.improvement` for the probability of
improvement among solved runs), so no difference that large remains plausible; or when it cannot be
compared (a side never solved: speed among solved runs has no answer, reliability says it). Futility is
non-binding (stopping early for it only lowers the false-positive rate). The action:

- "continue" (with `next_n`) while some lens is unsettled and `max` is not reached;
- "stop-decided" when every lens is settled and at least one was decided;
- "stop-futility" when every lens is settled and none was decided ("no detectable difference" of the
  stated size);
- "stop-max" at `max` seeds with some lens still unsettled.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from arena.verdict import words
from arena.verdict.comparisons import ALPHA, holm
from arena.verdict.significance import a12_with_interval, fisher_p, rank_test_p
from arena.verdict.table import LENSES, VERDICT_LENSES, RunTable, distinct

ACTIONS = ("continue", "stop-decided", "stop-futility", "stop-max")


@dataclasses.dataclass(frozen=True)
class Plan:
    """When to look and what counts as "no difference worth finding"."""

    minimum: int = 10  # seeds at the first look
    maximum: int = 200  # seeds at the last look
    round_size: int = 10  # seeds added between looks
    alpha: float = ALPHA  # family-wise false-positive rate over all looks and lenses
    success_difference: float = 0.2  # reliability is futile when |difference| < this is all that remains plausible
    improvement: float = 0.64  # a speed lens is futile when its probability of improvement is inside [0.36, 0.64]

    def __post_init__(self):
        if not 1 <= self.minimum <= self.maximum or self.round_size < 1:
            raise ValueError(f"seeds need 1 <= min <= max and a round of at least 1, got {self}")

    def looks(self) -> list[int]:
        """The seed counts at which the runs are looked at: min, min + round, ..., max."""
        return sorted(set(range(self.minimum, self.maximum, self.round_size)) | {self.maximum})


def spent(fraction: float, alpha: float) -> float:
    """O'Brien-Fleming-type Lan-DeMets spending: the alpha spent by information fraction t."""
    from scipy import stats

    if fraction <= 0:
        return 0.0
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(min(fraction, 1.0))))


def nominal_level(n: int, plan: Plan) -> float:
    """The level the look at n seeds tests at, over all lenses: the alpha spent since the previous look."""
    looks = plan.looks()
    if n not in looks:
        raise ValueError(f"{n} seeds is not a planned look ({looks})")
    index = looks.index(n)
    previous = looks[index - 1] / plan.maximum if index else 0.0
    return spent(n / plan.maximum, plan.alpha) - spent(previous, plan.alpha)


def _samples(runs: list[dict] | RunTable | dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{lens: (times, solved)} from runs (dicts or a RunTable), or as given."""
    if isinstance(runs, dict):
        return runs
    kept, _ = distinct(runs)
    return kept.times_to_solve()


def decide(groups: dict[str, list[dict] | RunTable | dict], n: int, plan: Plan = Plan()) -> dict:
    """Continue or stop after the look at `n` seeds (a planned look), given each method's runs so far
    ({name: runs, RunTable, or {lens: (times, solved)}}; a lens missing from the samples is skipped).

    Returns {"action": one of ACTIONS, "n", "next_n" (when continuing), "level" (this look's nominal
    level per lens), "lenses": {lens: {"winner", "settled", "reason", "pairs": [...]}}, "reason": words}.
    """
    samples = {name: _samples(runs) for name, runs in groups.items()}
    names = sorted(samples)
    lenses = [lens for lens in VERDICT_LENSES if lens == "reliability" or all(lens in s for s in samples.values())]
    first_lens = next(lens for lens in LENSES if all(lens in s for s in samples.values()))
    level = nominal_level(n, plan) / len(lenses)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    result_lenses = {}
    for lens in lenses:
        tests = []
        for a, b in pairs:
            source = first_lens if lens == "reliability" else lens  # reliability reads any lens's solved flags
            (ta, sa), (tb, sb) = samples[a][source], samples[b][source]
            tests.append(_pair(lens, ta, sa, tb, sb, plan))
        adjusted = holm([t["p"] for t in tests])
        for test, p, (a, b) in zip(tests, adjusted, pairs):
            test["p_adjusted"] = p
            decided = p is not None and p < level and test["direction"] != 0
            test["winner"] = (a if test["direction"] > 0 else b) if decided else None
            test["settled"] = decided or test["futile"] or not test["comparable"]
            test["first"], test["second"] = a, b
        result_lenses[lens] = {
            "winner": _overall_winner(tests, names),
            "settled": all(t["settled"] for t in tests),
            "decided": any(t["winner"] for t in tests),
            "pairs": tests,
        }
    settled = all(lens["settled"] for lens in result_lenses.values())
    any_decided = any(lens["decided"] for lens in result_lenses.values())
    if settled:
        action = "stop-decided" if any_decided else "stop-futility"
    elif n >= plan.maximum:
        action = "stop-max"
    else:
        action = "continue"
    result = {"action": action, "n": n, "level": level, "lenses": result_lenses, "reason": words.stopping(action, n, plan.maximum)}
    if action == "continue":
        result["next_n"] = next(look for look in plan.looks() if look > n)
    return result


def _overall_winner(tests: list[dict], names: list[str]) -> str | None:
    """The name that won every comparable pair it is in (and is in at least one), else None."""
    for name in names:
        mine = [t for t in tests if name in (t["first"], t["second"]) and t["comparable"]]
        if mine and all(t["winner"] == name for t in mine):
            return name
    return None


def _pair(lens: str, ta, sa, tb, sb, plan: Plan) -> dict:
    """One pair on one lens: the exact p-value, the direction (+1: first better), futility, and whether
    the lens can compare them at all."""
    if lens == "reliability":
        n_a, n_b = len(sa), len(sb)
        p = fisher_p(int(sa.sum()), n_a, int(sb.sum()), n_b)
        difference = sa.mean() - sb.mean() if n_a and n_b else 0.0
        from statsmodels.stats.proportion import confint_proportions_2indep

        low, high = confint_proportions_2indep(int(sa.sum()), n_a, int(sb.sum()), n_b, method="newcomb", compare="diff")
        futile = -plan.success_difference < low and high < plan.success_difference
        return {"p": p, "direction": int(np.sign(difference)), "futile": bool(futile), "comparable": True}
    solved_a, solved_b = ta[sa], tb[sb]
    if not len(solved_a) or not len(solved_b):
        return {"p": None, "direction": 0, "futile": False, "comparable": False}
    improvement = a12_with_interval(solved_a, solved_b)
    futile = 1 - plan.improvement < improvement["low"] and improvement["high"] < plan.improvement
    direction = int(np.sign(improvement["estimate"] - 0.5))
    return {"p": rank_test_p(solved_a, solved_b), "direction": direction, "futile": bool(futile), "comparable": True}
