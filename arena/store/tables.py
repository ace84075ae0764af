"""The ledger: jobs, their runs, and each run's curve and weights (kept apart so listings stay light).

The database is the only source of truth; broker messages are hints (see arena/workers/worker.py).
A run's task options (a car track of up to 10,000 points) are stored once, in `task_options`, and
referenced from each run's spec (see `StoredTaskOptions`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """What a user submitted. `status` summarises its runs and is kept in step with them."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    task: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    methods: Mapped[list] = mapped_column(JSON)
    seeds: Mapped[list] = mapped_column(JSON)
    request: Mapped[dict] = mapped_column(JSON)  # the request as accepted, for the record
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    # Who submitted it (null: auth off) and what it may cost (see arena/service/auth.py).
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", name="fk_jobs_api_key_id", ondelete="SET NULL"))
    run_cpu_seconds: Mapped[dict | None] = mapped_column(JSON)  # {method: CPU seconds one run may take}: the quota's unit
    # `Idempotency-Key`, scoped by API key ("<key id>:<header>", "0:" with auth off); cleared after 24 h.
    idempotency_key: Mapped[str | None] = mapped_column(String(300))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the request: a reused key with another body is refused

    runs: Mapped[list["Run"]] = relationship(back_populates="job", order_by="Run.id")

    __table_args__ = (
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_task_status_created_at", "task", "status", "created_at"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_api_key_id_status", "api_key_id", "status"),  # a key's unfinished jobs (its quota)
        Index("ix_jobs_idempotency_key", "idempotency_key", unique=True),
    )


class ApiKey(Base):
    """A client's key: only its SHA-256 is stored (the key itself is printed once, by `arena keys create`)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to recognise it in a listing
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Quotas; null: the service's defaults (ARENA_KEY_MAX_CONCURRENT_RUNS, ARENA_KEY_MAX_QUEUED_CPU_SECONDS).
    max_concurrent_runs: Mapped[int | None] = mapped_column(Integer)
    max_queued_cpu_seconds: Mapped[float | None] = mapped_column(Float)


class Run(Base):
    """One method x task x configuration x seed: what a worker executes, and its result."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))  # the family and its queue: backprop, ga, cmaes
    algorithm: Mapped[str | None] = mapped_column(String(32))  # what it trained with here: backprop or ppo, ga, cmaes
    seed: Mapped[int] = mapped_column(Integer)
    # RunSpec.to_dict() (task, method, algorithm, architecture, settings, budget, task_options), except that
    # non-empty task options are {"ref": <StoredTaskOptions.hash>}: queries.full_spec() gives the whole spec back.
    spec: Mapped[dict] = mapped_column(JSON)
    settings_hash: Mapped[str] = mapped_column(String(64))  # hash of the whole spec: groups one configuration on the leaderboard

    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(255))

    # Progress while running (best so far, the task's direction).
    progress_evaluations: Mapped[int | None] = mapped_column(Integer)
    progress_seconds: Mapped[float | None] = mapped_column(Float)
    progress_score: Mapped[float | None] = mapped_column(Float)

    # The run contract.
    score: Mapped[float | None] = mapped_column(Float)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    evaluations_to_solve: Mapped[int | None] = mapped_column(Integer)
    seconds_to_solve: Mapped[float | None] = mapped_column(Float)
    evaluations: Mapped[int | None] = mapped_column(Integer)
    seconds: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)  # the run's thread CPU time: not inflated by machine load
    cpu_seconds_to_solve: Mapped[float | None] = mapped_column(Float)
    stopped: Mapped[str | None] = mapped_column(String(16))
    metrics: Mapped[dict | None] = mapped_column(JSON)
    extra_parameters: Mapped[int | None] = mapped_column(Integer)
    library_versions: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)

    job: Mapped[Job] = relationship(back_populates="runs")
    output: Mapped["RunOutput | None"] = relationship(back_populates="run", cascade="all, delete-orphan")

    @property
    def label(self) -> str:
        from arena.methods import label

        return label(self.method, self.algorithm)

    __table_args__ = (
        Index("ix_runs_leaderboard", "task", "method", "settings_hash", "status"),
        Index("ix_runs_job_id", "job_id"),
        Index("ix_runs_status_heartbeat_at", "status", "heartbeat_at"),  # the reconciler's scans
    )


class RunOutput(Base):
    """The heavy part of a finished run: its learning curve and best weights."""

    __tablename__ = "run_outputs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    curve: Mapped[list] = mapped_column(JSON)  # [{evaluations, seconds, score}]
    weights: Mapped[list] = mapped_column(JSON)  # flat, in the shared layout

    run: Mapped[Run] = relationship(back_populates="output")


class StoredTaskOptions(Base):
    """Task options stored once, by content: a 10,000-point track is about 200 KB, and a job of 100 seeds
    (or every job that drives the same track) would otherwise copy it into each run's spec.

    A run's spec holds {"ref": hash} in their place. Rows are never changed or deleted (their key is
    their content's SHA-256), so a run stays reproducible from its row and the options it references.
    """

    __tablename__ = "task_options"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # queries.content_hash(options)
    options: Mapped[dict] = mapped_column(JSON)  # as resolved: arena.tasks.check_task_options(...)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeaderboardVersion(Base):
    """Bumped in the transaction that finishes a run of the task: the API caches a task's leaderboard
    until this changes (recorded results never change, so the cache is exact)."""

    __tablename__ = "leaderboard_versions"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Study(Base):
    """A declarative experiment (arena/studies): methods x seeds over one or two axes, run as one job per
    cell (`StudyCell`). Its status and progress are its cells' jobs': nothing here changes as runs finish."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    name: Mapped[str] = mapped_column(String(128))
    request: Mapped[dict] = mapped_column(JSON)  # the study as accepted, for the record
    axes: Mapped[list] = mapped_column(JSON)  # [{"name", "values"}], one or two
    methods: Mapped[list] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", name="fk_studies_api_key_id", ondelete="SET NULL"))

    cells: Mapped[list["StudyCell"]] = relationship(order_by="StudyCell.position", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_studies_created_at", "created_at"),)


class StudyCell(Base):
    """One point of a study's grid: its axis values and the ordinary job that runs it."""

    __tablename__ = "study_cells"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", name="fk_study_cells_study_id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # row-major over the axes
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", name="fk_study_cells_job_id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(64))
    point: Mapped[dict] = mapped_column(JSON)  # {axis name: value}

    __table_args__ = (Index("ix_study_cells_job_id", "job_id", unique=True),)
