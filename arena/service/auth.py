"""Who may write, and how fast: API keys, CSRF-safe writes, a per-key rate limit (docs/threat-model.md).

- Keys: `arena keys create NAME` makes a random 32-byte token, prints it once and stores only its SHA-256
  (and its first characters, to recognise it in `arena keys list`). A request sends it as
  `Authorization: Bearer KEY`; with `ARENA_AUTH=keys` every write needs one (401 with `WWW-Authenticate:
  Bearer` otherwise), and with `ARENA_READS=keys` every API read too.
- CSRF: a cross-site page can make a browser send a form (or a body-less fetch) to the API, with the user's
  network position (loopback, a private network) but without custom headers unless CORS allows it. So a
  write must be JSON (`POST /jobs`: `Content-Type: application/json`; cancel: no body or JSON), never a form
  content type (415), and a request a browser marks as cross-site (`Origin` of another host, or
  `Sec-Fetch-Site: cross-site`) is refused (403) unless its origin is in `ARENA_CORS_ORIGINS`.
- Rate: a token bucket per key in this process's memory (`ARENA_KEY_WRITES_PER_MINUTE`, burst
  `ARENA_KEY_WRITE_BURST`); over it, 429 with `Retry-After`. Each API process counts on its own.

Quotas (runs queued or running, CPU seconds queued) are checked when a job is stored: see `submit_job`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from arena.store.settings import Settings

KEY_PREFIX = "arena_"
PREFIX_LENGTH = len(KEY_PREFIX) + 6  # what `arena keys list` shows of a key
JSON_TYPES = ("application/json",)
# Paths anyone may read even with ARENA_READS=keys: the dashboard's pages and assets hold no data (they
# fetch it with the key the user pasted), and health checks must work without a key.
OPEN_READ_PREFIXES = ("/static/", "/ui/")
OPEN_READ_PATHS = {"/", "/health", "/docs", "/redoc", "/openapi.json", "/favicon.ico"}


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


@dataclass(frozen=True)
class Caller:
    """Who is writing: a key (id, name, its quotas) or, with auth off, anyone (key_id None)."""

    key_id: int | None = None
    name: str | None = None
    max_concurrent_runs: int | None = None
    max_queued_cpu_seconds: float | None = None

    @property
    def idempotency_scope(self) -> str:
        return str(self.key_id or 0)


ANONYMOUS = Caller()


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": 'Bearer realm="arena"'})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be `Bearer KEY`")
    return token.strip()


def authenticate(request: Request, settings: Settings) -> Caller:
    """The caller behind `Authorization: Bearer KEY`, or 401. A key that does not exist and a revoked key
    are refused alike."""
    from arena.store import queries
    from arena.store.db import session_scope

    token = bearer_token(request)
    if token is None:
        raise unauthorized("this service needs an API key: send `Authorization: Bearer KEY` (`arena keys create NAME` makes one)")
    digest = hash_key(token)
    with session_scope() as session:
        key = queries.api_key_by_hash(session, digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
            raise unauthorized("invalid or revoked API key")
        return Caller(
            key_id=key.id,
            name=key.name,
            max_concurrent_runs=key.max_concurrent_runs or settings.key_max_concurrent_runs,
            max_queued_cpu_seconds=key.max_queued_cpu_seconds or settings.key_max_queued_cpu_seconds,
        )


# --- CSRF -------------------------------------------------------------------------------------------


def media_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower()


def is_json(kind: str | None) -> bool:
    return kind is not None and (kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")))


def check_csrf(request: Request, settings: Settings, body_required: bool) -> None:
    """Refuse what a cross-site page could make a browser send: a form content type (415) or a request
    from another origin (403). Programs (the CLI, curl, httpx) send neither `Origin` nor `Sec-Fetch-Site`."""
    kind = media_type(request)
    if body_required and not is_json(kind):
        raise HTTPException(status_code=415, detail=f"send the job as JSON (Content-Type: application/json); got {kind or 'no content type'}")
    if not body_required and kind is not None and not is_json(kind):
        raise HTTPException(status_code=415, detail=f"send no body or JSON (Content-Type: application/json); got {kind}")
    origin = request.headers.get("origin")
    allowed = settings.cors_origin_list
    if origin is not None and origin != "null" and urlsplit(origin).netloc == request.headers.get("host", ""):
        return  # the dashboard itself: same host (whatever scheme a proxy in front terminates)
    if origin is not None and origin.rstrip("/") in allowed:
        return
    if origin is not None or request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise HTTPException(status_code=403, detail=f"cross-site writes are refused (origin {origin or 'unknown'}; see ARENA_CORS_ORIGINS)")


# --- the rate limit ---------------------------------------------------------------------------------


class TokenBucket:
    """Per key: `rate` tokens a second up to `burst`; a write takes one. In this process's memory only."""

    def __init__(self):
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int, rate: float, burst: int) -> float:
        """0 if allowed, else the seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate


_writes = TokenBucket()


def too_many(message: str, retry_after: float) -> HTTPException:
    return HTTPException(status_code=429, detail=message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


def writer(request: Request, settings: Settings, body_required: bool) -> Caller:
    """The checks every write makes before reading its body: CSRF, then the key, then the key's rate."""
    check_csrf(request, settings, body_required)
    if settings.auth != "keys":
        return ANONYMOUS
    caller = authenticate(request, settings)
    wait = _writes.take(caller.key_id, settings.key_writes_per_minute / 60.0, settings.key_write_burst)
    if wait > 0:
        raise too_many(f"too many writes with key {caller.name!r}: at most {settings.key_writes_per_minute:g} a minute (ARENA_KEY_WRITES_PER_MINUTE)", wait)
    return caller


def read_is_open(path: str) -> bool:
    return path in OPEN_READ_PATHS or path.startswith(OPEN_READ_PREFIXES)
