"""Verdicts and configurations in plain words. The verdict in one sentence, on top of every verdict: the job, leaderboard and summary pages (the
API serves it as `headline`) and the CLI's `compare`, `leaderboard`, `summary` and `demo`.

    On xor, backprop needs about 8x fewer evaluations than GA (95% confidence); all three solve every seed.

Only words here: the decisions and estimates come from arena.verdict (already corrected for multiple
testing), read from the dicts the API serves, so the CLI can word an answer from any server's JSON.
"""

from __future__ import annotations

import json

from arena.errors import ArenaError
from arena.methods import METHODS

CONFIDENCE = "95% confidence"  # the verdict's family-wise error rate is 5% (Holm)
NUMBER_WORDS = {2: "both", 3: "all three", 4: "all four"}


def method_order(names) -> list[str]:
    """The registry's order (backprop, ga, cmaes, then plug-ins), so a page lists methods the same way on every row."""
    known = [name for name in METHODS if name in names]
    return known + sorted(name for name in names if name not in METHODS)


def method_label(name: str, labels: dict | None = None) -> str:
    if labels and labels.get(name):
        return labels[name]
    method = METHODS.get(name)
    return method.label if method is not None else name


def ratio_words(slow: float | None, fast: float | None) -> str:
    """'about 8x ' when the two estimates differ enough to say so; '' otherwise."""
    if not slow or not fast or fast <= 0:
        return ""
    ratio = slow / fast
    if ratio < 1.15:
        return ""
    return f"about {ratio:.1f}x " if ratio < 3 else f"about {ratio:.0f}x "


def sentence(task: str, n: dict, solved: dict, pairs: list[dict], winners: dict, ert: dict | None = None, labels: dict | None = None) -> str:
    """The answer for one task: the evaluations verdict (with the ERT ratio when known), then reliability.

    n, solved: per method, distinct runs and runs solved; pairs: the comparisons, each with
    verdict[lens]["winner"]; winners: lens -> the method better than every other (or None); ert: per
    method, ERT in evaluations (for the "about 8x").
    """
    names = method_order(n)
    ert = ert or {}
    if not names or not any(n.values()):
        return f"On {task}: no finished runs yet."
    word = {name: method_label(name, labels) for name in names}
    if len(names) == 1:
        only = names[0]
        return f"On {task}, only {word[only]} ran: it solved {solved.get(only, 0)}/{n[only]} seeds (nothing to compare it with)."
    if not any(solved.get(name) for name in names):
        sizes = sorted(set(n.values()))
        each = f"{sizes[0]} each" if len(sizes) == 1 else "/".join(str(n[name]) for name in names)
        return f"On {task}, no method solved any seed ({each}): no verdict on speed; a larger budget may tell them apart."

    reliability = _reliability_clause(names, word, pairs, winners.get("reliability"), n, solved)
    from arena.verdict import MIN_RUNS  # deferred: the statistics package is heavy to import for the CLI

    decided_any = any(_decided(pairs, lens) for lens in ("reliability", "evaluations", "cpu_seconds"))
    if not decided_any and any(n[name] < MIN_RUNS for name in names):
        sizes = sorted(set(n.values()))
        at = f"n={sizes[0]} each" if len(sizes) == 1 else "n=" + "/".join(str(n[name]) for name in names)
        return f"On {task}, too few seeds for a verdict ({at}; a verdict needs at least {MIN_RUNS} per method); {reliability}."
    speed = _speed_clause(names, word, pairs, winners.get("evaluations"), ert, n)
    return f"On {task}, {speed}; {reliability}."


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _decided(pairs: list[dict], lens: str) -> list[tuple[str, str]]:
    """(winner, loser) of every pair decided on this lens."""
    out = []
    for pair in pairs:
        won = ((pair.get("verdict") or {}).get(lens) or {}).get("winner")
        if won is not None:
            out.append((won, pair["second"] if won == pair["first"] else pair["first"]))
    return out


