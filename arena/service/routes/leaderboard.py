"""GET /leaderboard: one task's configurations ranked, cached per task version (arena.service.results)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from arena.errors import ArenaError
from arena.service import schemas
from arena.service.deps import database
from arena.service.results import task_results
from arena.store import queries
from arena.tasks import task_info

router = APIRouter()


@router.get("/leaderboard", response_model=schemas.Leaderboard, tags=["results"], responses=schemas.error_responses({404: "no such task"}))
def get_leaderboard(task: str, session: Session = Depends(database)):
    """One row per configuration (distinct seeds; duplicates counted once), ranked by success rate then
    ERT in evaluations, ties marked; each method's best configuration head to head, verdict per lens."""
    try:
        info = task_info(task)
    except ArenaError as error:
        raise HTTPException(status_code=404, detail=error.message) from None
    return task_results(session, info, queries.leaderboard_version(session, task)).response
