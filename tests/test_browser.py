"""The dashboard in a real headless browser (Debian's `chromium`), against a live embedded service.

The browser is driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test needs no Python package
beyond the standard library, and nothing is downloaded at run time. Skipped when no chromium binary is
found (`ARENA_TEST_CHROMIUM`, or `chromium` / `chromium-browser` / `google-chrome` on PATH).

Checked on every page: it loads with no console error and no uncaught exception, and every request the
page makes goes to the service itself (no other host). The job page draws curves with data points for
every method; the car run page animates; /docs renders its operations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlparse

import pytest

from conftest import wait_for


def chromium_binary() -> str | None:
    candidates = [os.environ.get("ARENA_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    return next((found for name in candidates if name and (found := shutil.which(name))), None)


class Browser:
    """One headless chromium, one page, spoken to over CDP on a pipe."""

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="arena-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The child's ends above 9, so that putting them on 3 and 4 cannot overwrite one with the other.
        to_browser_read, from_browser_write = (self._high(fd) for fd in (to_browser_read, from_browser_write))
        arguments = [
            binary, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--mute-audio", "--window-size=1400,900", "about:blank",
        ]
        if os.geteuid() == 0:
            arguments.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        # A trampoline puts our pipe ends on the descriptors chromium expects (3: commands in, 4: replies
        # out), then becomes chromium.
        trampoline = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(to_browser_read), str(from_browser_write), *arguments],
            pass_fds=(to_browser_read, from_browser_write), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)

    @staticmethod
    def _high(fd: int) -> int:
        import fcntl

        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    with self._lock:
                        if "id" in message:
                            self._replies[message["id"]] = message
                        else:
                            self.events.append(message)
                        self._lock.notify_all()

    def send(self, method: str, params: dict | None = None, session: bool = False, timeout: float = 30) -> dict:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: ident in self._replies, timeout):
                raise AssertionError(f"chromium did not answer {method} in {timeout} s")
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 60) -> None:
        """Navigate, wait for the load event, then until the JS expression `ready` is truthy."""
        with self._lock:
            self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        wait_for(lambda: any(e.get("method") == "Page.loadEventFired" for e in list(self.events)), timeout, message=f"{url} to load")
        wait_for(lambda: self.evaluate(ready), timeout, interval=0.3, message=f"{url}: {ready}")
        time.sleep(0.5)  # late console errors and requests

    def problems(self, origin: str) -> list[str]:
        """Console errors, uncaught exceptions and requests to any other origin since the last open()."""
        found = []
        for event in list(self.events):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('exception', {}).get('description') or params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value', a.get('description')) for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if urlparse(url).scheme in ("data", "blob", "about"):
                    continue
                if not url.startswith(origin + "/"):
                    found.append(f"request to another host: {url}")
        return found

    def screenshot(self, path: str) -> None:
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(5)
        os.close(self._to_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set ARENA_TEST_CHROMIUM)")
    handle = Browser(binary)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def finished_jobs(service):
    """Three finished jobs: a logic task, a function task and a car task, every method."""
    jobs = {
        "xor": service.submit({"task": "xor", "seeds": 3}),
        "sine": service.submit({"task": "sine", "seeds": 2, "budget": {"seconds": 5}}),
        "car-oval": service.submit({"task": "car-oval", "seeds": 1, "budget": {"evaluations": 20000, "seconds": 30}}),
    }
    for created in jobs.values():
        job = service.wait_job(created["job_id"], timeout=240)
        assert job["status"] == "succeeded", job
    return {task: service.job(created["job_id"]) for task, created in jobs.items()}


# One service is enough: the pages do not depend on the backend.
pytestmark = pytest.mark.parametrize("service", ["embedded"], indirect=True)


SCREENSHOTS = os.environ.get("ARENA_SCREENSHOTS")  # a directory: save each checked page there (docs/screenshots)


def check_page(browser: Browser, service, path: str, ready: str, screenshot: str | None = None) -> None:
    """Open the page; no console error, no other host, and nothing wider than the 1400 px window."""
    browser.open(service.base_url + path, ready)
    assert browser.problems(service.base_url) == [], path
    widths = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (path, "scrolls sideways", widths)
    if SCREENSHOTS and screenshot:
        browser.screenshot(os.path.join(SCREENSHOTS, screenshot))


def headline(browser: Browser) -> str:
    return browser.evaluate("(document.getElementById('headline') || {}).textContent || ''")


def test_jobs_page(browser, service, finished_jobs):
    ids = [job["id"] for job in finished_jobs.values()]
    check_page(browser, service, "/", f"document.querySelectorAll('main table tbody tr').length >= {len(ids)}", "jobs.png")
    links = browser.evaluate("[...document.querySelectorAll('main a')].map(a => a.getAttribute('href'))")
    assert all(f"/ui/jobs/{i}" in links for i in ids)


@pytest.mark.parametrize("task", ["xor", "sine", "car-oval"])
def test_job_page_draws_every_method(browser, service, finished_jobs, task):
    job = finished_jobs[task]
    check_page(browser, service, f"/ui/jobs/{job['id']}", "document.querySelectorAll('.uplot canvas').length >= 3", "job.png" if task == "xor" else None)
    # the verdict's first line is a plain sentence about this task, over the details
    assert headline(browser).startswith(f"On {task}, "), headline(browser)
    assert browser.evaluate("document.querySelector('.verdict').compareDocumentPosition(document.getElementById('headline'))") & 2  # headline first
    charts = browser.evaluate("window.arenaCharts")
    by_id = {chart["id"]: chart["points"] for chart in charts}
    assert {"curve-evaluations", "curve-seconds", "solved"} <= set(by_id)
    for chart in ("curve-evaluations", "curve-seconds"):
        for method in job["methods"]:
            drawn = [points for label, points in by_id[chart].items() if label.split(" ")[0] == method]
            assert drawn and drawn[0] > 0, (chart, method, by_id[chart])
    assert browser.evaluate("document.querySelectorAll('.verdict li').length") >= 1
    assert browser.evaluate("document.querySelectorAll('a[href^=\"/ui/runs/\"]').length") == len(job["runs"])
    wait_for(lambda: browser.evaluate("!!window.arenaCharts.find(c => c.id === 'solved').y"), 10, message="the KM chart's scales")
    y_low, y_high = browser.evaluate("window.arenaCharts.find(c => c.id === 'solved').y")
    assert (y_low, y_high) == (0, 1)  # a proportion: the axis is 0 to 1 whatever the data
    unit = "agent-steps" if task.startswith("car") else "evaluations"
    assert browser.evaluate("document.querySelector('#solved h3').textContent").endswith(f"against {unit} (Kaplan-Meier)")
    # every statistic's name explains itself
    assert {"ERT", "KM", "dup"} <= set(browser.evaluate("[...document.querySelectorAll('abbr.term')].map(a => a.textContent.split(' ')[0])"))


def test_function_and_logic_run_pages(browser, service, finished_jobs):
    sine_run = finished_jobs["sine"]["runs"][0]["id"]
    check_page(browser, service, f"/ui/runs/{sine_run}", "document.getElementById('predictions') && document.querySelectorAll('.uplot').length >= 3", "run.png")
    assert browser.evaluate("window.arenaCharts.find(c => c.id === 'predictions').points.network") == 1000
    xor_run = finished_jobs["xor"]["runs"][0]["id"]
    check_page(browser, service, f"/ui/runs/{xor_run}", "[...document.querySelectorAll('h2')].some(h => h.textContent.startsWith('Truth table'))")
    assert "arena-run" in browser.evaluate("document.querySelector('a[download]').getAttribute('download')")


def test_car_run_page_animates(browser, service, finished_jobs):
    run = finished_jobs["car-oval"]["runs"][0]["id"]
    check_page(browser, service, f"/ui/runs/{run}", "window.arenaReplay && window.arenaReplay.frame > 0", "car-run.png")
    first = browser.evaluate("window.arenaReplay.frame")
    time.sleep(0.5)
    later = browser.evaluate("[window.arenaReplay.frame, window.arenaReplay.frames, window.arenaReplay.drawn]")
    assert later[0] > first or later[0] == later[1] - 1, later  # moving, or already at the end
    assert later[2] > 2
    # the trajectory picture is rendered on demand (a child process): wait for it, then for late errors
    wait_for(lambda: browser.evaluate("document.querySelector('img[src$=\"trajectory.png\"]').naturalWidth > 0"), 90,
             interval=0.5, message="the trajectory picture")
    time.sleep(0.3)
    assert browser.problems(service.base_url) == []


def test_leaderboard_and_summary_pages(browser, service, finished_jobs):
    check_page(browser, service, "/ui/leaderboard?task=xor", "document.querySelectorAll('main table tbody tr').length >= 3", "leaderboard.png")
    assert browser.evaluate("document.querySelectorAll('svg.interval').length") >= 3
    assert headline(browser).startswith("On xor, "), headline(browser)
    # each configuration in words (network and budget), not a settings hash; rates as "3/3 [44%-100%]"
    configurations = browser.evaluate("[...document.querySelectorAll('span.configuration')].map(s => s.textContent)")
    assert configurations and all(text.startswith("2-4-1 ") and " evals" in text for text in configurations), configurations
    cells = browser.evaluate("[...document.querySelectorAll('main table tbody tr')].map(r => r.cells[3].textContent)")
    assert all(re.search(r"\d+/\d+ \[\d+%-\d+%\]$", cell) for cell in cells), cells
    check_page(browser, service, "/ui/summary", "document.querySelector('main h1') && document.querySelector('main h1').textContent.startsWith('Summary')", "summary.png")
    assert headline(browser).startswith("Across "), headline(browser)
    words = browser.evaluate("[...document.querySelectorAll('main table')].pop().innerText")
    assert "undecided" not in words and "snake" not in words and "cpu_seconds" not in words
    # methods in the registry's order on every row
    # (xor's row: the task of this module's finished jobs, so every method has runs there whatever ran before)
    solved = browser.evaluate("[...[...document.querySelectorAll('main table')].pop().querySelectorAll('tbody tr')].find(r => r.cells[0].textContent === 'xor').cells[1].textContent")
    assert solved.index("backprop") < solved.index("GA") < solved.index("CMA-ES"), solved


def test_docs_render_offline(browser, service, finished_jobs):
    check_page(browser, service, "/docs", "document.querySelectorAll('.opblock').length >= 5")
    check_page(browser, service, "/redoc", "document.querySelectorAll('[data-section-id]').length >= 5")


def test_car_generalize_replay_draws_every_scoring_track(browser, service, finished_jobs):
    """car-generalize scores on several tracks: the replay offers each one, with its own episodes."""
    created = service.submit({"task": "car-generalize", "methods": ["cmaes"], "seeds": 1, "budget": {"evaluations": 5000}})
    job = service.wait_job(created["job_id"], timeout=240)
    assert job["status"] == "succeeded", job
    run = job["runs"][0]["id"]
    check_page(browser, service, f"/ui/runs/{run}", "window.arenaReplay && window.arenaReplay.frame > 0 && window.arenaTracks")
    tracks = browser.evaluate("window.arenaTracks")
    assert len(tracks) > 1 and all(track["episodes"] > 0 for track in tracks), tracks
    options = browser.evaluate("document.querySelectorAll('#track-picker option').length")
    assert options == len(tracks)
    for k in (1, len(tracks) - 1):  # picking a track replays its own episodes on it
        browser.evaluate(f"(() => {{ const s = document.getElementById('track-picker'); s.value = '{k}'; s.dispatchEvent(new Event('change')); }})()")
        shown = browser.evaluate("[window.arenaReplay.track, window.arenaReplay.episodes]")
        assert shown == [tracks[k]["name"], tracks[k]["episodes"]], (shown, tracks[k])
    assert browser.problems(service.base_url) == []