def _speed_clause(names, word, pairs, overall, ert, n) -> str:
    decided = _decided(pairs, "evaluations")
    if overall:
        others = sorted((name for name in names if name != overall), key=lambda name: ert.get(name) or float("inf"))
        if len(others) == 1:
            other = others[0]
            return f"{word[overall]} needs {ratio_words(ert.get(other), ert.get(overall))}fewer evaluations than {word[other]} ({CONFIDENCE})"
        if not any(ratio_words(ert.get(other), ert.get(overall)) for other in others):
            return f"{word[overall]} needs fewer evaluations than {_and([word[other] for other in others])} ({CONFIDENCE})"
        parts = [f"{ratio_words(ert.get(other), ert.get(overall))}fewer than {word[other]}" for other in others]
        return f"{word[overall]} needs the fewest evaluations: {_and(parts)} ({CONFIDENCE})"
    if decided:
        losers = {lost for _, lost in decided}
        if len(losers) == 1 and len(decided) > 1:  # "backprop and CMA-ES need fewer evaluations than GA"
            lost = losers.pop()
            winners = [won for won, _ in decided]
            parts = [f"{_and([word[won] for won in winners])} need fewer evaluations than {word[lost]}"]
        else:
            parts = [f"{word[won]} needs {ratio_words(ert.get(lost), ert.get(won))}fewer evaluations than {word[lost]}" for won, lost in decided]
        undecided = len(pairs) - len(decided)
        rest = f"; no detectable difference between the other {'pair' if undecided == 1 else 'pairs'}" if undecided else ""
        return " and ".join(parts) + f" ({CONFIDENCE}){rest}"
    sizes = sorted(set(n.values()))
    at = f"n={sizes[0]} each" if len(sizes) == 1 else "n=" + "/".join(str(n[name]) for name in names)
    return f"no method needs detectably fewer evaluations than {'the other' if len(names) == 2 else 'the others'} ({at})"


def _reliability_clause(names, word, pairs, overall, n, solved) -> str:
    if all(solved.get(name, 0) == n.get(name) for name in names):
        return f"{NUMBER_WORDS.get(len(names), 'every method')} solve every seed" if len(names) > 1 else "it solves every seed"
    counts = ", ".join(f"{word[name]} {solved.get(name, 0)}/{n.get(name, 0)}" for name in names)
    if overall:
        return f"{word[overall]} solves more seeds than {'the other' if len(names) == 2 else 'the others'} ({counts})"
    decided = _decided(pairs, "reliability")
    if decided:
        return " and ".join(f"{word[won]} solves more seeds than {word[lost]}" for won, lost in decided) + f" ({counts})"
    return f"seeds solved: {counts} (no detectable difference)"


# --- the API's answers ----------------------------------------------------------------------------------


def job_headline(comparison: dict) -> str:
    """GET /jobs/{id}/comparison's sentence: per method its statistics (keyed by label) and the pairs."""
    methods = comparison.get("methods") or {}
    key = {stats.get("method", name): name for name, stats in methods.items()}  # method -> its key in `methods`
    n = {method: methods[name].get("runs", 0) for method, name in key.items()}
    solved = {method: methods[name].get("solved", 0) for method, name in key.items()}
    ert = {method: methods[name].get("ert_evaluations") for method, name in key.items()}
    labels = {method: _short_label(methods[name]) for method, name in key.items()}
    pairs = [_by_method(pair, key) for pair in comparison.get("comparisons") or []]
    winners = {lens: _method_of((verdict or {}).get("winner"), key) for lens, verdict in (comparison.get("verdict") or {}).items()}
    return sentence(comparison.get("task", "this task"), n, solved, pairs, winners, ert, labels)


def leaderboard_headline(board: dict) -> str:
    """GET /leaderboard's sentence: each method's best configuration head to head."""
    best = board.get("best") or {}
    entries = board.get("entries") or []
    rows = {}
    for method, chosen in best.items():
        rows[method] = next((e for e in entries if e.get("method") == method and e.get("settings_hash") == chosen.get("settings_hash")), {})
    if not rows and entries:  # one configuration per method at most, or no head to head yet
        for entry in entries:
            rows.setdefault(entry.get("method"), entry)
    n = {method: row.get("runs", 0) for method, row in rows.items()}
    solved = {method: row.get("solved", 0) for method, row in rows.items()}
    ert = {method: row.get("ert_evaluations") for method, row in rows.items()}
    labels = {method: _short_label(row) for method, row in rows.items()}
    winners = {lens: (verdict or {}).get("winner") for lens, verdict in (board.get("verdict") or {}).items()}
    winners = {lens: _method_of(winner, {m: labels.get(m) for m in rows}) for lens, winner in winners.items()}
    pairs = [_by_method(pair, {m: m for m in rows}) for pair in board.get("comparisons") or []]
    return sentence(board.get("task", "this task"), n, solved, pairs, winners, ert, labels)


def task_headline(task: str, verdict: dict, pairs: list[dict]) -> str:
    """GET /summary's sentence for one task (its TaskVerdict and comparisons; no ERT there, so no ratio)."""
    labels = verdict.get("labels") or {}
    return sentence(task, verdict.get("n") or {}, verdict.get("solved") or {}, pairs, verdict.get("winner") or {}, None, _short_labels(labels))


