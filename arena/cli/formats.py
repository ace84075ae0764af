"""The service's answers as text: runs, leaderboards, comparisons and summaries, with their verdicts.

Pure functions from the API's JSON to strings: `arena submit --wait`, `status`, `leaderboard`, `compare`,
`summary` and `demo` print them, and the tests read them.
"""

from __future__ import annotations

from arena.cli.errors import first_line
from arena.cli.http import FINISHED
from arena.cli.output import number, p_value, short, table, with_interval
from arena.service.headline import describe_configuration, job_headline, leaderboard_headline, method_label, method_order, summary_headline

# What each statistic's name means, printed under the tables that use it (the pages show the same as tooltips).
LEGEND = {
    "n": "n: distinct seeds that finished",
    "dup": "dup: repeated (configuration, seed) runs, counted once",
    "solved": "solved: seeds solved / seeds [95% interval of the success rate]",
    "ERT": "ERT: expected running time, evaluations spent by all runs / runs solved [95% bootstrap interval]",
    "KM": "KM median: evaluations by which half the runs solved (Kaplan-Meier; unsolved runs count as censored)",
    "P(first better)": "P(first better): chance that a run of the first method needs less than one of the second [95% interval]",
}


def legend(*names: str) -> list[str]:
    return [LEGEND[name] for name in names]


def status_words(status: str | None, solved) -> str | None:
    """A run that ran to the end of its budget without solving: "finished, not solved", not "succeeded"."""
    return "finished, not solved" if status == "succeeded" and solved is False else status



def format_runs(job: dict) -> str:
    """One row per run: its result once finished, its progress (best so far) while running."""
    rows = []
    for run in job.get("runs", []):
        finished = run.get("status") in FINISHED
        rows.append(
            [
                run.get("id"),
                run.get("method"),
                run.get("seed"),
                status_words(run.get("status"), run.get("solved")),
                number(run.get("score") if finished else run.get("progress_score")),
                number(run.get("solved")),
                number(run.get("evaluations") if finished else run.get("progress_evaluations")),
                number(run.get("seconds") if finished else run.get("progress_seconds"), 3),
                number(run.get("evaluations_to_solve")),
                first_line(run["error"]) if run.get("error") else None,
            ]
        )
    headers = ["run", "method", "seed", "status", "score", "solved", "evaluations", "seconds", "evals to solve", "error"]
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return table(headers, rows, right={0, 2, 4, 6, 7, 8})


LENSES = (("reliability", "reliability"), ("evaluations", "evaluations"), ("cpu_seconds", "CPU seconds"))


def _km_median(stats: dict, lens: str = "evaluations", seconds: bool = False) -> str | None:
    median = ((stats.get("kaplan_meier") or {}).get(lens) or {}).get("median") or {}
    if median.get("estimate") is None:
        return None
    return with_interval(median["estimate"], [median.get("low"), median.get("high")], seconds)


def _solved(stats: dict) -> str:
    text = f"{stats.get('solved', 0)}/{stats.get('runs', 0)}"
    interval = stats.get("success_rate_ci")
    return text + (f" [{interval[0]:.0%}-{interval[1]:.0%}]" if interval else "")


def format_verdict_lines(verdicts: dict, comparisons: list[dict]) -> list[str]:
    """Per lens: the overall verdict, then each decided pair in words (one line each, to fit a screen)."""
    lines = []
    nothing_solved = bool(comparisons) and not any(count for pair in comparisons for count in (pair.get("solved") or {}).values())
    for lens, title in LENSES:
        overall = (verdicts.get(lens) or {}).get("winner")
        decided = [pair for pair in comparisons if pair["verdict"][lens]["winner"] is not None]
        if nothing_solved and lens != "reliability":
            lines.append(f"{title}: not measurable, no method solved any run")
            continue
        if not decided:
            sizes = sorted({n for pair in comparisons for n in pair["n"].values()})
            n = f"n={sizes[0]}" if len(sizes) == 1 else f"n={sizes[0]}..{sizes[-1]}" if sizes else "no runs"
            lines.append(f"{title}: no detectable difference between any two methods ({n} each)")
            continue
        lines.append(f"{title}: {overall} better than every other method" if overall else f"{title}:")
        for pair in comparisons:
            lines.append(f"  {pair['first']} vs {pair['second']}: {pair['verdict'][lens]['text']}")
    return lines


