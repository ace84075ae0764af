"""The dashboard's pages and assets, and the offline API docs (/docs, /redoc).

Pages are static HTML + one small script each (arena/service/static/), reading the JSON API in the
browser; nothing is loaded from another host (uPlot, Swagger UI and ReDoc are vendored from the npm
registry into static/vendor/). The JSON and pictures the pages need besides the API's own routes are in
arena.service.dashboard.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from arena.service import schemas

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / f"{name}.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
def jobs_page():
    return _page("jobs")


@router.get("/ui/jobs/{job_id}", include_in_schema=False)
def job_page(job_id: schemas.JobId):
    return _page("job")


@router.get("/ui/runs/{run_id}", include_in_schema=False)
def run_page(run_id: schemas.RunId):
    return _page("run")


@router.get("/ui/leaderboard", include_in_schema=False)
def leaderboard_page():
    return _page("leaderboard")


@router.get("/ui/summary", include_in_schema=False)
def summary_page():
    return _page("summary")


@router.get("/static/{path:path}", include_in_schema=False)
def static_file(path: str):
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/docs", include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    return _api_docs(
        get_swagger_ui_html, "Swagger UI",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=DOCS_FAVICON,
        swagger_ui_parameters={"validatorUrl": None},  # the default validator is on another host
    )  # fmt: skip


@router.get("/redoc", include_in_schema=False)
def redoc() -> HTMLResponse:
    return _api_docs(get_redoc_html, "ReDoc", redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js", redoc_favicon_url=DOCS_FAVICON, with_google_fonts=False)


VENDOR = "/static/vendor"  # the docs pages' scripts, served from here: no CDN
DOCS_FAVICON = f"{VENDOR}/swagger-ui/favicon-32x32.png"


def _api_docs(page, name: str, **assets) -> HTMLResponse:
    """A page of FastAPI's (`get_swagger_ui_html`, `get_redoc_html`) on the API's OpenAPI schema."""
    return page(openapi_url="/openapi.json", title=f"Arena - {name}", **assets)
