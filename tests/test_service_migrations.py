"""Alembic upgrades and downgrades on SQLite and PostgreSQL, and the models match the migrations."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from arena.runspec import resolve
from arena.store import queries
from arena.store.db import downgrade_migrations, get_engine, run_migrations, session_scope
from arena.store.tables import Base, utcnow

TABLES = {"jobs", "runs", "run_outputs", "leaderboard_versions", "api_keys", "task_options"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_downgrade_upgrade(kind, make_database):
    url = make_database(kind)
    engine = get_engine(url)

    run_migrations(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    indexes = {index["name"] for index in inspect(engine).get_indexes("runs")}
    assert {"ix_runs_leaderboard", "ix_runs_job_id", "ix_runs_status_heartbeat_at"} <= indexes
    with engine.connect() as connection:
        # The models and the migrations describe the same schema (nothing left to autogenerate).
        context = MigrationContext.configure(connection, opts={"render_as_batch": kind == "sqlite"})
        assert compare_metadata(context, Base.metadata) == []

    downgrade_migrations(url, "0001")  # one step down, then all the way
    assert "leaderboard_versions" not in set(inspect(engine).get_table_names())
    downgrade_migrations(url, "base")
    assert not TABLES & set(inspect(engine).get_table_names())

    run_migrations(url)  # and up again: the downgrade left nothing behind that blocks it
    assert TABLES <= set(inspect(engine).get_table_names())
    run_migrations(url)  # idempotent at head (the API migrates at every start)


# --- 0005: task options stored once -------------------------------------------------------------------

JOBS = sa.table(
    "jobs", *(sa.column(name) for name in ("id", "task", "status", "cancel_requested")),
    *(sa.column(name, sa.JSON()) for name in ("methods", "seeds", "request")), sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip
RUNS = sa.table(
    "runs", *(sa.column(name) for name in ("id", "job_id", "task", "method", "algorithm", "seed", "settings_hash", "status", "attempts")),
    sa.column("spec", sa.JSON()), sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip


def a_track(points: int) -> dict:
    return {"points": [[60 * math.cos(2 * math.pi * k / points), 40 * math.sin(2 * math.pi * k / points)] for k in range(points)], "width": 6.0}


def insert_job(connection, task: str, specs: dict[str, dict], seeds: int) -> list[int]:
    """A job as revision 0004 stored it: every run's spec whole, its track included."""
    now = utcnow()
    job_id = connection.execute(
        sa.insert(JOBS).returning(JOBS.c.id),
        {"created_at": now, "task": task, "status": "queued", "methods": list(specs), "seeds": list(range(seeds)), "request": {"task": task}, "cancel_requested": False},
    ).scalar_one()  # fmt: skip
    rows = [
        {"job_id": job_id, "task": task, "method": method, "algorithm": spec["algorithm"], "seed": seed, "spec": spec,
         "settings_hash": queries.settings_hash(spec), "status": "queued", "attempts": 0, "created_at": now}
        for method, spec in specs.items() for seed in range(seeds)
    ]  # fmt: skip
    return [connection.execute(sa.insert(RUNS).returning(RUNS.c.id), row).scalar_one() for row in rows]


def stored_specs(engine) -> dict[int, dict]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(RUNS.c.id, RUNS.c.spec).order_by(RUNS.c.id)).tuples().all())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_0005_moves_run_tracks_into_task_options_and_back(kind, make_database):
    url = make_database(kind)
    engine = get_engine(url)
    run_migrations(url, "0004")
    track = {"track": a_track(500)}
    car = {method: {**resolve("car-oval", method).to_dict(), "task_options": track} for method in ("ga", "cmaes")}
    named = {"ga": resolve("car-oval", "ga", task_options={"track": "hard"}).to_dict()}
    plain = {"ga": resolve("xor", "ga").to_dict()}
    with engine.begin() as connection:
        car_runs = insert_job(connection, "car-oval", car, seeds=3)  # 6 runs, one track
        named_runs = insert_job(connection, "car-oval", named, seeds=1)
        plain_runs = insert_job(connection, "xor", plain, seeds=2)
    before = stored_specs(engine)
    hashes = {run_id: queries.settings_hash(spec) for run_id, spec in before.items()}

    run_migrations(url)
    after = stored_specs(engine)
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT hash, options FROM task_options")).tuples().all())
    assert len(stored) == 2  # the big track once for its six runs, and {"track": "hard"}
    assert {run_id: queries.options_ref(after[run_id]) for run_id in car_runs} == {run_id: queries.content_hash(track) for run_id in car_runs}
    assert queries.options_ref(after[named_runs[0]]) == queries.content_hash({"track": "hard"})
    assert all(after[run_id] == before[run_id] for run_id in plain_runs)  # no options: nothing to move
    assert all(len(str(after[run_id])) < 2_000 for run_id in car_runs)
    with session_scope(url) as session:
        for run_id, spec in before.items():
            run = queries.get_run(session, run_id)
            assert run.spec == spec and run.settings_hash == hashes[run_id] == queries.settings_hash(run.spec)
    assert stored_specs(engine) == after  # reading whole specs wrote nothing back

    downgrade_migrations(url, "0004")
    assert "task_options" not in set(inspect(engine).get_table_names())
    assert stored_specs(engine) == before  # every run holds its options inline again, unchanged

    run_migrations(url)  # and up again
    assert stored_specs(engine) == after
