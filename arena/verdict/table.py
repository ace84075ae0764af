"""Runs as evidence: which runs count, and their times to solve per lens.

A *run* is one method x task x configuration x seed, given as a plain dict (see `distinct_runs`) or, on
the service's hot path, as columns of a `RunTable` (numpy arrays: no Python object per run; every
statistic taking runs takes either, with the same result). Only runs that finished normally (status
"succeeded") are evidence; failed and cancelled runs are counted, never treated as unsolved. A repeated
(configuration, seed) is deterministic in evaluations, so it is counted once and reported as a duplicate.

Every statistic is about *time to solve*, looked at through one of two lenses:

- "evaluations": `evaluations_to_solve` of a solved run; an unsolved run is right-censored at the
  `evaluations` it spent (it would have needed more than that, we do not know how many more).
- "cpu_seconds": the same on the run's thread CPU time (`cpu_seconds_to_solve`, censored at
  `cpu_seconds`), because machine load inflates wall time. Old runs without CPU time fall back, run by
  run, to wall `seconds_to_solve` / `seconds`. Wall seconds are reported for information only.
"""

from __future__ import annotations

import collections

import numpy as np

LENSES = ("evaluations", "cpu_seconds")  # time-to-solve lenses
VERDICT_LENSES = ("reliability",) + LENSES  # what a verdict decides: success rate, then the lenses


def distinct_runs(runs: list[dict]) -> tuple[list[dict], int]:
    """The succeeded runs, one per (settings_hash, seed), and the number of duplicates dropped.

    A run is deterministic in evaluations given its configuration and seed, so a repeated
    (configuration, seed) adds no evidence: the lowest id is kept. Failed and cancelled runs are never
    kept (they are not evidence) and never count as duplicates. Kept runs are sorted by id, so that
    every statistic (bootstraps included) is independent of the order the runs came in.

    The reference on dicts; the statistics use `RunTable.distinct`, its columnar twin (the tests check
    that both keep the same runs).
    """
    first_by_key: dict[tuple[str, int], dict] = {}
    duplicates = 0
    for run in runs:
        if run["status"] != "succeeded":
            continue
        key = (run["settings_hash"], run["seed"])
        kept = first_by_key.get(key)
        if kept is None:
            first_by_key[key] = run
            continue
        duplicates += 1
        if run["id"] < kept["id"]:
            first_by_key[key] = run
    return sorted(first_by_key.values(), key=lambda r: r["id"]), duplicates


