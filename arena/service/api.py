"""Kept so that `uvicorn arena.service.api:app` still works: the app lives in arena.service.app."""

from arena.service.app import app, create_app  # noqa: F401
