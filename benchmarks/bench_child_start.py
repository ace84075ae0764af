"""How long a worker's new pool process takes to start, with and without the parent's warm imports,
idle and under CPU load (busy-loop processes on every core): Celery kills a pool process that has not
started within `worker_proc_alive_timeout` (4 s by default).

    .venv/bin/python benchmarks/bench_child_start.py            # 3 forks per case, load = one busy loop per core
    .venv/bin/python benchmarks/bench_child_start.py --busy 4 --forks 5

Each case forks from a parent that has imported the Celery app (as a worker's parent has) and times
`_init_worker_child` in the child (what `worker_process_init` runs). "cold" is the parent without
`warm_imports()` (each child imports torch, PyGAD, pycma and the trainers itself), "warm" the parent after it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _busy(stop):
    while not stop.is_set():
        pass


def _time_children(forks: int) -> list[float]:
    from arena.workers.app import _init_worker_child

    times = []
    for _ in range(forks):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what a new pool process runs
            os.close(read)
            started = time.perf_counter()
            _init_worker_child()
            os.write(write, f"{time.perf_counter() - started:.4f}".encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            times.append(float(pipe.read()))
        os.waitpid(pid, 0)
    return times


def _case(warm: bool, forks: int, queue) -> None:
    import arena.workers.app as app

    if warm:
        app.warm_imports()
    queue.put(_time_children(forks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=os.cpu_count(), help="busy-loop processes for the loaded cases")
    parser.add_argument("--forks", type=int, default=3)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")  # each case in a fresh interpreter: nothing imported yet
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")
    for loaded in (False, True):
        stop = spawn.Event()
        busy = [spawn.Process(target=_busy, args=(stop,), daemon=True) for _ in range(args.busy if loaded else 0)]
        for process in busy:
            process.start()
        try:
            for warm in (False, True):
                queue = spawn.Queue()
                case = spawn.Process(target=_case, args=(warm, args.forks, queue))
                case.start()
                times = queue.get()
                case.join()
                label = f"{'warm' if warm else 'cold'} parent, {len(busy)} busy loops"
                print(f"{label:<28} child start-up: median {statistics.median(times):6.3f} s, max {max(times):6.3f} s  ({args.forks} forks)")
        finally:
            stop.set()
            for process in busy:
                process.join()


if __name__ == "__main__":
    main()
