"""The statistics the API serves, computed once per task version and kept (leaderboards, summaries,
job comparisons), each cache bounded.

Recorded results never change, and every transaction that finishes a run bumps its task's version, so a
cached answer is exact until the version moves. Bootstraps (capped in arena.verdict) therefore run once per
task version.
"""

from __future__ import annotations

import gc
import threading

from fastapi import Response
from sqlalchemy.orm import Session

from arena.service import schemas
from arena.service.deps import json_response
from arena.service.headline import describe_configuration, leaderboard_headline
from arena.store import queries
from arena.verdict import report as stats

SUMMARY_CACHE_SIZE = 16


class TaskResults:
    """A task's leaderboard, as sent, and each method's best configuration's runs (for the summary)."""

    def __init__(self, version: int, response: Response, best: dict[str, dict]):
        self.version, self.response, self.best = version, response, best


def task_results(session: Session, info, version: int) -> TaskResults:
    cached = leaderboard_cache.get(info.name)
    if cached is not None and cached.version == version:
        return cached
    with computing:  # one computation at a time: a burst of cold requests computes once
        cached = leaderboard_cache.get(info.name)
        if cached is not None and cached.version == version:
            return cached
        freeze_heap_once()
        # Columns per configuration (numpy arrays, no dict per run): the cold path at 100,000 runs.
        tables = queries.task_run_tables(session, info.name)
        body, best = stats.leaderboard(tables, queries.configurations(session, info.name, sorted(tables)))
        body = {**body, "entries": [{**entry, "configuration": describe_configuration(entry, info.name)} for entry in body.get("entries", [])]}
        response = json_response(schemas.Leaderboard, task=info.name, score_name=info.score_name, higher_is_better=info.higher_is_better,
                                 headline=leaderboard_headline({"task": info.name, **body}), **body)
        results = TaskResults(version, response, best)
        leaderboard_cache[info.name] = results
        return results


leaderboard_cache: dict[str, TaskResults] = {}  # task -> its results at a leaderboard version
summary_cache: dict[object, Response] = {}  # key: every task's version (or the jobs asked for) -> response
comparison_cache: dict[tuple, Response] = {}  # key: (job id, its task's version, its status and run counts) -> response
computing = threading.Lock()
_heap_frozen = False


def freeze_heap_once() -> None:
    """Before the first statistics: import scipy and statsmodels (deferred so that start-up stays
    light), collect, and move every object alive to the garbage collector's permanent generation
    (`gc.freeze`). Those modules bring ~150,000 long-lived objects; without this, each full collection
    walks them all, and one lands every few cold leaderboards, adding ~0.1-0.3 s to that request."""
    global _heap_frozen
    if _heap_frozen:
        return
    import scipy.stats  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401

    gc.collect()
    gc.freeze()
    _heap_frozen = True


def remember(cache: dict, key, value, size: int = SUMMARY_CACHE_SIZE) -> None:
    """Keep `value` under `key`, dropping the oldest entries past `size` (memory stays bounded)."""
    cache[key] = value
    while len(cache) > size:
        cache.pop(next(iter(cache)))
