"""Engines and sessions, created in one place.

Engines are created lazily per URL and can be disposed after a fork (a pooled connection must never
be shared between processes). SQLite runs in WAL mode with a busy timeout so the API, the workers'
heartbeats and their results can write to one file at once.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from arena.store.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"

_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
            _sessionmakers[url] = sessionmaker(bind=_engines[url], expire_on_commit=False)
        return _engines[url]


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    get_engine(url)
    factory = _sessionmakers[url or get_settings().database_url]
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def dispose_engines(close: bool = True) -> None:
    """Drop every engine. After a fork pass close=False: the parent's connections stay the parent's."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=close)
        _engines.clear()
        _sessionmakers.clear()


def alembic_config(url: str):
    from alembic.config import Config

    # The migrations ship inside the package, so any install (not only a source checkout) can migrate.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a '%' in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def run_migrations(url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at `url` (default: the configured one) to `revision`."""
    from alembic import command

    url = url or get_settings().database_url
    get_engine(url)  # creates the SQLite directory
    command.upgrade(alembic_config(url), revision)


def downgrade_migrations(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url or get_settings().database_url), revision)
