"""Waiting for jobs on the service, with one progress bar per job and method."""

from __future__ import annotations

import sys
import time

from arena.cli.http import FINISHED, ServiceClient
from arena.cli.output import bar
from arena.errors import ArenaError


def wait_for_jobs(client: ServiceClient, job_ids: list[str], show_progress: bool = True, poll_seconds: float = 0.5) -> list[dict]:
    """Poll until every job is finished; draw one progress bar per job and method meanwhile."""
    display = ProgressDisplay(sys.stdout) if show_progress else None
    while True:
        jobs = [client.get(f"/jobs/{job_id}") for job_id in job_ids]
        if display:
            display.update(jobs)
        if all(job.get("status") in FINISHED for job in jobs):
            if display:
                display.finish()
            return jobs
        time.sleep(poll_seconds)


def job_budget(job: dict) -> dict:
    """The budget every run of a job has: as submitted, or else the task's default."""
    budget = (job.get("request") or {}).get("budget")
    if budget:
        return budget
    try:
        from arena.tasks import task_info

        return task_info(job.get("task")).default_budget.model_dump()
    except ArenaError:  # a task this client does not know (a newer server): no bar, only counts
        return {}


def run_fraction(run: dict, budget: dict) -> float:
    """How far a run is, 0..1: finished runs are done; running ones by their share of the budget."""
    if run.get("status") in FINISHED:
        return 1.0
    fractions = []
    if budget.get("evaluations") and run.get("progress_evaluations") is not None:
        fractions.append(run["progress_evaluations"] / budget["evaluations"])
    if budget.get("seconds") and run.get("progress_seconds") is not None:
        fractions.append(run["progress_seconds"] / budget["seconds"])
    return min(max(fractions, default=0.0), 0.99)


class ProgressDisplay:
    """One line per job: per method a bar, runs finished/total and runs solved.

    On a terminal the lines are redrawn in place (or, when they would not fit, one line for all jobs).
    Elsewhere (a log, a pipe, a test) a job's line is printed when its counts change, or, with several
    jobs, when it finishes, so the output stays readable as plain text.
    """

    BAR_WIDTH = 16

    def __init__(self, stream):
        self.stream = stream
        self.interactive = stream.isatty()
        self.drawn_lines = 0
        self.last_printed: dict[object, str] = {}

    @staticmethod
    def method_counts(runs: list[dict], budget: dict) -> dict[str, tuple[float, int, int, int, int]]:
        """{method: (fraction done, finished, total, solved, failed)}"""
        counts = {}
        for method in dict.fromkeys(r.get("method") for r in runs):
            mine = [r for r in runs if r.get("method") == method]
            counts[method] = (
                sum(run_fraction(r, budget) for r in mine) / max(len(mine), 1),
                sum(r.get("status") in FINISHED for r in mine),
                len(mine),
                sum(bool(r.get("solved")) for r in mine),
                sum(r.get("status") == "failed" for r in mine),
            )
        return counts

    def describe(self, label: str, counts: dict) -> str:
        parts = []
        for method, (fraction, done, total, solved, failed) in counts.items():
            text = f"{method} [{bar(fraction, self.BAR_WIDTH)}] {done}/{total} runs, {solved} solved"
            parts.append(text + (f", {failed} failed" if failed else ""))
        return f"{label:<12} " + "   ".join(parts)

    def update(self, jobs: list[dict]) -> None:
        rows = [(job.get("id"), job.get("status") in FINISHED, self.describe(job.get("task", "?"), self.method_counts(job.get("runs", []), job_budget(job)))) for job in jobs]
        if self.interactive:
            import shutil

            if len(rows) >= shutil.get_terminal_size().lines - 1:  # would scroll: one line for everything
                every_run = [run for job in jobs for run in job.get("runs", [])]
                finished = sum(done for _, done, _ in rows)
                rows = [(None, False, self.describe(f"{finished}/{len(jobs)} jobs", self.method_counts(every_run, {})))]
            if self.drawn_lines:
                self.stream.write(f"\x1b[{self.drawn_lines}F")  # back to the first line drawn last time
            for _, _, text in rows:
                self.stream.write(f"\x1b[2K{text}\n")
            self.drawn_lines = len(rows)
        else:
            for key, finished, text in rows:
                if self.last_printed.get(key) != text and (finished or len(rows) == 1):
                    self.last_printed[key] = text
                    self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self.drawn_lines = 0