def _times_to_solve(runs: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{lens: (times, solved)}: a solved run's time to solve, an unsolved run's total spent.

    A solved run missing its *_to_solve falls back to its total (runs stop on solving, so they agree);
    missing CPU times fall back to wall seconds, run by run (old runs did not record CPU time). The
    reference on dicts; the statistics use `RunTable.times_to_solve` (checked equal in the tests).
    """
    evaluations, cpu_seconds, solved = [], [], []
    for run in runs:
        cpu_total = run.get("cpu_seconds")
        if cpu_total is None:
            cpu_total = run["seconds"]
        if run["solved"]:
            to_solve = run["evaluations_to_solve"]
            cpu_to_solve = run.get("cpu_seconds_to_solve")
            if cpu_to_solve is None:
                cpu_to_solve = run["seconds_to_solve"]
            evaluations.append(run["evaluations"] if to_solve is None else to_solve)
            cpu_seconds.append(cpu_total if cpu_to_solve is None else cpu_to_solve)
            solved.append(True)
        else:
            evaluations.append(run["evaluations"])
            cpu_seconds.append(cpu_total)
            solved.append(False)
    solved_array = np.array(solved, dtype=bool)
    return {
        "evaluations": (np.array(evaluations, dtype=np.float64), solved_array),
        "cpu_seconds": (np.array(cpu_seconds, dtype=np.float64), solved_array),
    }


class RunTable:
    """Runs as columns: one numpy array per field, one element per run (the hot path's representation).

    Every statistic reads these arrays; a list of run dicts is converted once (`from_dicts`), and the
    service builds tables straight from database rows (`from_rows`), so 50,000 runs never become 50,000
    Python dicts. Fields (missing values are NaN in the float columns):

    - `id`, `seed` (int64); `key` (int64): the configuration (settings hash) as a code, so that a
      repeated (key, seed) is a duplicate; `succeeded` (bool): status "succeeded", the only evidence;
    - `solved` (bool), `evaluations`, `seconds`, `cpu_seconds`, `evaluations_to_solve`,
      `seconds_to_solve`, `cpu_seconds_to_solve` (float64);
    - `failed`, `cancelled`: how many runs of those statuses the table stands for (counted, not kept).
    """

    NUMBERS = ("evaluations", "seconds", "cpu_seconds", "evaluations_to_solve", "seconds_to_solve", "cpu_seconds_to_solve")
    # The columns of `from_rows`, in order.
    ROW_FIELDS = ("id", "seed", "solved") + NUMBERS
    __slots__ = ("id", "seed", "key", "succeeded", "solved", *NUMBERS, "failed", "cancelled")

    def __init__(self, *, id, seed, key, succeeded, solved, failed: int = 0, cancelled: int = 0, **numbers):
        self.id = np.asarray(id, dtype=np.int64)
        self.seed = np.asarray(seed, dtype=np.int64)
        self.key = np.asarray(key, dtype=np.int64)
        self.succeeded = np.asarray(succeeded, dtype=bool)
        self.solved = np.asarray(solved, dtype=bool)
        for name in self.NUMBERS:
            setattr(self, name, np.asarray(numbers[name], dtype=np.float64))
        self.failed, self.cancelled = int(failed), int(cancelled)

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_dicts(cls, runs: list[dict]) -> RunTable:
        """Runs of any status as dicts (the fields of `distinct_runs`); settings hashes become codes in
        first-seen order."""
        codes: dict = {}
        statuses = collections.Counter(run["status"] for run in runs)

        def column(name: str) -> list:
            return [run.get(name) for run in runs]

        return cls(
            id=column("id"),
            seed=column("seed"),
            key=[codes.setdefault(run["settings_hash"], len(codes)) for run in runs],
            succeeded=[run["status"] == "succeeded" for run in runs],
            solved=[bool(run["solved"]) for run in runs],
            failed=statuses["failed"],
            cancelled=statuses["cancelled"],
            **{name: _floats(column(name)) for name in cls.NUMBERS},
        )

    @classmethod
    def from_rows(cls, rows: list[tuple], key=0, failed: int = 0, cancelled: int = 0) -> RunTable:
        """Succeeded runs as database rows (tuples of `ROW_FIELDS`, None where missing), all of one
        configuration unless `key` gives a code per row; `failed` and `cancelled` are counts."""
        n = len(rows)
        if n == 0:
            matrix = np.empty((0, len(cls.ROW_FIELDS)))
        else:
            # One conversion for the whole block: None -> NaN, booleans -> 0/1 (ids and seeds are
            # 32-bit integers in the schema, exact in float64).
            matrix = np.array(rows, dtype=np.float64)
        columns = dict(zip(cls.ROW_FIELDS, matrix.T))
        return cls(
            id=columns["id"].astype(np.int64),
            seed=columns["seed"].astype(np.int64),
            key=np.broadcast_to(np.asarray(key, dtype=np.int64), (n,)),
            succeeded=np.ones(n, dtype=bool),
            solved=columns["solved"] == 1,
            failed=failed,
            cancelled=cancelled,
            **{name: columns[name] for name in cls.NUMBERS},
        )

    def take(self, index: np.ndarray, failed: int = 0, cancelled: int = 0) -> RunTable:
        """The runs at `index` (an index array or boolean mask), with the given counts."""
        return RunTable(
            id=self.id[index], seed=self.seed[index], key=self.key[index], succeeded=self.succeeded[index],
            solved=self.solved[index], failed=failed, cancelled=cancelled,
            **{name: getattr(self, name)[index] for name in self.NUMBERS},
        )  # fmt: skip

    def distinct(self) -> tuple[RunTable, int]:
        """`distinct_runs` on columns: the succeeded runs, one per (key, seed) keeping the lowest id,
        sorted by id, and the number of duplicates dropped (failed and cancelled runs are neither)."""
        candidates = np.flatnonzero(self.succeeded)
        # Sorted by key, then seed, then id (lexsort: last key is primary): each group's first is kept.
        order = candidates[np.lexsort((self.id[candidates], self.seed[candidates], self.key[candidates]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (self.key[order[1:]] != self.key[order[:-1]]) | (self.seed[order[1:]] != self.seed[order[:-1]])
        kept = order[first]
        kept = kept[np.argsort(self.id[kept], kind="stable")]
        return self.take(kept, self.failed, self.cancelled), len(order) - len(kept)

    def times_to_solve(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """`_times_to_solve` on columns (same rules, same values)."""
        solved = self.solved
        evaluations = np.where(solved & ~np.isnan(self.evaluations_to_solve), self.evaluations_to_solve, self.evaluations)
        cpu_total = np.where(np.isnan(self.cpu_seconds), self.seconds, self.cpu_seconds)
        cpu_to_solve = np.where(np.isnan(self.cpu_seconds_to_solve), self.seconds_to_solve, self.cpu_seconds_to_solve)
        cpu_seconds = np.where(solved & ~np.isnan(cpu_to_solve), cpu_to_solve, cpu_total)
        return {"evaluations": (evaluations, solved.copy()), "cpu_seconds": (cpu_seconds, solved.copy())}


def _floats(values: list) -> np.ndarray:
    """float64 with None as NaN."""
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def as_table(runs: list[dict] | RunTable) -> RunTable:
    """The runs as a `RunTable` (converted once when given as dicts)."""
    return runs if isinstance(runs, RunTable) else RunTable.from_dicts(runs)


def distinct(runs: list[dict] | RunTable) -> tuple[RunTable, int]:
    """The distinct succeeded runs as a `RunTable` and the number of duplicates dropped."""
    return as_table(runs).distinct()


def unrepeatable(runs: list[dict] | RunTable) -> RunTable:
    """The runs with each run its own "seed" (minus its id) for the duplicate rule: for runs that are not
    reproducible (a seconds budget), where a repeated seed is new evidence. Nothing else changes."""
    table = as_table(runs)
    unique = table.take(np.arange(len(table)), table.failed, table.cancelled)
    unique.seed = -table.id
    return unique
