"""GET /health: the database and the broker reachable (200) or not (503)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy import text

from arena.service import schemas
from arena.service.deps import settings_dependency
from arena.store.db import get_engine
from arena.store.settings import Settings

router = APIRouter()


@router.get("/health", response_model=schemas.Health, tags=["service"],
            responses={503: {"model": schemas.Health, "description": "the database or the broker is unreachable"}})
def health(response: Response, settings: Settings = Depends(settings_dependency)):
    """Database and broker reachable: 200, else 503."""
    database_state = broker_state = "ok"
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        database_state = f"unreachable: {type(error).__name__}"
    try:
        from arena.workers.app import app as celery

        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        broker_state = f"unreachable: {type(error).__name__}"
    healthy = database_state == broker_state == "ok"
    if not healthy:
        response.status_code = 503
    return schemas.Health(
        status="ok" if healthy else "degraded", database=database_state, broker=broker_state,
        mode="embedded" if settings.embedded else "production",
    )
