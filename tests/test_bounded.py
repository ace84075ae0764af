"""What one request may make the API do (issue: bounded work and no 500s), against a real API process.

- bodies over ARENA_MAX_BODY_BYTES are refused (413) on their Content-Length before a byte is read, and
  when streamed without one, soon after the limit;
- absurd bodies (600,000 unknown keys) are refused at once with a capped error list and a small answer,
  while /health keeps answering;
- NaN, Infinity and NUL (body or query) are 422s naming the field, never 500s;
- a job that can only fail, or never end, is refused at submit with the reason (cross-field checks see the
  defaults the user's settings are merged with);
- a job's curves before any run finished are an (empty) figure; OPTIONS lists every method of a path;
- a POST while the broker is down answers at once with its runs stored and `deferred_runs` saying so.

The API runs without a worker here: runs stay queued, so nothing the test sends is trained.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest
from conftest import PYTHON, REPO_ROOT, Service, _clean_env, wait_for

BODY_LIMIT = 16 * 1024 * 1024  # ARENA_MAX_BODY_BYTES here: the 600,000-key body (8 MB) fits, 100 MB does not
MAX_ERRORS = 20  # arena.service.guard.MAX_ERRORS


def _spawn_api(tmp_path_factory, name: str, extra: dict, healthy_status: int = 200) -> Service:
    data_dir = tmp_path_factory.mktemp(name)
    handle = Service("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir), **extra}), data_dir)
    log = data_dir / "api.log"
    handle.api = handle._spawn([PYTHON, "-m", "uvicorn", "arena.service.app:app", "--host", "127.0.0.1", "--port", str(handle.port), "--log-level", "warning"], log)

    def answering():
        if handle.api.poll() is not None:
            raise AssertionError(f"the API exited:\n{log.read_text()[-3000:]}")
        try:
            return handle.client.get("/health").status_code == healthy_status
        except Exception:  # noqa: BLE001 (not up yet)
            return False

    wait_for(answering, 60, message="the API to answer /health")
    return handle


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    handle = _spawn_api(tmp_path_factory, "arena-bounded", {"ARENA_MAX_BODY_BYTES": str(BODY_LIMIT)})
    yield handle
    handle.stop()


def _raw_post(port: int, headers: str, first_bytes: bytes, more=()) -> tuple[bytes, int]:
    """POST /jobs over a bare socket: the headers, `first_bytes`, then chunks from `more` until the server
    answers or stops reading. Returns (the response's first bytes, body bytes sent)."""
    answer: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = threading.Thread(target=lambda: answer.append(sock.recv(65536)), daemon=True)
        sock.sendall(headers.encode() + first_bytes)
        sent = len(first_bytes)
        reader.start()
        for chunk in more:
            if answer or not reader.is_alive():
                break
            try:
                sock.sendall(chunk)
            except OSError:  # closed, reset, or not read any more (timeout)
                break
            sent += len(chunk)
        reader.join(30)
    return (answer[0] if answer else b""), sent


def test_a_100_mb_body_is_refused_on_its_length_without_being_read(api):
    headers = f"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {100_000_000}\r\n\r\n"
    answer, sent = _raw_post(api.port, headers, b"{" + b" " * 65535)  # 64 kB of the announced 100 MB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent == 65536  # answered without waiting for the other 99.9 MB


def test_a_streamed_body_is_refused_soon_after_the_limit(api):
    headers = "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer, sent = _raw_post(api.port, headers, b"", (chunk for _ in range(100_000_000 // len(piece))))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 100_000_000 // 2  # stopped near the 16 MB limit (plus socket buffers), not at 100 MB


def test_600000_unknown_keys_answer_a_capped_list_and_health_keeps_answering(api):
    body = json.dumps({"task": "xor", "methods": ["ga"], "seeds": 1, "ga": {f"k{i}": 0 for i in range(600_000)}})
    assert len(body) < BODY_LIMIT
    answers = {}
    post = threading.Thread(target=lambda: answers.update(post=api.client.post("/jobs", content=body, headers={"Content-Type": "application/json"})))
    post.start()
    health = api.client.get("/health")
    post.join(120)
    assert health.status_code == 200
    response = answers["post"]
    assert response.status_code == 422
    assert len(response.content) < 2_000  # the answer is bounded (it was 198 MB)
    detail = response.json()["detail"]
    assert detail == [{"loc": ["body", "ga"], "msg": "an object of 600,000 keys: at most 256", "type": "too_many_keys"}]


def test_many_errors_are_capped_with_a_count_of_the_rest(api):
    response = api.client.post("/jobs", json={"task": "xor", "methods": ["ga"], "seeds": 1, "ga": {f"k{i}": 0 for i in range(200)}})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert all(item["loc"][:2] == ["body", "ga"] and "unknown" in item["msg"].lower() for item in detail[:MAX_ERRORS]), detail[:2]
    assert detail[-1] == {"loc": [], "msg": f"{200 - MAX_ERRORS} more errors not shown", "type": "too_many_errors"}


@pytest.mark.parametrize(
    "body, location",
    [
        ('{"task": "xor", "methods": ["ga"], "seeds": 1, "budget": {"seconds": NaN}}', ["body", "budget", "seconds"]),
        ('{"task": "xor", "methods": ["ga"], "seeds": 1, "ga": {"mutation_probability": Infinity}}', ["body", "ga", "mutation_probability"]),
        ('{"task": "xor", "methods": ["ga"], "seeds": 1, "ga": {"mutation_range": -Infinity}}', ["body", "ga", "mutation_range"]),
        ('{"task": "xor", "methods": ["ga"], "seeds": 1, "budget": {"evaluations": 1e999}}', ["body", "budget", "evaluations"]),
        ('{"task": "xor\\u0000", "methods": ["ga"], "seeds": 1}', ["body", "task"]),
        ('{"task": "car-oval", "methods": ["ga"], "seeds": 1, "task_options": {"track": "hard\\u0000"}}', ["body", "task_options", "track"]),
        ('{"task": "xor", "methods": ["ga"], "seeds": 1, "task_options": {"a": "\\ud800"}}', ["body", "task_options", "a"]),
        ("[" * 100_000 + "]" * 100_000, ["body"]),
    ],
    ids=["NaN", "Infinity", "-Infinity", "1e999", "NUL in task", "NUL in options", "lone surrogate", "deep nesting"],
)
def test_values_the_service_cannot_hold_are_422_naming_the_field(api, body, location):
    response = api.client.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == location, response.text


@pytest.mark.parametrize("path", ["/jobs?task=%00", "/runs.csv?task=x%00y", "/runs.jsonl?task=%00", "/leaderboard?task=xor%00", "/jobs?status=%00"])
def test_nul_in_a_query_is_422_naming_it(api, path):
    response = api.client.get(path)
    assert response.status_code == 422, response.text
    name = path.split("?")[1].split("=")[0]
    assert response.json()["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize(
    "settings, field, words",
    [
        ({"population_size": 10}, "num_parents_mating", "num_parents_mating (20) must not exceed population_size (10)"),
        ({"population_size": 2, "num_parents_mating": 2, "keep_elitism": 2}, "keep_elitism", "keep_elitism (2) must be below population_size (2)"),
        ({"population_size": 10, "num_parents_mating": 4, "keep_elitism": 10}, "keep_elitism", "must be below population_size"),
    ],
    ids=["default parents over population", "all elites: no new network", "all elites, parents fine"],
)
def test_a_job_that_can_only_fail_or_never_end_is_refused_at_submit(api, settings, field, words):
    response = api.client.post("/jobs", json={"task": "xor", "methods": ["ga"], "seeds": 16, "ga": settings, "budget": {"evaluations": 1000}})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "ga", field] and words in detail["msg"], detail


