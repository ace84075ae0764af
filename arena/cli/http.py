"""The HTTP client of the Arena API: every failure a user can cause becomes one line (a UsageError).

The commands speak HTTP to the API (httpx), never to the database, so they work the same against
`arena up` on this machine and against a `docker compose` deployment elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os

from arena.cli.errors import UsageError, first_line

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = ("succeeded", "failed", "cancelled")  # run and job states that will not change again
SUBMIT_ATTEMPTS = 4  # `arena submit` tries this often (1, 2, 4 s apart), with one Idempotency-Key
RETRIED_STATUSES = (409, 502, 503, 504)  # a job being stored under the key, or a proxy/service hiccup


def add_url(parser) -> None:
    parser.add_argument("--url", default=None, help=f"the Arena API (default: ARENA_URL or {DEFAULT_URL})")
    parser.add_argument("--api-key", action=_ApiKeyOption, default=None, metavar="KEY", help="the service's API key, when it asks for one (default: ARENA_API_KEY)")


class _ApiKeyOption(argparse.Action):
    """`--api-key KEY` stands for ARENA_API_KEY: every ServiceClient of the command sends it."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ["ARENA_API_KEY"] = values
        setattr(namespace, self.dest, values)


class ServiceClient:
    """The HTTP API, with its failures turned into one-line errors."""

    def __init__(self, url: str | None = None, timeout: float = 30.0, api_key: str | None = None):
        import httpx

        self.url = (url or os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")
        key = (api_key or os.environ.get("ARENA_API_KEY") or "").strip()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def get(self, path: str, **params):
        return self._request("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None):
        return self._request("POST", path, json=body)

    def health(self) -> dict | None:
        """GET /health's answer (also when degraded, 503), or None when nothing answers."""
        import httpx

        try:
            response = self.http.get("/health", timeout=2.0)
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    def submit(self, body: dict, attempts: int = SUBMIT_ATTEMPTS) -> dict:
        """POST /jobs with an Idempotency-Key, retried (same key) when the connection fails or the service
        answers 409/502/503/504: the service stores the job once however many tries reach it."""
        import time
        import uuid

        import httpx

        headers = {"Idempotency-Key": f"arena-cli-{uuid.uuid4().hex}"}
        for attempt in range(1, attempts + 1):
            try:
                response = self.http.post("/jobs", json=body, headers=headers)
            except httpx.TransportError as error:
                if attempt == attempts:
                    self._unreachable(error)
            else:
                if response.status_code not in RETRIED_STATUSES or attempt == attempts:
                    return self._answer(response, "POST", "/jobs")
            time.sleep(min(2.0 ** (attempt - 1), 8.0))
        raise AssertionError("unreachable")

    def _unreachable(self, error):
        reason = first_line(error) if str(error) else type(error).__name__
        raise UsageError(f"cannot reach the Arena service at {self.url} ({reason}); start it with `arena up`, or pass --url / set ARENA_URL") from None

    def _request(self, method: str, path: str, **kwargs):
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            self._unreachable(error)
        return self._answer(response, method, path)

    def _answer(self, response, method: str, path: str):
        if response.status_code < 400:
            return response.json()
        detail = error_detail(response)
        if response.status_code == 404:
            raise UsageError(detail or f"not found: {path}")
        if response.status_code == 422:
            raise UsageError(f"refused: {detail}")
        if response.status_code == 401:
            raise UsageError(f"{detail} (set ARENA_API_KEY or pass --api-key)")
        if response.status_code == 429:
            retry = response.headers.get("retry-after")
            raise UsageError(f"{detail}" + (f"; retry in {retry} s" if retry else ""))
        raise UsageError(f"the service answered {response.status_code} to {method} {path}: {detail}")


def error_detail(response) -> str:
    """One line from an error response: FastAPI's validation list, or our {field, message}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg") or json.dumps(detail)
        where = detail.get("field")
        return f"{where}: {message}" if where and where not in message else message
    if isinstance(detail, list):  # FastAPI: [{"loc": ["body", "budget", "evaluations"], "msg": "..."}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                message = item.get("msg") or item.get("message") or ""
                parts.append(f"{location}: {message}" if location else message)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail)


def describe_service(client: ServiceClient) -> str:
    """'the Arena service at URL (embedded mode: SQLite database and broker in its data directory)'."""
    health = client.health()
    if health is None:
        return f"the Arena service at {client.url}"
    if health.get("mode") == "embedded":
        where = "embedded mode: SQLite database, SQLite (Kombu SQLAlchemy) broker"
    else:
        where = "production mode: its DATABASE_URL database and BROKER_URL broker"
    problems = [f"{name} {health[name]}" for name in ("database", "broker") if health.get(name) not in (None, "ok")]
    return f"the Arena service at {client.url} ({where}{'; ' + ', '.join(problems) if problems else ''})"


def job_id_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"a job id is a number, got {text!r}") from None
    if value < 1:
        raise UsageError(f"a job id is a positive number, got {text!r}")
    return value
