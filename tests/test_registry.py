"""A method is one module and one registry line.

A plug-in module, registered with its one line (`METHODS[name] = Method(...)`), is found everywhere a
method shows: in the OpenAPI (its settings object, with its bounds), in the cost caps (a job with it is
refused by ITS memory model), in a plot legend (its colour and label in the rendered SVG), in the
dashboard (GET /methods, which the pages' common.js draws with), in the versions its runs record and in
its worker's warm imports. No other file names it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from conftest import PYTHON, REPO_ROOT, Service, _clean_env

PLUGIN = "plug"
COLOUR = "#123456"
LABEL = "Plug-in search"
# Its memory model keeps four copies of each member (say, weights, two moments and a noise draw): a job
# over the cap by this model is under it by the default one (one copy), so a refusal proves which was used.
COPIES = 4

PLUGIN_SOURCE = textwrap.dedent(
    f'''
    """A plug-in method that only describes itself (training one from the README is tests/test_layout.py's)."""
    from pydantic import Field

    from arena.validation import Model

    NAME = "{PLUGIN}"
    LABEL = "{LABEL}"
    COLOUR = "{COLOUR}"
    LIBRARIES = ("scipy",)
    WARM_IMPORTS = ("json",)


    class Settings(Model):
        """A plug-in's settings."""

        population_size: int = Field(20, ge=2, le=10_000, description="samples per step")
        step: float = Field(0.1, gt=0, le=10, description="standard deviation of a sample")


    def memory_floats(architecture, settings):
        n = architecture.num_parameters
        return {COPIES} * n * settings.population_size, "population_size", f"{{n:,}} parameters x {COPIES} copies x population_size {{settings.population_size}}"


    def train(task, architecture, settings, budget, seed, progress=None):
        raise NotImplementedError("this plug-in only describes itself")
    '''
)


def plugin_module() -> types.ModuleType:
    module = types.ModuleType("plug_search")
    exec(compile(PLUGIN_SOURCE, "plug_search", "exec"), module.__dict__)
    sys.modules["plug_search"] = module
    return module


def register() -> None:
    """What a user writes in arena/methods/__init__.py, as one line (here at run time, before the app is built)."""
    from arena.methods import METHODS, Method

    module = plugin_module()
    METHODS[PLUGIN] = Method(PLUGIN, "a plug-in for the registry test", module, module)


@pytest.fixture
def registered(monkeypatch):
    from arena.methods import METHODS, Method

    module = plugin_module()
    monkeypatch.setitem(METHODS, PLUGIN, Method(PLUGIN, "a plug-in for the registry test", module, module))  # the one line
    yield module
    sys.modules.pop("plug_search", None)


# --- in this process: the registry's readers ---------------------------------------------------------


def test_the_registry_derives_its_algorithms_labels_colours_libraries_and_warm_imports(registered):
    from arena.methods import ALGORITHMS, METHODS, library_versions
    from arena.workers.app import warm_modules

    assert ALGORITHMS[PLUGIN] is registered  # no second line: the algorithm table reads METHODS
    assert METHODS[PLUGIN].public() == {
        "name": PLUGIN, "label": LABEL, "description": "a plug-in for the registry test", "colour": COLOUR,
        "algorithms": {"supervised": PLUGIN, "control": PLUGIN}, "libraries": ["scipy"], "default": True,
    }  # fmt: skip
    assert "scipy" in library_versions()  # every run records every method's libraries
    assert "json" in warm_modules((PLUGIN,)) and "json" not in warm_modules(("ga",))
    assert "torch._dynamo" in warm_modules(("backprop",)) and "torch._dynamo" not in warm_modules(("ga",))
    # The built-ins say the same about themselves as before the registry held it.
    assert {name: METHODS[name].colour for name in ("backprop", "ga", "cmaes")} == {"backprop": "#1f77b4", "ga": "#d62728", "cmaes": "#2ca02c"}
    assert {"torch", "pygad", "cma", "numpy", "arena", "python"} <= set(library_versions())


def test_the_cost_caps_use_the_plugins_own_memory_model(registered):
    from fastapi.exceptions import RequestValidationError

    from arena.runspec import resolve
    from arena.service.schemas import check_limits, run_memory_floats
    from arena.store.settings import Settings

    spec = resolve("xor", PLUGIN, settings={"population_size": 2000})
    n = spec.architecture.num_parameters
    floats, field, words = run_memory_floats(spec)
    assert (floats, field) == (COPIES * n * 2000, "population_size") and f"{COPIES} copies" in words
    limit = 2 * n * 2000  # above the default model's n x population, below the plug-in's 4 x
    with pytest.raises(RequestValidationError) as refused:
        check_limits(spec, Settings(ARENA_MAX_POPULATION_PARAMETERS=limit))
    (error,) = refused.value.errors()
    assert error["loc"] == ("body", PLUGIN, "population_size") and f"{COPIES} copies" in error["msg"]
    check_limits(resolve("xor", PLUGIN, settings={"population_size": 100}), Settings(ARENA_MAX_POPULATION_PARAMETERS=limit))


def test_a_plot_legend_draws_the_plugin_in_its_colour_with_its_label(registered):
    from arena.service import plots

    series = {"median": [1.0, 0.5, 0.1], "q1": [1.0, 0.4, 0.05], "q3": [1.0, 0.6, 0.2], "runs": 3}
    aggregated = {"evaluations": {"x": [0, 100, 200], "methods": {PLUGIN: series, "ga": series}}}
    svg = plots.render_curves(aggregated, "xor", "mse", False, fmt="svg").decode()
    assert COLOUR in svg and "#d62728" in svg
    assert f"<!-- {PLUGIN}: {LABEL} (median of 3 runs) -->" in svg


def test_no_other_file_names_a_method():
    """The five places that used to list the methods read the registry now."""
    service = REPO_ROOT / "arena" / "service"
    for path in [*(service / "static").glob("*.js"), service / "plots.py", service / "schemas.py", REPO_ROOT / "arena" / "runner.py"]:
        text = path.read_text()
        assert not re.search(r"""["']?(ga|cmaes|backprop)["']?\s*:\s*["']#[0-9a-fA-F]{6}""", text), path  # a colour per method
        assert not re.search(r"""algorithm\s*==\s*["'](ga|cmaes|ppo|backprop)["']""", text), path  # a memory model per method
    app = (REPO_ROOT / "arena" / "workers" / "app.py").read_text()
    assert not re.search(r"""["'](backprop|ga|cmaes)["']\s*:\s*\(""", app)  # warm imports per queue
    assert "import pygad" not in (REPO_ROOT / "arena" / "runner.py").read_text()


# --- through the real HTTP service: the plug-in registered in the API process ------------------------


class PluginService(Service):
    """The embedded API with the plug-in registered by its one line before the app is built."""

    def start_api(self) -> None:
        launcher = (
            f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'tests')!r}); import test_registry; test_registry.register(); "
            f"import uvicorn; uvicorn.run('arena.service.app:app', host='127.0.0.1', port={self.port}, log_level='warning')"
        )
        log = self.data_dir / "api.log"
        self.api = self._spawn([PYTHON, "-c", launcher], log)
        from conftest import wait_for

        def healthy():
            if self.api.poll() is not None:
                raise AssertionError(f"the API exited:\n{log.read_text()[-3000:]}")
            try:
                return self.client.get("/health").status_code == 200
            except Exception:
                return False

        wait_for(healthy, 60, message="the API to answer /health")


@pytest.fixture(scope="module")
def plugin_service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("arena-plugin")
    # A low cap, so that a modest plug-in job is over it by the plug-in's model.
    handle = PluginService("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir), "ARENA_MAX_POPULATION_PARAMETERS": "100000"}), data_dir)
    try:
        handle.start_api()
        yield handle
    finally:
        handle.stop()


def test_the_openapi_documents_the_plugins_settings(plugin_service):
    schema = plugin_service.client.get("/openapi.json").json()
    job = schema["components"]["schemas"]["JobCreate"]["properties"]
    assert PLUGIN in job
    reference = next(option["$ref"] for option in job[PLUGIN]["anyOf"] if "$ref" in option)
    settings = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]
    assert settings["population_size"]["maximum"] == 10_000 and settings["step"]["exclusiveMinimum"] == 0
    methods = schema["components"]["schemas"]["JobCreate"]["properties"]["methods"]
    assert PLUGIN in json.dumps(methods)  # a valid value of `methods`


def test_a_plugin_job_is_costed_by_its_own_model_and_drawn_in_its_colour(plugin_service):
    client = plugin_service.client
    # 17 parameters x 2,000 = 34,000 floats by the default model (under the cap of 100,000); x 4 by its own.
    refused = client.post("/jobs", json={"task": "xor", "methods": [PLUGIN], "seeds": 1, PLUGIN: {"population_size": 2000}})
    assert refused.status_code == 422, refused.text
    (detail,) = refused.json()["detail"]
    assert detail["loc"] == ["body", PLUGIN, "population_size"] and f"{COPIES} copies" in detail["msg"]

    created = client.post("/jobs", json={"task": "xor", "methods": [PLUGIN, "ga"], "seeds": 2, PLUGIN: {"population_size": 10}})
    assert created.status_code in (200, 201, 202), created.text
    job_id = created.json()["job_id"]

    # No worker serves the plug-in here: record its runs' results as a worker would, then draw the job.
    from arena.store import queries
    from arena.store.db import session_scope
    from arena.store.tables import utcnow

    curve = [{"evaluations": 100, "seconds": 0.1, "score": 0.2}, {"evaluations": 200, "seconds": 0.2, "score": 0.05}]
    result = {"score": 0.05, "solved": False, "evaluations": 200, "seconds": 0.2, "stopped": "budget", "curve": curve, "weights": [0.0] * 17}
    for run_id in created.json()["run_ids"]:
        with session_scope(plugin_service.database_url) as session:
            claim = queries.claim_run(session, run_id, "test", utcnow(), 3)
            assert queries.record_result(session, run_id, claim.attempt, "succeeded", result=result)
    svg = client.get(f"/jobs/{job_id}/curves.svg")
    assert svg.status_code == 200, svg.text
    assert COLOUR in svg.text and f"<!-- {PLUGIN}: {LABEL} (median of 2 runs) -->" in svg.text


def test_the_dashboard_serves_the_plugin_to_its_scripts(plugin_service):
    methods = plugin_service.client.get("/methods").json()
    assert methods[PLUGIN]["colour"] == COLOUR and methods[PLUGIN]["label"] == LABEL
    assert methods["ga"]["colour"] == "#d62728"
    page = plugin_service.client.get("/")
    assert page.status_code == 200 and "/static/common.js" in page.text
    common = plugin_service.client.get("/static/common.js").text
    assert 'fetch("/methods"' in common
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run common.js")
    # common.js itself, run by node against the live service: the colour it draws the plug-in with.
    script = (
        "const base = process.argv[2];\n"
        "globalThis.window = globalThis; globalThis.localStorage = { getItem: () => null };\n"
        "globalThis.document = { addEventListener: () => {} };\n"
        "const realFetch = fetch; globalThis.fetch = (path, options) => realFetch(base + path, options);\n"
        + common
        + "\n(async () => { await api('/health'); console.log(JSON.stringify([colourOf('plug', 0), colourOf('ga (ga)', 1), colourOf('unknown', 0)])); })();\n"
    )
    path = plugin_service.data_dir / "common_probe.js"
    path.write_text(script)
    output = subprocess.run([node, str(path), plugin_service.base_url], capture_output=True, text=True, timeout=60)
    assert output.returncode == 0, output.stderr
    assert json.loads(output.stdout) == [COLOUR, "#d62728", "#9467bd"]


def test_the_plugin_module_is_plain_data_for_the_api():
    """What the API reads of a method (settings, label, colour, memory model) imports no heavy library."""
    code = (
        "import sys; sys.path.insert(0, 'tests'); import test_registry; test_registry.register(); "
        "import arena.service.app; from arena.methods import METHODS; [m.public() for m in METHODS.values()]; "
        "print(sorted({'torch', 'pygad', 'cma', 'gymnasium'} & set(sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(REPO_ROOT)).stdout
    assert output.strip() == "[]"
