"""Service settings: embedded defaults, environment overrides, derived limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from arena.store.settings import Settings, get_settings, reset_settings
from arena.workers.app import broker_connection, broker_transport_options


def test_embedded_defaults_live_in_the_data_dir(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "BROKER_URL", "ARENA_MAX_POPULATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path}/arena.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/broker.db"  # apart from the ledger
    assert settings.embedded and settings.max_population == 2000
    # Engine arguments and a short polling interval, which EmbeddedTransport keeps away from create_engine.
    assert broker_transport_options(settings) == {"connect_args": {"timeout": 30}, "polling_interval": 0.05}
    assert broker_connection(settings) == (f"sqlite:///{tmp_path}/broker.db", "arena.workers.embedded:EmbeddedTransport")


def test_environment_overrides_and_cache_reset(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/arena")
    monkeypatch.setenv("BROKER_URL", "redis://cache:6379/0")
    monkeypatch.setenv("ARENA_MAX_POPULATION", "300")
    monkeypatch.setenv("ARENA_MAX_BUDGET_SECONDS", "600")
    reset_settings()
    try:
        settings = get_settings()
        assert get_settings() is settings  # cached
        assert (settings.max_population, settings.embedded) == (300, False)
        soft, hard = settings.run_time_limit(10.0)
        assert 10 < soft < hard
        assert settings.run_time_limit(None) == settings.run_time_limit(10_000.0)  # capped by the service limit
        # Redis redelivers unacknowledged messages after the visibility timeout: above the longest run.
        assert broker_transport_options(settings)["visibility_timeout"] > settings.run_time_limit(None)[1]
    finally:
        reset_settings()


def test_stale_must_exceed_two_heartbeats():
    with pytest.raises(ValidationError):
        Settings(heartbeat_seconds=5, stale_after_seconds=8)
