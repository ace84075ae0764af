"""A job's track is stored once, not once per run, and every reader still sees each run's whole spec.

A car job's task options (a track of up to 10,000 points, about 200 KB of JSON) live in `task_options`,
keyed by their content; each run's spec references them. Checked on SQLite and PostgreSQL in-process (rows
and bytes in the database; the readers in arena/service/queries.py), then over HTTP against the real API and
worker in both modes: GET /runs/{id} and the exports still carry the whole track, and the run executes on it.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import wait_for
from sqlalchemy import Text, cast, func, select

from arena.runspec import resolve
from arena.store import queries
from arena.store.db import session_scope
from arena.store.tables import Run, StoredTaskOptions, utcnow

POINTS = 10_000


def big_track(points: int = POINTS) -> dict:
    """A closed wobbly loop (valid for the car task), as the API normalises it: floats only."""
    out = []
    for k in range(points):
        angle = 2 * math.pi * k / points
        radius = 60 + 3 * math.sin(7 * angle)
        out.append([round(radius * math.cos(angle), 4), round(radius * math.sin(angle), 4)])
    return {"points": out, "width": 6.0}


TRACK = big_track()


def spec_bytes(session, job_id: int) -> int:
    """Bytes of the job's run specs as stored."""
    return session.scalar(select(func.sum(func.length(cast(Run.spec, Text)))).where(Run.job_id == job_id))


def options_bytes(session) -> int:
    return session.scalar(select(func.coalesce(func.sum(func.length(cast(StoredTaskOptions.options, Text))), 0)))


def options_rows(session) -> int:
    return session.scalar(select(func.count()).select_from(StoredTaskOptions))


def test_a_job_stores_its_track_once_and_reads_it_whole(migrated_database):
    url = migrated_database
    options = {"track": TRACK}
    specs = {method: resolve("car-oval", method, {"evaluations": 500}, task_options=options).to_dict() for method in ("ga", "cmaes")}
    seeds = list(range(100))
    with session_scope(url) as session:
        rows_before, bytes_before = options_rows(session), options_bytes(session)
        job = queries.create_job(session, "car-oval", seeds, specs, {"task": "car-oval", "task_options": options})
        job_id, run_ids = job.id, [run.id for run in job.runs]
    track_bytes = len(json.dumps(options))
    assert track_bytes > 150_000

    with session_scope(url) as session:
        # One stored copy for 200 runs of two methods; each run's spec is a few hundred bytes.
        assert options_rows(session) - rows_before == 1
        assert track_bytes * 0.9 < options_bytes(session) - bytes_before < track_bytes * 1.5
        assert spec_bytes(session, job_id) < len(run_ids) * 2_000
        stored = session.scalar(select(Run.spec).where(Run.id == run_ids[0]))
        assert stored["task_options"] == {"ref": queries.content_hash(options)}

        # Readers see the whole spec, and the configuration's hash is that of the whole spec.
        run = queries.get_run(session, run_ids[0])
        assert run.spec == specs[run.method] and run.settings_hash == queries.settings_hash(specs[run.method])
        by_hash = {queries.settings_hash(spec): spec for spec in specs.values()}
        assert queries.configurations(session, "car-oval", [(m, queries.settings_hash(s)) for m, s in specs.items()]) == by_hash
        exported = list(queries.export_runs(session, job_id=job_id))
        assert len(exported) == 200 and all(row["spec"] == specs[row["method"]] for row in exported)
    with session_scope(url) as session:
        assert session.scalar(select(Run.spec).where(Run.id == run_ids[0])) == stored  # reading wrote nothing back

    with session_scope(url) as session:
        claim = queries.claim_run(session, run_ids[-1], "w", utcnow(), 3)
    assert claim is not None and claim.spec == specs[claim.method]  # what the worker executes

    # The same track in another job (or a job of one seed) adds no row.
    with session_scope(url) as session:
        rows = options_rows(session)
        queries.create_job(session, "car-oval", [0], {"ga": specs["ga"]}, {"task": "car-oval"})
        assert options_rows(session) == rows


def test_a_missing_stored_track_is_an_error_never_the_default_track(migrated_database):
    spec = {**resolve("car-oval", "ga").to_dict(), "task_options": {"ref": "0" * 64}}
    with session_scope(migrated_database) as session:
        with pytest.raises(LookupError, match="not stored"):
            queries.full_spec(session, spec)
    from arena.errors import ArenaError
    from arena.runspec import RunSpec

    with pytest.raises(ArenaError, match="unknown car task option"):  # a reference never runs as options
        RunSpec.from_dict(spec)


def test_a_big_track_job_over_http_stores_the_track_once_and_its_run_executes_on_it(service):
    import arena
    from arena.runspec import RunSpec

    seeds = 40
    body = {"task": "car-oval", "methods": ["cmaes"], "seeds": seeds, "budget": {"evaluations": 500, "stop_on_solve": False}, "task_options": {"track": TRACK}}
    with session_scope(service.database_url) as session:
        rows_before = options_rows(session)
    created = service.submit(body)
    job_id = created["job_id"]
    with session_scope(service.database_url) as session:
        assert options_rows(session) - rows_before <= 1  # 0 when an earlier test stored this track already
        assert session.scalar(select(func.count()).where(StoredTaskOptions.hash == queries.content_hash({"track": TRACK}))) == 1
        assert spec_bytes(session, job_id) < seeds * 2_000  # not 40 x 200 KB

    run = service.client.get(f"/runs/{created['run_ids'][0]}").json()
    assert run["spec"]["task_options"] == {"track": TRACK}  # what clients see is the whole spec
    assert service.job(job_id)["request"]["task_options"] == {"track": TRACK}
    lines = service.client.get("/runs.jsonl", params={"job": job_id}).text.splitlines()
    assert len(lines) == seeds and all(json.loads(line)["task_options"] == {"track": TRACK} for line in lines)

    def a_run_succeeded():
        done = [r for r in service.job(job_id)["runs"] if r["status"] == "succeeded"]
        return done[0] if done else None

    finished = wait_for(a_run_succeeded, 300, interval=0.5, message="a run of the big-track job to succeed")
    service.client.post(f"/jobs/{job_id}/cancel")  # the other seeds are not needed (409 if all finished)
    run = service.client.get(f"/runs/{finished['id']}").json()
    # The worker ran the stored track: the run reproduces from its record (whole spec and seed).
    alone = arena.execute(RunSpec.from_dict(run["spec"]), run["seed"])
    assert run["evaluations"] == alone.evaluations and run["score"] == pytest.approx(alone.score, rel=1e-9, abs=1e-12)
    leaderboard = service.client.get("/leaderboard", params={"task": "car-oval"}).json()
    entry = next(e for e in leaderboard["entries"] if e["settings_hash"] == run["settings_hash"])
    assert entry["task_options"] == {"track": TRACK} and run["settings_hash"] == queries.settings_hash(run["spec"])
