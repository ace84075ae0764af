"""What one request may make the API do, bounded before the work starts (docs/threat-model.md).

- The body: at most ARENA_MAX_BODY_BYTES, checked on Content-Length before a byte is read and on the bytes
  as they stream in (FastAPI's `max_body_size`: 413). A write's key and CSRF checks run before the body
  is read (`WriterRoute`).
- The JSON: parsed once, then scanned before any model sees it (`scan_json`): non-finite numbers (NaN,
  Infinity, 1e999), strings the database cannot store (NUL, lone surrogates), objects with more keys than
  any setting object has, nesting deeper than any request needs. Each is a 422 naming where it is, and
  the scan stops at MAX_ERRORS.
- The query string: the same unstorable characters refused (`refuse_unstorable_queries`), so a filter
  never reaches PostgreSQL with a NUL in it.
- The 422 answer: at most MAX_ERRORS items, each input echoed only when it is small, and every value JSON
  can carry (`bounded_detail`).
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ERRORS = 20  # validation errors answered at once: the first ones say what to fix
MAX_OBJECT_KEYS = 256  # keys in one JSON object: the largest settings object has about 20
MAX_DEPTH = 32  # nesting of a request body: a job is at most about 5 deep
MAX_ECHOED_INPUT = 200  # characters of a refused value echoed back in a 422


def unstorable(text: str) -> str | None:
    """Why PostgreSQL (text, JSONB) cannot store `text`, or None: a NUL, or a lone UTF-16 surrogate."""
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if any("\ud800" <= char <= "\udfff" for char in text):
        return "must not contain lone surrogates (\\ud800-\\udfff): not valid Unicode"
    return None


def scan_json(value, location: tuple = ("body",)) -> list[dict]:
    """The problems of a parsed JSON body no model should see, in FastAPI's 422 item shape, at most MAX_ERRORS.

    Iterative (a deep body cannot exhaust the stack) and stops at the first MAX_ERRORS problems."""
    errors: list[dict] = []
    stack = [(value, location)]
    while stack and len(errors) < MAX_ERRORS:
        item, where = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                errors.append({"loc": list(where), "msg": f"must be a finite number; got {item!r}", "type": "finite_number"})
        elif isinstance(item, str):
            reason = unstorable(item)
            if reason:
                errors.append({"loc": list(where), "msg": reason, "type": "string_unstorable"})
        elif len(where) > MAX_DEPTH:
            errors.append({"loc": list(where[:MAX_DEPTH]), "msg": f"nested more than {MAX_DEPTH} levels deep", "type": "too_deep"})
        elif isinstance(item, dict):
            if len(item) > MAX_OBJECT_KEYS:
                errors.append({"loc": list(where), "msg": f"an object of {len(item):,} keys: at most {MAX_OBJECT_KEYS}", "type": "too_many_keys"})
                continue
            for key, child in item.items():
                reason = unstorable(key)
                if reason:
                    errors.append({"loc": [*where, key.encode("unicode_escape").decode()], "msg": f"a key {reason}", "type": "string_unstorable"})
                else:
                    stack.append((child, (*where, key)))
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in reversed(list(enumerate(item))))
    return errors[:MAX_ERRORS]


def refused(errors: list[dict]) -> HTTPException:
    """A 422 in FastAPI's validation-error body ({"detail": [{"loc", "msg", "type"}]})."""
    return HTTPException(status_code=422, detail=errors)