def format_leaderboard(board: dict) -> str:
    """GET /leaderboard as a table: one row per configuration, best first, then the verdict per lens."""
    task = board.get("task", "?")
    direction = "higher" if board.get("higher_is_better") else "lower"
    lines = [f"{task}: {board.get('score_name', 'score')} ({direction} is better)"]
    entries = board.get("entries", [])
    if not entries:
        return lines[0] + "\n(no finished runs yet)"
    lines.append(board.get("headline") or leaderboard_headline(board))
    rows = []
    for entry in entries:
        rows.append(
            [
                entry.get("rank"),
                entry.get("label") or entry.get("method"),
                describe_configuration(entry, task),
                _solved(entry),
                with_interval(entry.get("ert_evaluations"), entry.get("ert_evaluations_ci")),
                _km_median(entry),
                short(entry.get("ert_seconds"), seconds=True) if entry.get("ert_seconds") is not None else None,
                "=" if entry.get("tied_with_previous") else "",
            ]
        )
    headers = ["#", "method", "configuration", "solved [95% CI]", "ERT evals [CI]", "KM median evals", "ERT cpu s", "tie"]
    lines.append(table(headers, rows, right={0}))
    lines.append("ranked by success rate, then ERT in evaluations; tie '=': cannot be told apart from the row above")
    lines.extend(legend("solved", "ERT", "KM"))
    if board.get("duplicates"):
        lines.append(f"{board['duplicates']} repeated (configuration, seed) runs counted once")
    best = board.get("best") or {}
    if len(best) > 1:
        lines.append("")
        lines.append("best configuration of each method, head to head (Holm-corrected):")
        lines.extend(format_verdict_lines(board.get("verdict") or {}, board.get("comparisons") or []))
    return "\n".join(lines)


def format_comparison(comparison: dict) -> str:
    """GET /jobs/{id}/comparison: each method's statistics, each pair, and the verdict per lens."""
    lines = [f"job {comparison.get('job_id')}: {comparison.get('task')}, {comparison.get('status')}"]
    lines.append(comparison.get("headline") or job_headline(comparison))
    lines.append("")
    rows = []
    for name, stats in (comparison.get("methods") or {}).items():
        rows.append(
            [
                name, stats.get("runs"), stats.get("duplicates") or "", _solved(stats),
                with_interval(stats.get("ert_evaluations"), stats.get("ert_evaluations_ci")), _km_median(stats),
                with_interval(stats.get("ert_seconds"), stats.get("ert_seconds_ci"), seconds=True),
            ]
        )  # fmt: skip
    lines.append(table(["method", "n", "dup", "solved [95% CI]", "ERT evals [CI]", "KM median evals", "ERT cpu s [CI]"], rows, right={1, 2}))
    lines.extend(legend("n", "dup", "solved", "ERT", "KM"))
    pairs = []
    for pair in comparison.get("comparisons") or []:
        improvement = pair.get("probability_of_improvement") or {}

        def poi(lens):
            value = improvement.get(lens) or {}
            if value.get("estimate") is None:
                return None
            return f"{value['estimate']:.2f} [{value['low']:.2f}-{value['high']:.2f}]"

        adjusted = pair.get("logrank_p_adjusted") or {}
        pairs.append(
            [
                f"{pair['first']} vs {pair['second']}", poi("evaluations"), p_value(adjusted.get("evaluations")),
                poi("cpu_seconds"), p_value(adjusted.get("cpu_seconds")), p_value(pair.get("success_p_adjusted")),
            ]
        )  # fmt: skip
    if pairs:
        lines.append("")
        headers = ["pair", "P(first better) evals", "log-rank p", "P(first better) cpu", "log-rank p", "success p"]
        lines.append(table(headers, pairs))
        lines.append("p-values Holm-corrected within each lens's family; " + LEGEND["P(first better)"])
    lines.append("")
    lines.extend(format_verdict_lines(comparison.get("verdict") or {}, comparison.get("comparisons") or []))
    return "\n".join(lines)