def test_settings_that_fit_their_merged_defaults_are_accepted(api):
    response = api.client.post("/jobs", json={"task": "xor", "methods": ["ga"], "seeds": 1, "ga": {"population_size": 10, "num_parents_mating": 4}})
    assert response.status_code == 202, response.text
    assert response.json()["deferred_runs"] == 0  # the broker answered: every run was sent


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_curves_of_a_job_with_no_curve_yet_are_an_empty_figure(api, fmt, magic):
    job = api.client.post("/jobs", json={"task": "xor", "seeds": 2}).json()  # every method; no worker: no curve
    response = api.client.get(f"/jobs/{job['job_id']}/curves.{fmt}")
    assert response.status_code == 200, response.text
    assert response.content.startswith(magic)


def test_options_and_405_list_every_method_of_the_path(api):
    options = api.client.options("/jobs")
    assert options.status_code == 204 and set(options.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    wrong = api.client.delete("/jobs")
    assert wrong.status_code == 405 and set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}


def test_summary_jobs_says_in_its_schema_what_it_accepts(api):
    parameter = next(p for p in api.client.get("/openapi.json").json()["paths"]["/summary"]["get"]["parameters"] if p["name"] == "jobs")
    pattern = parameter["schema"].get("pattern") or next(s["pattern"] for s in parameter["schema"]["anyOf"] if "pattern" in s)
    import re

    assert not re.match(pattern, "") and re.match(pattern, "1,2, 3")
    response = api.client.get("/summary?jobs=")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "jobs"]


