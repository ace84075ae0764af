"""Service configuration: the one module that reads the environment.

The defaults are the embedded mode (SQLite database and a SQLite-backed Kombu broker under
`ARENA_DATA_DIR`); production sets `DATABASE_URL` and `BROKER_URL` (PostgreSQL and Redis).
Everything else asks `get_settings()`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    data_dir: Path = Field(Path("var"), validation_alias="ARENA_DATA_DIR", description="where the embedded SQLite files live")
    database_url: str = Field("", validation_alias="DATABASE_URL", description="SQLAlchemy URL of the application database")
    broker_url: str = Field("", validation_alias="BROKER_URL", description="Celery broker URL")

    # What one job may ask for; a request over a limit is answered 422 naming the limit.
    max_seeds_per_job: int = Field(100, ge=1, validation_alias="ARENA_MAX_SEEDS_PER_JOB")
    max_population: int = Field(2000, ge=2, validation_alias="ARENA_MAX_POPULATION")
    max_budget_evaluations: int = Field(10**9, ge=1, validation_alias="ARENA_MAX_BUDGET_EVALUATIONS")
    max_budget_seconds: float = Field(3600.0, gt=0, validation_alias="ARENA_MAX_BUDGET_SECONDS")
    # What one job may cost (see docs/threat-model.md): the floats a run holds at once (parameters x
    # population, PPO: x environments) and the CPU seconds of all its runs (their seconds budgets, or an
    # estimate from evaluations when a run has none).
    max_population_parameters: int = Field(50_000_000, ge=1, validation_alias="ARENA_MAX_POPULATION_PARAMETERS")
    max_job_cpu_seconds: float = Field(100_000.0, gt=0, validation_alias="ARENA_MAX_JOB_CPU_SECONDS")
    # What one request may send: its body in bytes (413 over it, checked before the body is read). A job
    # with a 10,000-point track is about 0.4 MB.
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="ARENA_MAX_BODY_BYTES")

    # Access (see arena/service/auth.py and docs/threat-model.md). `none`: anyone who reaches the port may
    # write (the embedded default, on loopback); `keys`: every write needs `Authorization: Bearer KEY`.
    auth: Literal["none", "keys"] = Field("none", validation_alias="ARENA_AUTH")
    reads: Literal["open", "keys"] = Field("open", validation_alias="ARENA_READS", description="keys: reads need a key too")
    cors_origins: str = Field("", validation_alias="ARENA_CORS_ORIGINS", description="comma-separated origins allowed cross-site; empty: CORS closed")
    # A key's defaults, unless `arena keys create` set its own: runs queued or running, CPU seconds queued.
    key_max_concurrent_runs: int = Field(300, ge=1, validation_alias="ARENA_KEY_MAX_CONCURRENT_RUNS")
    key_max_queued_cpu_seconds: float = Field(200_000.0, gt=0, validation_alias="ARENA_KEY_MAX_QUEUED_CPU_SECONDS")
    # Writes per key (a token bucket in each API process's memory): sustained rate and burst.
    key_writes_per_minute: float = Field(60.0, gt=0, validation_alias="ARENA_KEY_WRITES_PER_MINUTE")
    key_write_burst: int = Field(20, ge=1, validation_alias="ARENA_KEY_WRITE_BURST")

    # The run lifecycle (see arena/workers/worker.py and the reconciler in arena/workers/reconcile.py).
    heartbeat_seconds: float = Field(1.0, gt=0, validation_alias="ARENA_HEARTBEAT_SECONDS")
    stale_after_seconds: float = Field(30.0, gt=0, validation_alias="ARENA_STALE_AFTER_SECONDS")
    reconcile_seconds: float = Field(10.0, gt=0, validation_alias="ARENA_RECONCILE_SECONDS")
    requeue_after_seconds: float = Field(60.0, gt=0, validation_alias="ARENA_REQUEUE_AFTER_SECONDS")
    max_attempts: int = Field(3, ge=1, validation_alias="ARENA_MAX_ATTEMPTS")
    # Batched seeds (arena/workers/send.py): at most this many runs of one job and configuration in one
    # message, trained as one batched computation; 1 sends one message per run (no batching).
    batch_seeds: int = Field(16, ge=1, le=1000, validation_alias="ARENA_BATCH_SEEDS")

    api_host: str = Field("127.0.0.1", validation_alias="ARENA_API_HOST")
    api_port: int = Field(8000, ge=1, le=65535, validation_alias="ARENA_API_PORT")

    @model_validator(mode="after")
    def _embedded_defaults(self) -> "Settings":
        data_dir = self.data_dir.expanduser().resolve()
        self.data_dir = data_dir
        if not self.database_url:
            self.database_url = f"sqlite:///{data_dir / 'arena.db'}"
        if not self.broker_url:
            # A file of its own: Alembic must never see Kombu's tables, and broker polling must not
            # contend with the ledger's writes.
            self.broker_url = f"sqla+sqlite:///{data_dir / 'broker.db'}"
        if self.stale_after_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError("ARENA_STALE_AFTER_SECONDS must exceed twice ARENA_HEARTBEAT_SECONDS")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite") or self.broker_url.startswith("sqla+sqlite")

    def run_time_limit(self, budget_seconds: float | None) -> tuple[float, float]:
        """(soft, hard) Celery time limits for a run: its seconds budget (or the service ceiling) plus slack.

        A trainer may overrun its budget by one epoch or generation, and scoring and recording
        take a moment, so the soft limit leaves room; the hard limit kills a run that ignores it.
        """
        seconds = min(budget_seconds or self.max_budget_seconds, self.max_budget_seconds)
        soft = seconds * 1.25 + 60.0
        return soft, soft + 30.0

    def batch_time_limit(self, runs: int) -> tuple[float, float]:
        """(soft, hard) Celery time limits for one message of `runs` batched runs (no seconds budget):
        each run may take the ceiling's share, as one unbatched run would."""
        soft, _ = self.run_time_limit(None)
        soft = (soft - 60.0) * max(runs, 1) + 60.0
        return soft, soft + 30.0

    @property
    def broker_visibility_timeout(self) -> float:
        """Redis redelivers an unacknowledged message after this: above the longest allowed run or batch."""
        return self.batch_time_limit(self.batch_seeds)[1] + 600.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
