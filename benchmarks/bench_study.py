"""Wall time of a built-in study in the embedded service, and its overhead above the runs' own CPU time.

    .venv/bin/python benchmarks/bench_study.py network-size

Starts an embedded API and one worker (concurrency 2, as `arena up` on a 2-core machine), submits the
study, waits, and prints: wall seconds from submit to the last cell finished, the runs' summed CPU
seconds, the machine's load average before and after, and the overhead = wall x workers / CPU - 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import Service, _clean_env  # noqa: E402

CONCURRENCY = 2


def main(name: str) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="arena-bench-study-"))
    service = Service("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir)}), data_dir)
    service.start_api()
    service.start_worker(concurrency=CONCURRENCY)
    try:
        load_before = os.getloadavg()
        start = time.perf_counter()
        created = service.client.post("/studies", json={"name": name}).json()
        while True:
            body = service.client.get(f"/studies/{created['study_id']}").json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(1.0)
        wall = time.perf_counter() - start
        cpu = sum(run["cpu_seconds"] or 0.0 for cell in body["cell_list"] for run in service.job(cell["job_id"])["runs"])
        print(f"study {name}: {created['cells']} cells, {created['runs']} runs, status {body['status']}")
        print(f"wall {wall:.1f} s; runs' CPU {cpu:.1f} s; workers {CONCURRENCY}; overhead {wall * CONCURRENCY / cpu - 1:.1%}")
        print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (cores {os.cpu_count()})")
        for answer in body["answers"]:
            for pair in answer["crossovers"]:
                print(pair["text"])
    finally:
        service.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "network-size")
