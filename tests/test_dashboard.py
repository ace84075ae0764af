"""The dashboard over real HTTP: pages, assets, offline docs, curves, predictions and car episodes.

What a browser does with the pages is tests/test_browser.py; here every page and asset is served, no
shipped page, script or style names another host, and the JSON and pictures the pages use are right.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

STATIC = Path(__file__).resolve().parents[1] / "arena" / "service" / "static"
OWN_FILES = sorted(p for p in STATIC.rglob("*") if p.suffix in (".html", ".js", ".css") and "vendor" not in p.parts)
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)
PAGES = ["/", "/ui/jobs/1", "/ui/runs/1", "/ui/leaderboard?task=xor", "/ui/summary"]


def test_own_files_name_no_other_host():
    assert OWN_FILES, "no dashboard files found"
    for path in OWN_FILES:
        assert not ABSOLUTE_URL.search(path.read_text()), path


def test_numpy_forward_matches_torch():
    """The API's numpy forward (no torch) gives what the workers' network gives."""
    from arena.models.architecture import Architecture
    from arena.models.network import PopulationForward
    from arena.service.dashboard import numpy_forward

    rng = np.random.default_rng(0)
    for hidden, output in [("tanh", "sigmoid"), ("relu", "identity"), ("softsign", "tanh"), ("sigmoid", "identity")]:
        arch = Architecture(3, (5, 4), 2, hidden, output)
        weights = rng.normal(size=arch.num_parameters).astype(np.float32)
        x = rng.normal(size=(7, 3)).astype(np.float32)
        expected = PopulationForward(arch).numpy(weights[None])(x)[0]
        np.testing.assert_allclose(numpy_forward(weights, arch.model_dump(mode="json"), x), expected, rtol=1e-4, atol=1e-5)


def test_aggregate_median_and_quartiles():
    from arena.service.plots import aggregate

    curves = {"ga": [[{"evaluations": 10, "seconds": 1, "score": 3.0}, {"evaluations": 100, "seconds": 2, "score": 1.0}],
                     [{"evaluations": 10, "seconds": 1, "score": 5.0}]],
              "backprop": [None]}
    result = aggregate(curves)["evaluations"]
    x = np.array(result["x"])
    assert x[0] == 10 and x[-1] == 100
    ga = result["methods"]["ga"]
    assert ga["runs"] == 2 and ga["median"][0] == 4.0 and ga["median"][-1] == 3.0  # (5 + 1) / 2 at the end
    assert result["methods"]["backprop"]["runs"] == 0


@pytest.fixture(scope="module")
def jobs(service):
    xor = service.submit({"task": "xor", "seeds": 2})
    sine = service.submit({"task": "sine", "methods": ["backprop"], "seeds": 1, "budget": {"seconds": 3}})
    car = service.submit({"task": "car-oval", "methods": ["cmaes"], "seeds": 1, "budget": {"evaluations": 5000}})
    return {name: service.wait_job(created["job_id"], timeout=180) for name, created in (("xor", xor), ("sine", sine), ("car", car))}


def test_pages_and_their_assets(service, jobs):
    for path in PAGES:
        response = service.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
            assert service.client.get(asset).status_code == 200, asset
    assert service.client.get("/static/../api.py").status_code == 404
    assert service.client.get("/static/nothing.js").status_code == 404


def test_docs_are_served_offline(service):
    for path, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        response = service.client.get(path)
        assert response.status_code == 200
        assert not re.search(r"""(?:src|href)=["']?https?://""", response.text), path
        for asset in re.findall(r"""(/static/vendor/[^"'\s]+)""", response.text):
            assert service.client.get(asset).status_code == 200, asset
        assert all(name in response.text for name in assets)
    assert service.client.get("/openapi.json").status_code == 200


def test_curves(service, jobs):
    job = jobs["xor"]
    data = service.client.get(f"/jobs/{job['id']}/curves.json").json()
    assert set(data["curves"]["evaluations"]["methods"]) == set(job["methods"])
    for method, series in data["curves"]["evaluations"]["methods"].items():
        assert series["runs"] == 2 and any(v is not None for v in series["median"]), method
    assert data["proportion_solved"]
    png = service.client.get(f"/jobs/{job['id']}/curves.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    svg = service.client.get(f"/jobs/{job['id']}/curves.svg")
    assert svg.status_code == 200 and b"<svg" in svg.content
    assert service.client.get("/jobs/999999/curves.png").status_code == 404
    sine = service.client.get(f"/jobs/{jobs['sine']['id']}/curves.json").json()
    assert sine["threshold"] == pytest.approx(1e-3)


def test_predictions(service, jobs):
    run = jobs["sine"]["runs"][0]
    body = service.client.get(f"/runs/{run['id']}/predictions").json()
    assert body["family"] == "function" and len(body["inputs"]) == len(body["output"]) == 1000
    mse = float(np.mean((np.array(body["output"]) - np.array(body["target"])) ** 2))
    assert mse == pytest.approx(service.job(jobs["sine"]["id"])["runs"][0]["score"], rel=1e-3)
    xor_run = jobs["xor"]["runs"][0]
    body = service.client.get(f"/runs/{xor_run['id']}/predictions").json()
    assert body["family"] == "logic" and body["inputs"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    if xor_run["solved"]:
        assert [o[0] > 0.5 for o in body["output"]] == [t[0] > 0.5 for t in body["target"]]
    car_run = jobs["car"]["runs"][0]
    assert service.client.get(f"/runs/{car_run['id']}/predictions").status_code == 404


def test_car_episodes(service, jobs):
    run = jobs["car"]["runs"][0]
    body = service.client.get(f"/runs/{run['id']}/episodes.json", timeout=120).json()
    assert len(body["episodes"]) == 32 and body["dt"] > 0
    assert {"left", "right", "centre"} <= set(body["track"])
    laps = sum(e["lap"] for e in body["episodes"])
    detail = service.client.get(f"/runs/{run['id']}").json()
    assert laps == detail["metrics"]["laps_completed"]  # the replay is the scoring
    assert service.client.get(f"/runs/{jobs['xor']['runs'][0]['id']}/episodes.json").status_code == 404
