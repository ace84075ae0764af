"""Access and cost, over real HTTP: API keys (ARENA_AUTH=keys, ARENA_READS=keys), quotas and the rate limit
(429 with Retry-After), CSRF-safe writes and closed CORS, Idempotency-Key, and failed runs' one-line
errors. See docs/threat-model.md. Cost caps (422 naming the limit, nothing stored) are among the bad
payloads of tests/test_service_api.py.

`keyed_service` is an embedded API alone (no worker: runs stay queued, so quotas are exact) with keys
required for writes and reads; `service` is the default (no keys) in both modes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO_ROOT

XOR = {"task": "xor", "methods": ["ga"], "seeds": 1, "budget": {"evaluations": 1000}}


# --- helpers ------------------------------------------------------------------------------------------


def make_key(service, max_concurrent_runs: int | None = None, max_queued_cpu_seconds: float | None = None) -> tuple[str, str]:
    """(name, key): a key made in the service's database, as `arena keys create` does."""
    from arena.service import auth
    from arena.store import queries
    from arena.store.db import session_scope

    name = f"test-{uuid.uuid4().hex[:8]}"
    key = auth.new_key()
    with session_scope(service.database_url) as session:
        queries.create_api_key(session, name, auth.hash_key(key), auth.key_prefix(key), max_concurrent_runs, max_queued_cpu_seconds)
    return name, key


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def reader(keyed_service) -> dict:
    """Headers with a key that only reads (ARENA_READS=keys on the keyed service)."""
    return bearer(make_key(keyed_service)[1])