def test_a_post_while_the_broker_is_down_answers_with_its_runs_stored_and_deferred(tmp_path_factory):
    """Redis on a port where nothing listens: the first POST tries one send and leaves the rest to the
    reconciler; the next POSTs (within the backoff) try none. Nothing is lost: the runs are queued."""
    with socket.socket() as sock:  # a port with nothing behind it
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    handle = _spawn_api(tmp_path_factory, "arena-no-broker", {"BROKER_URL": f"redis://127.0.0.1:{dead}/0"}, healthy_status=503)
    try:
        first = handle.client.post("/jobs", json={"task": "xor", "methods": ["ga", "cmaes"], "seeds": 3})
        second = handle.client.post("/jobs", json={"task": "and", "methods": ["ga"], "seeds": 2})
        assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
        assert first.json()["deferred_runs"] == 6 and second.json()["deferred_runs"] == 2
        for created in (first.json(), second.json()):
            job = handle.client.get(f"/jobs/{created['job_id']}").json()
            assert [run["status"] for run in job["runs"]] == ["queued"] * len(created["run_ids"])
        log = (handle.data_dir / "api.log").read_text(errors="replace")
        assert log.count("could not send") == 1, log[-3000:]  # one failed send for both POSTs
    finally:
        handle.stop()


def _lossy_proxy(target_port: int) -> tuple[int, socket.socket]:
    """A TCP proxy to the API that, on its first connection, forwards the request and drops the answer
    (closes on the client): a response lost on the way. Later connections are relayed both ways."""
    listener = socket.create_server(("127.0.0.1", 0))
    first = [True]

    def pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            if first[0]:
                first[0] = False

                def drop(client=client, upstream=upstream):
                    upstream.recv(65536)  # the API answered (the job is stored) ...
                    for end in (client, upstream):  # ... and the client never hears it
                        end.shutdown(socket.SHUT_RDWR)
                        end.close()

                threading.Thread(target=drop, daemon=True).start()
                continue
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], listener


def test_arena_submit_retries_with_one_idempotency_key_and_stores_one_job(api):
    from arena.cli.http import ServiceClient

    before = api.client.get("/jobs").json()["total"]
    port, listener = _lossy_proxy(api.port)
    try:
        client = ServiceClient(f"http://127.0.0.1:{port}")
        created = client.submit({"task": "xor", "methods": ["ga"], "seeds": 2})
    finally:
        listener.close()
    assert api.client.get("/jobs").json()["total"] == before + 1  # the lost answer's job, answered on the retry
    assert api.client.get("/jobs", params={"limit": 1}).json()["jobs"][0]["id"] == created["job_id"]
