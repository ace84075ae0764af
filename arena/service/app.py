"""The HTTP app: `create_app` puts together the routes (arena.service.routes, one module per resource),
the dependencies (arena.service.deps), the error handler and the middleware. Routes are thin: validation
lives in schemas, database access in arena.store, statistics in arena.verdict, sending in
arena.workers.send. This process never imports torch, PyGAD, pycma or gymnasium.

Run it with `uvicorn arena.service.app:app` (what `arena up` and the compose file do).
"""

from __future__ import annotations

import importlib
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from arena import __version__
from arena.service import auth, guard, schemas
from arena.service.deps import READ_ERRORS
from arena.store.db import run_migrations
from arena.store.settings import get_settings

logger = logging.getLogger("arena.service")


@asynccontextmanager
async def lifespan(_app: FastAPI):
    run_migrations(get_settings().database_url)
    # scipy.stats takes about a second to import: warm it in the background, not in the first request.
    threading.Thread(target=importlib.import_module, args=("scipy.stats",), daemon=True).start()
    # statsmodels (the Newcombe interval) pulls in pandas, about a second more: warm it too.
    threading.Thread(target=importlib.import_module, args=("statsmodels.stats.proportion",), daemon=True).start()
    yield


def create_app() -> FastAPI:
    from arena.service import dashboard
    from arena.service.routes import comparison, exports, health, jobs, leaderboard, pages, runs, studies, summary, tasks

    settings = get_settings()
    application = FastAPI(
        title="Arena",
        version=__version__,
        description="Neuroevolution (GA) against gradient descent (backprop): same network, same task, same budget.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served by the dashboard with vendored assets (offline)
        redoc_url=None,
        max_body_size=settings.max_body_bytes,  # 413 on Content-Length before reading, or as the bytes arrive
    )
    reads = READ_ERRORS if settings.reads == "keys" else None  # declared where the middleware below answers it
    for module in (jobs, comparison, runs, tasks, leaderboard, summary, health, pages, dashboard, exports, studies):
        application.include_router(module.router, responses=reads)
    application.add_exception_handler(RequestValidationError, validation_error)
    if settings.reads == "keys":  # only then: a middleware costs every request something
        application.middleware("http")(_read_access)
    application.add_exception_handler(405, guard.method_not_allowed)
    application.add_middleware(guard.RefuseUnstorableQueries)
    application.add_middleware(guard.AnswerOptions, router=application.router)
    if settings.cors_origin_list:  # closed by default: no CORS headers at all
        from fastapi.middleware.cors import CORSMiddleware

        application.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"], max_age=600,
        )  # fmt: skip
    return application


async def _read_access(request: Request, call_next):
    """ARENA_READS=keys: every API read needs a key too (the dashboard's pages and /health stay open)."""
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    settings = get_settings()
    if request.method in ("GET", "HEAD") and not auth.read_is_open(request.url.path):
        try:
            await run_in_threadpool(auth.authenticate, request, settings)
        except HTTPException as error:
            return JSONResponse(status_code=error.status_code, content={"detail": error.detail}, headers=error.headers)
    return await call_next(request)


async def validation_error(request, error: RequestValidationError):
    """FastAPI's 422 body, with pydantic's "Extra inputs are not permitted" said in words: which key is
    unknown, the closest valid one, and the valid ones. At most guard.MAX_ERRORS items, each input
    echoed short and JSON-safe (a NaN refused by a model must not break the answer)."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from arena.validation import describe

    errors = error.errors()
    detail = []
    for item in errors[: guard.MAX_ERRORS]:
        item = dict(item)
        location = tuple(item.get("loc", ()))
        if item.get("type") == "extra_forbidden" and location[:1] == ("body",):
            item["msg"] = describe({**item, "loc": location[1:]}, schemas.JobCreate)
        elif item.get("type") == "value_error":
            item["msg"] = str(item.get("msg", "")).removeprefix("Value error, ")
        elif "input" in item and location[:1] == ("body",) and not isinstance(item["input"], (dict, list)):
            item["msg"] = f"{item['msg']}; got {item['input']!r}"
        if isinstance((item.get("ctx") or {}).get("error"), Exception):  # a model validator's ValueError: not JSON
            item["ctx"] = {"error": str(item["ctx"]["error"])}
        detail.append(item)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(guard.bounded_detail(detail, len(errors)))})


app = create_app()