def _short_label(stats: dict) -> str:
    """'GA' for the registry's methods, 'backprop (ppo)' kept as the method's label on car tasks."""
    method = stats.get("method")
    if stats.get("label") and stats.get("algorithm") not in (None, method):
        return stats["label"]
    return method_label(method) if method else stats.get("label", "?")


def _short_labels(labels: dict) -> dict:
    return {method: (label if label != method else method_label(method)) for method, label in labels.items()}


def _method_of(name: str | None, key: dict) -> str | None:
    """A winner named by its key or label -> the method's name."""
    if name is None:
        return None
    for method, label in key.items():
        if name in (method, label):
            return method
    return name


def _by_method(pair: dict, key: dict) -> dict:
    """A comparison whose names (labels on some answers) are method names."""
    first, second = _method_of(pair.get("first"), key), _method_of(pair.get("second"), key)
    verdict = {lens: {**value, "winner": _method_of(value.get("winner"), key)} for lens, value in (pair.get("verdict") or {}).items()}
    return {**pair, "first": first, "second": second, "verdict": verdict}


def with_task_headlines(summary: dict) -> dict:
    """arena.verdict's summary with each task's sentence added (TaskVerdict.headline)."""
    comparisons = summary.get("comparisons") or {}
    tasks = {task: {**verdict, "headline": task_headline(task, verdict, comparisons.get(task) or [])} for task, verdict in (summary.get("tasks") or {}).items()}
    return {**summary, "tasks": tasks, "headline": summary_headline(summary)}


def summary_headline(summary: dict) -> str:
    """Across tasks, in one sentence: on how many tasks each method is best per lens (GET /summary's `methods`)."""
    methods = summary.get("methods") or {}
    tasks = summary.get("tasks") or {}
    if not methods or not tasks:
        return "No finished runs to compare yet."
    names = method_order(methods)
    clauses = []
    lenses = (
        ("evaluations", "fewest evaluations", "no method needs detectably fewer evaluations than every other on any task"),
        ("reliability", "most seeds solved", "no method solves detectably more seeds on any task"),
        ("cpu_seconds", "least CPU time", "no method needs detectably less CPU time than every other on any task"),
    )
    for lens, best, none in lenses:
        won = {name: (methods[name].get(lens) or {}).get("won", 0) for name in names}
        if not any(won.values()):
            clauses.append(none)
            continue
        ranked = sorted((name for name in names if won[name]), key=lambda name: -won[name])
        undecided = len(tasks) - sum(won.values())
        clauses.append(f"{best}: " + ", ".join(f"{method_label(name)} on {won[name]}" for name in ranked) + (f" ({undecided} undecided)" if undecided > 0 else ""))
    many = f"{len(tasks)} task" + ("s" if len(tasks) != 1 else "")
    return f"Across {many}, {'; '.join(clauses)} ({CONFIDENCE}, corrected across tasks)."


# --- configurations ------------------------------------------------------------------------------


def describe_configuration(entry: dict, task: str) -> str:
    """A configuration in a few words: the architecture, the budget, and the settings that differ from the
    task's defaults (most rows use the defaults, and 13 GA settings would not fit on a line)."""
    parts = []
    architecture = entry.get("architecture")
    if architecture:
        sizes = [architecture["input_size"], *architecture["hidden_sizes"], architecture["output_size"]]
        parts.append("-".join(map(str, sizes)))
    budget = entry.get("budget") or {}
    limits = [f"{budget['evaluations']:,} evals" if budget.get("evaluations") else "", f"{budget['seconds']:g} s" if budget.get("seconds") else ""]
    if any(limits):
        parts.append("/".join(l for l in limits if l) + ("" if budget.get("stop_on_solve", True) else " full"))
    parts.extend(f"{key}={value}" for key, value in _non_default_settings(entry, task).items())
    if entry.get("batched"):
        parts.append("batched")
    if entry.get("task_options"):
        parts.append("options=" + json.dumps(entry["task_options"], sort_keys=True)[:40])
    return " ".join(parts)


def _non_default_settings(entry: dict, task: str) -> dict:
    settings = entry.get("settings") or {}
    try:
        from arena.methods import make_settings
        from arena.tasks import task_info

        info = task_info(task)
        algorithm = METHODS[entry["method"]].algorithm(info.kind).NAME
        defaults = make_settings(entry["method"], info.kind, info.method_defaults.get(algorithm)).model_dump(mode="json")
    except (ArenaError, KeyError):
        return {}
    return {key: value for key, value in settings.items() if key in defaults and defaults[key] != value}