def format_verdict_table(summary: dict) -> str:
    """GET /summary as one table: a row per task, a column per lens (the winner, or the pairs decided)."""
    tasks = summary.get("tasks") or {}
    if not tasks:
        return "(no finished runs to compare)"
    rows = []
    for name, task in tasks.items():
        n = task.get("n") or {}
        counts = sorted(set(n.values()))
        rows.append([name, str(counts[0]) if len(counts) == 1 else "/".join(str(n[m]) for m in method_order(n))]
                    + [_pairs_cell(summary, name, lens) for lens, _ in LENSES])  # fmt: skip
    lines = [table(["task", "n", *(title for _, title in LENSES)], rows, right={1})]
    lines.append("n: distinct seeds per method. A cell: the method better than every other, or the pairs decided")
    lines.append("(\"backprop fewer than GA\": backprop needs fewer evaluations), or no detectable difference at that n.")
    lines.append("Holm-corrected across every task: each decision holds at 95% confidence.")
    return "\n".join(lines)


CELL_WORDS = {  # lens: (the winner of every pair, one pair's winner)
    "reliability": ("{} most reliable", "{} more reliable than {}"),
    "evaluations": ("{} fewest", "{} fewer than {}"),
    "cpu_seconds": ("{} least CPU", "{} less CPU than {}"),
}


def _pairs_cell(summary: dict, task_name: str, lens: str) -> str:
    """The pairs decided on one lens in words ("backprop, CMA-ES fewer than GA"), winners grouped by loser,
    in the registry's method order."""
    task = summary["tasks"][task_name]
    labels = task.get("labels") or {}
    word = {name: method_label(name, labels if labels.get(name) != name else None) for name in labels}
    every, one = CELL_WORDS[lens]
    if lens != "reliability" and len(labels) > 1 and not any((task.get("solved") or {}).values()):
        return "nothing solved"
    winner = (task.get("winner") or {}).get(lens)
    if winner:
        return every.format(word.get(winner, winner))
    beaten_by: dict[str, list[str]] = {}
    for pair in (summary.get("comparisons") or {}).get(task_name, []):
        won = pair["verdict"][lens]["winner"]
        if won is not None:
            lost = pair["second"] if won == pair["first"] else pair["first"]
            beaten_by.setdefault(lost, []).append(won)
    if beaten_by:
        return "; ".join(one.format(", ".join(word.get(w, w) for w in method_order(winners)), word.get(lost, lost))
                         for lost, winners in sorted(beaten_by.items(), key=lambda item: method_order(beaten_by).index(item[0])))
    return "no difference" if len(labels) > 1 else "(one method)"


def format_summary(summary: dict) -> str:
    """GET /summary: tasks won / lost / undecided per method and lens, the verdict table, profiles."""
    methods = summary.get("methods") or {}
    if not methods:
        return "(no finished runs yet)"
    rows = []
    for method in method_order(methods):
        rows.append([method] + ["{won}/{lost}/{undecided}".format(**methods[method][lens]) for lens, _ in LENSES])
    lines = [summary_headline(summary), ""]
    lines.append("tasks won/lost/undecided (each method's best configuration per task):")
    lines.append(table(["method", *(title for _, title in LENSES)], rows, right={1, 2, 3}))
    lines.append("")
    lines.append(format_verdict_table(summary))
    profile = (summary.get("performance_profiles") or {}).get("evaluations") or {}
    tau = profile.get("tau") or []
    if tau:
        lines.append("")
        lines.append("performance profile (evaluations): share of tasks with ERT within tau x the best")
        marks = [1.0, 2.0, 10.0, 100.0]
        profile_rows = []
        for method in method_order(methods):
            values = profile.get(method) or []
            cells = []
            for mark in marks:
                inside = [v for t, v in zip(tau, values) if t <= mark * (1 + 1e-9)]
                cells.append(f"{inside[-1]:.0%}" if inside else "")
            profile_rows.append([method, *cells])
        lines.append(table(["method", *(f"tau={m:g}" for m in marks)], profile_rows, right={1, 2, 3, 4}))
    return "\n".join(lines)


def budget_text(budget) -> str:
    limits = [f"{short(budget.evaluations)} evals" if budget.evaluations else "", f"{budget.seconds:g} s" if budget.seconds else ""]
    return ", ".join(limit for limit in limits if limit) + ("" if budget.stop_on_solve else " (full)")
