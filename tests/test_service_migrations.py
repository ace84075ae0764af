"""Alembic upgrades and downgrades on SQLite and PostgreSQL, and the models match the migrations."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from arena.service.db import downgrade_migrations, get_engine, run_migrations
from arena.service.tables import Base

TABLES = {"jobs", "runs", "run_outputs", "leaderboard_versions"}


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
