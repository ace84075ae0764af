"""What routes depend on, in one place: the settings, a database session, the caller (auth), the 404
helpers, and the error statuses each route declares in /openapi.json."""

from __future__ import annotations

from typing import Iterator

from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session

from arena.service import auth, schemas
from arena.store import queries
from arena.store.db import session_scope
from arena.store.settings import Settings, get_settings


def database() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def settings_dependency() -> Settings:
    return get_settings()


def submit_writer(request: Request, settings: Settings = Depends(settings_dependency)) -> auth.Caller:
    return _checked_caller(request) or auth.writer(request, settings, body_required=True)


def cancel_writer(request: Request, settings: Settings = Depends(settings_dependency)) -> auth.Caller:
    return _checked_caller(request) or auth.writer(request, settings, body_required=False)


def _checked_caller(request: Request) -> auth.Caller | None:
    """The caller a `guard.WriterRoute` checked before the body was read (the checks run once)."""
    return getattr(request.state, "caller", None)


def not_found(what: str, ident) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} not found")


def job_or_404(session: Session, job_id: int):
    job = queries.get_job(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


def run_or_404(session: Session, run_id: int):
    run = queries.get_run(session, run_id)
    if run is None:
        raise not_found("run", run_id)
    return run


def json_response(model, **fields) -> Response:
    """Validate once against the response model and send the JSON (the same bytes a cache can keep)."""
    return Response(content=model.model_validate(fields).model_dump_json(), media_type="application/json")


# Every error a route can answer is declared in /openapi.json (tests/test_schemathesis.py checks the statuses
# answered against them); 422 (validation) is FastAPI's own on every route. No route answers 400.
WRITE_ERRORS = schemas.error_responses({
    401: "ARENA_AUTH=keys: no key, or an invalid or revoked one",
    403: "a cross-site request (see ARENA_CORS_ORIGINS), or another key's job",
    415: "not JSON",
    413: "the body is over ARENA_MAX_BODY_BYTES",
    429: "over the key's rate or quota: retry after `Retry-After` seconds",
})  # fmt: skip
NO_JOB = schemas.error_responses({404: "no such job"})
NO_RUN = schemas.error_responses({404: "no such run"})
# ARENA_READS=keys: every API read needs a key too (added to every route of the app then, see create_app).
READ_ERRORS = schemas.error_responses({401: "ARENA_READS=keys: no key, or an invalid or revoked one"})
