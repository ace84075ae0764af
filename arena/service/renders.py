"""Pictures and replays that cost a child process (Python + torch, about 2.5 s and 270 MB each): one render
per key at a time, at most `RENDER_LIMIT` at once in this API process, results cached.

Used by the trajectory picture (api.py) and the car episodes (dashboard.py), both through `run_child`. Eight concurrent requests
for one uncached run start one render: the first request renders, the others wait for it and share its
bytes (or its error). Requests for different runs queue for one of the `RENDER_LIMIT` slots, so a burst
costs at most that many child processes at a time, however many clients ask.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
from collections import OrderedDict
from typing import Callable, Hashable

from fastapi import HTTPException

logger = logging.getLogger("arena.service")

RENDER_LIMIT = 2  # child processes rendering at once, per API process
# What every child here imports besides its own module: the worker-side network code (torch). The API's
# Docker image (Dockerfile, target `api`) has no torch: there these renders answer 404, not a failed child.
RENDER_NEEDS = ("torch",)
RENDERED, JOINED, CACHED = "rendered", "joined", "cached"  # how a request got its bytes (the X-Arena-Render header)

_slots = threading.BoundedSemaphore(RENDER_LIMIT)  # shared by every cache: the limit is per process


class _Pending:
    def __init__(self):
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


class RenderCache:
    """Bytes by key, computed once at a time per key, least recently used dropped past `size`.

    `get(key, render)` returns (bytes, how): `how` is RENDERED for the request that ran `render`,
    JOINED for one that waited for a render already under way, CACHED otherwise. A failed render is
    not cached: its waiters get its exception, the next request tries again. `renders` counts the
    renders started (what tests assert on).
    """

    def __init__(self, size: int):
        self.size = size
        self.renders = 0
        self._done: OrderedDict[Hashable, bytes] = OrderedDict()
        self._pending: dict[Hashable, _Pending] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> tuple[bytes, str]:
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], CACHED
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = _Pending()
                self.renders += 1
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.value, JOINED
        try:
            with _slots:
                pending.value = render()
        except BaseException as error:
            pending.error = error
            raise
        finally:
            with self._lock:
                if pending.error is None:
                    self._done[key] = pending.value
                    while len(self._done) > self.size:
                        self._done.popitem(last=False)
                del self._pending[key]
            pending.done.set()
        return pending.value, RENDERED

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


def run_child(script: str, job: dict, *, module: str, unavailable: str, doing: str, what: str, starts_with: bytes) -> bytes:
    """Run the Python `script` in a child process, `job` as JSON on its stdin, and return its stdout: the
    worker-side network code (torch) it runs must never be imported into the API process.

    404 `unavailable` when `module` (what the script needs) or torch (`RENDER_NEEDS`) is not in this
    build (found, not imported); 503 "`doing` timed out" after 120 s; 500 "`doing` failed" when the child
    fails or its output does not start with `starts_with` (its stderr is logged as "`what` failed").
    """
    if any(importlib.util.find_spec(name) is None for name in (module, *RENDER_NEEDS)):
        raise HTTPException(status_code=404, detail=unavailable)
    try:
        done = subprocess.run([sys.executable, "-c", script], input=json.dumps(job).encode(), capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise HTTPException(status_code=503, detail=f"{doing} timed out") from None
    if done.returncode != 0 or not done.stdout.startswith(starts_with):
        logger.error("%s failed: %s", what, done.stderr.decode(errors="replace")[-2000:])
        raise HTTPException(status_code=500, detail=f"{doing} failed")
    return done.stdout