def jobs_stored(service, headers: dict | None = None) -> int:
    response = service.client.get("/jobs", params={"limit": 1}, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()["total"]


def arena_cli(service, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in service.env.items() if k != "ARENA_API_KEY"}
    return subprocess.run([sys.executable, "-m", "arena", *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)


# --- keys -------------------------------------------------------------------------------------------


def test_keys_cli_prints_the_key_once_and_a_revoked_key_stops_working(keyed_service, reader):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = arena_cli(keyed_service, "keys", "create", name, "--max-concurrent-runs", "7")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("arena_") and len(key) > 40 and "\n" not in key  # stdout: the key alone
    assert "only this once" in created.stderr

    again = arena_cli(keyed_service, "keys", "create", name)
    assert again.returncode == 2 and "exists already" in again.stderr

    listing = arena_cli(keyed_service, "keys", "list")
    assert listing.returncode == 0, listing.stderr
    assert name in listing.stdout and key[:12] in listing.stdout
    assert key not in listing.stdout and key[12:] not in listing.stdout  # never the key itself
    as_json = arena_cli(keyed_service, "keys", "list", "--json")
    entry = next(item for item in json.loads(as_json.stdout) if item["name"] == name)
    assert entry["max_concurrent_runs"] == 7 and entry["revoked_at"] is None and key not in as_json.stdout

    response = keyed_service.client.post("/jobs", json=XOR, headers=bearer(key))
    assert response.status_code == 202, response.text

    revoked = arena_cli(keyed_service, "keys", "revoke", name)
    assert revoked.returncode == 0, revoked.stderr
    before = jobs_stored(keyed_service, reader)
    response = keyed_service.client.post("/jobs", json=XOR, headers=bearer(key))
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert jobs_stored(keyed_service, reader) == before
    row = next(line for line in arena_cli(keyed_service, "keys", "list").stdout.splitlines() if line.startswith(name))
    assert not row.rstrip().endswith(" -")  # the REVOKED column has a date


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer arena_not-a-key"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["no key", "unknown key", "basic auth", "empty bearer"],
)
def test_writes_without_a_valid_key_are_401_and_store_nothing(keyed_service, reader, headers):
    before = jobs_stored(keyed_service, reader)
    response = keyed_service.client.post("/jobs", json=XOR, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert keyed_service.client.post("/jobs/1/cancel", headers=headers).status_code == 401
    assert jobs_stored(keyed_service, reader) == before


def test_a_key_submits_and_cancels_its_own_jobs_only(keyed_service, reader):
    _, alice = make_key(keyed_service)
    _, bob = make_key(keyed_service)
    before = jobs_stored(keyed_service, reader)
    created = keyed_service.client.post("/jobs", json=XOR, headers=bearer(alice))
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    assert jobs_stored(keyed_service, reader) == before + 1

    refused = keyed_service.client.post(f"/jobs/{job_id}/cancel", headers=bearer(bob))
    assert refused.status_code == 403, refused.text
    assert keyed_service.client.get(f"/jobs/{job_id}", headers=reader).json()["cancel_requested"] is False
    cancelled = keyed_service.client.post(f"/jobs/{job_id}/cancel", headers=bearer(alice))
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True


def test_reads_need_a_key_when_asked_but_health_and_pages_do_not(keyed_service, reader):
    for path in ("/jobs", "/tasks", "/leaderboard?task=xor", "/summary", "/runs/1"):
        response = keyed_service.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert keyed_service.client.get("/jobs", headers=reader).status_code == 200
    assert keyed_service.client.get("/health").status_code == 200
    assert keyed_service.client.get("/").status_code == 200  # the dashboard's shell: it fetches data with the key
    assert keyed_service.client.get("/openapi.json").status_code == 200


# --- quotas and the rate limit --------------------------------------------------------------------------


def test_over_the_keys_run_quota_is_429_with_retry_after(keyed_service, reader):
    _, key = make_key(keyed_service, max_concurrent_runs=3)
    two_runs = {**XOR, "seeds": 2}
    assert keyed_service.client.post("/jobs", json=two_runs, headers=bearer(key)).status_code == 202
    before = jobs_stored(keyed_service, reader)
    response = keyed_service.client.post("/jobs", json=two_runs, headers=bearer(key))
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "quota of 3" in response.json()["detail"]
    assert keyed_service.client.post("/jobs", json={**XOR, "seeds": 1}, headers=bearer(key)).status_code == 202  # 3 of 3
    # A job that could never fit is a 422 (waiting would not help), naming the key's limit.
    never = keyed_service.client.post("/jobs", json={**XOR, "seeds": 4}, headers=bearer(key))
    assert never.status_code == 422 and "at most 3 runs" in never.text
    assert jobs_stored(keyed_service, reader) == before + 1


def test_over_the_keys_cpu_seconds_quota_is_429(keyed_service, reader):
    _, key = make_key(keyed_service, max_queued_cpu_seconds=100)
    job = {**XOR, "seeds": 2, "budget": {"seconds": 30}}  # 2 runs x 30 s = 60 CPU seconds at most
    assert keyed_service.client.post("/jobs", json=job, headers=bearer(key)).status_code == 202
    before = jobs_stored(keyed_service, reader)
    response = keyed_service.client.post("/jobs", json=job, headers=bearer(key))
    assert response.status_code == 429 and "retry-after" in response.headers, response.text
    assert "CPU seconds" in response.json()["detail"]
    assert jobs_stored(keyed_service, reader) == before
    # Cancelling frees the quota.
    first = keyed_service.client.get("/jobs", params={"limit": 1}, headers=reader).json()["jobs"][0]["id"]
    assert keyed_service.client.post(f"/jobs/{first}/cancel", headers=bearer(key)).status_code == 200
    assert keyed_service.client.post("/jobs", json=job, headers=bearer(key)).status_code == 202


def test_writes_per_key_are_rate_limited(keyed_service):
    _, key = make_key(keyed_service)
    _, other = make_key(keyed_service)
    # ARENA_KEY_WRITE_BURST=5 on this service; a cancel of no job is a write that stores nothing.
    statuses = [keyed_service.client.post("/jobs/999999/cancel", headers=bearer(key)).status_code for _ in range(5)]
    assert statuses == [404] * 5
    limited = keyed_service.client.post("/jobs/999999/cancel", headers=bearer(key))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert keyed_service.client.post("/jobs/999999/cancel", headers=bearer(other)).status_code == 404  # per key


# --- idempotency ---------------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_job(service):
    token = uuid.uuid4().hex
    before = jobs_stored(service)
    first = service.client.post("/jobs", json=XOR, headers={"Idempotency-Key": token})
    assert first.status_code == 202, first.text
    again = service.client.post("/jobs", json=XOR, headers={"Idempotency-Key": token})
    assert again.status_code == 200, again.text
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["run_ids"] == first.json()["run_ids"]
    assert again.headers["idempotent-replayed"] == "true"
    assert jobs_stored(service) == before + 1

    other_body = service.client.post("/jobs", json={**XOR, "seeds": 2}, headers={"Idempotency-Key": token})
    assert other_body.status_code == 422 and "different body" in other_body.text
    assert other_body.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert jobs_stored(service) == before + 1
    fresh = service.client.post("/jobs", json=XOR, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 202 and fresh.json()["job_id"] != first.json()["job_id"]


def test_idempotency_keys_are_per_api_key(keyed_service, reader):
    _, alice = make_key(keyed_service)
    _, bob = make_key(keyed_service)
    token = {"Idempotency-Key": "retry-1"}
    first = keyed_service.client.post("/jobs", json=XOR, headers={**bearer(alice), **token})
    replay = keyed_service.client.post("/jobs", json=XOR, headers={**bearer(alice), **token})
    other = keyed_service.client.post("/jobs", json=XOR, headers={**bearer(bob), **token})
    assert (first.status_code, replay.status_code, other.status_code) == (202, 200, 202)
    assert replay.json()["job_id"] == first.json()["job_id"] != other.json()["job_id"]


# --- CSRF and CORS --------------------------------------------------------------------------------------

FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_what_a_cross_site_form_can_send_is_refused(service, content_type):
    before = jobs_stored(service)
    submitted = service.client.post("/jobs", content=json.dumps(XOR).encode(), headers={"Content-Type": content_type})
    assert submitted.status_code == 415, submitted.text
    assert service.client.post("/jobs", content=json.dumps(XOR).encode()).status_code == 415  # no content type either
    job_id = service.submit(XOR)["job_id"]
    refused = service.client.post(f"/jobs/{job_id}/cancel", content=b"x=1", headers={"Content-Type": content_type})
    assert refused.status_code == 415, refused.text
    assert service.job(job_id)["cancel_requested"] is False
    assert jobs_stored(service) == before + 1


def test_cross_site_requests_are_refused_and_cors_is_closed(service):
    job_id = service.submit(XOR)["job_id"]
    # A body-less fetch from another site carries its Origin (browsers add it to every POST).
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = service.client.post(f"/jobs/{job_id}/cancel", headers=headers)
        assert response.status_code == 403, response.text
    assert service.job(job_id)["cancel_requested"] is False
    # The dashboard itself (same host) and programs (no Origin) may.
    same_origin = service.client.post(f"/jobs/{job_id}/cancel", headers={"Origin": service.base_url, "Content-Type": "application/json"}, content=b"{}")
    assert same_origin.status_code in (200, 409), same_origin.text  # 409: it already finished

    preflight = service.client.options(
        "/jobs", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    )
    assert not any(name.lower().startswith("access-control-") for name in preflight.headers)
    read = service.client.get("/jobs", headers={"Origin": "http://evil.example"})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_the_openapi_document_lists_the_new_answers(service):
    schema = service.client.get("/openapi.json").json()
    submit = schema["paths"]["/jobs"]["post"]
    assert {"200", "202", "401", "403", "415", "422", "429"} <= set(submit["responses"])
    assert any(parameter["name"] == "Idempotency-Key" for parameter in submit["parameters"])
    assert {"401", "403", "404", "409", "415", "429"} <= set(schema["paths"]["/jobs/{job_id}/cancel"]["post"]["responses"])


# --- failed runs ----------------------------------------------------------------------------------------

TRACEBACK = """Traceback (most recent call last):
  File "/srv/arena/arena/workers/worker.py", line 98, in execute
    result = run(spec, seed)
  File "/srv/arena/arena/methods/ga.py", line 150, in train
    raise ValueError("fitness is NaN for every member")
ValueError: fitness is NaN for every member
"""


def test_a_failed_run_shows_one_line_and_keeps_the_traceback(keyed_service, reader):
    from arena.store import queries
    from arena.store.db import session_scope

    _, key = make_key(keyed_service)
    created = keyed_service.client.post("/jobs", json=XOR, headers=bearer(key)).json()
    run_id = created["run_ids"][0]
    # What a worker does when a run raises (arena/workers/worker.py), straight on the service's database.
    with session_scope(keyed_service.database_url) as session:
        claim = queries.claim_run(session, run_id, "test-worker", queries.seconds_ago(60), 3)
    with session_scope(keyed_service.database_url) as session:
        assert queries.record_result(session, run_id, claim.attempt, "failed", error=TRACEBACK)

    run = keyed_service.client.get(f"/runs/{run_id}", headers=reader).json()
    assert run["status"] == "failed"
    assert run["error"] == "ValueError: fitness is NaN for every member"
    job = keyed_service.client.get(f"/jobs/{created['job_id']}", headers=reader)
    assert "/srv/arena" not in job.text and "Traceback" not in job.text
    assert job.json()["runs"][0]["error"] == run["error"]
    for export in ("/runs.csv", "/runs.jsonl"):  # the exports show the same one line
        text = keyed_service.client.get(export, params={"job": created["job_id"]}, headers=reader).text
        assert "/srv/arena" not in text and "Traceback" not in text and "ValueError: fitness is NaN for every member" in text, export
    with session_scope(keyed_service.database_url) as session:
        assert queries.get_run(session, run_id).error == TRACEBACK  # for operators


def test_one_line_error_keeps_messages_short():
    from arena.service.schemas import one_line_error

    assert one_line_error("lost its worker 3 times; gave up") == "lost its worker 3 times; gave up"
    assert one_line_error("first line\nsecond line") == "first line"
    assert one_line_error(TRACEBACK) == "ValueError: fitness is NaN for every member"
    assert one_line_error(None) is None
    assert len(one_line_error("x" * 5000)) == 500
    assert os.sep not in one_line_error(TRACEBACK)