class CheckedJsonRequest(Request):
    """A request whose JSON body is scanned (`scan_json`) before FastAPI hands it to the models."""

    async def json(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                value = json.loads(body)  # json.JSONDecodeError: FastAPI's own 422 (json_invalid)
            except RecursionError:
                raise refused([{"loc": ["body"], "msg": f"nested more than {MAX_DEPTH} levels deep", "type": "too_deep"}]) from None
            except UnicodeDecodeError:
                raise refused([{"loc": ["body"], "msg": "the body is not UTF-8 text", "type": "json_invalid"}]) from None
            except json.JSONDecodeError:
                raise
            except ValueError as error:  # e.g. an integer of more than 4,300 digits
                raise refused([{"loc": ["body"], "msg": str(error)[:MAX_ECHOED_INPUT], "type": "json_invalid"}]) from None
            errors = scan_json(value)
            if errors:
                raise refused(errors)
            self._json = value
        return self._json


class WriterRoute(APIRoute):
    """A route whose writes (POST) are checked before their body is read: CSRF, the key, the key's rate
    (`arena.service.auth.writer`); the caller is left in `request.state.caller` for the route's
    dependency. Its JSON body is then scanned (`CheckedJsonRequest`)."""

    def get_route_handler(self):
        handler = super().get_route_handler()
        body_required = self.body_field is not None

        async def guarded(request: Request):
            if request.method == "POST":
                from arena.service import auth
                from arena.store.settings import get_settings

                request.state.caller = await run_in_threadpool(auth.writer, request, get_settings(), body_required)
            return await handler(CheckedJsonRequest(request.scope, request.receive))

        return guarded


def _echo(value):
    """A refused input as a 422 may echo it: JSON-safe, and short."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=repr, allow_nan=True)
        return value if len(text) <= MAX_ECHOED_INPUT and "NaN" not in text and "Infinity" not in text else text[:MAX_ECHOED_INPUT] + "..."
    if isinstance(value, str) and len(value) > MAX_ECHOED_INPUT:
        return value[:MAX_ECHOED_INPUT] + "..."
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)[:MAX_ECHOED_INPUT]


def bounded_detail(items: list[dict], total: int) -> list[dict]:
    """At most MAX_ERRORS items, each one's input and context JSON-safe and short; a last item saying how
    many more there were."""
    detail = []
    for item in items[:MAX_ERRORS]:
        item = dict(item)
        if "input" in item:
            item["input"] = _echo(item["input"])
        if isinstance(item.get("ctx"), dict):
            item["ctx"] = {key: _echo(value) if not isinstance(value, Exception) else str(value) for key, value in item["ctx"].items()}
        detail.append(item)
    if total > MAX_ERRORS:
        detail.append({"loc": [], "msg": f"{total - MAX_ERRORS:,} more errors not shown", "type": "too_many_errors"})
    return detail


class RefuseUnstorableQueries:
    """ASGI middleware: a query parameter PostgreSQL could not store (NUL, a lone surrogate) is a 422
    naming it, before any route runs (on SQLite it would pass; on PostgreSQL it was a 500)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            query = scope["query_string"].decode("latin-1")
            if "%" in query:  # NUL and surrogates arrive percent-encoded
                for name, value in parse_qsl(query, keep_blank_values=True):  # as Starlette decodes it
                    reason = unstorable(value) or unstorable(name)
                    if reason:
                        from fastapi.responses import JSONResponse

                        label = name.encode("unicode_escape").decode()
                        body = {"detail": [{"loc": ["query", label], "msg": reason, "type": "string_unstorable"}]}
                        await JSONResponse(status_code=422, content=body)(scope, receive, send)
                        return
        await self.app(scope, receive, send)


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(router, scope: Scope) -> list[str]:
    """Every method some route answers on this path (a path served by two routes, as GET and POST /jobs
    are, lists both; Starlette's 405 names only the first route's)."""
    from starlette.routing import Match

    allowed = []
    for method in HTTP_METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in router.routes):
            allowed.append(method)
    return allowed


class AnswerOptions:
    """ASGI middleware: `OPTIONS path` answers 204 with `Allow` listing every method of the path (a CORS
    preflight, with Access-Control-Request-Method, is left to the CORS middleware)."""

    def __init__(self, app: ASGIApp, router):
        self.app, self.router = app, router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = dict(scope.get("headers") or [])
            if b"access-control-request-method" not in headers:
                allowed = allowed_methods(self.router, scope)
                if allowed:
                    from starlette.responses import Response

                    await Response(status_code=204, headers={"Allow": ", ".join([*allowed, "OPTIONS"])})(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def method_not_allowed(request: Request, error) -> "Response":
    """405 with `Allow` naming every method of the path (see `allowed_methods`)."""
    from fastapi.exception_handlers import http_exception_handler

    if error.status_code == 405:
        allowed = allowed_methods(request.app.router, request.scope)
        if allowed:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, error)
