"""Learning curves across seeds: the numbers (for the dashboard) and matplotlib pictures (for scripts).

Each run stores its best-so-far curve as [{evaluations, seconds, score}]. For one method the curves of
all its seeds are put on one grid of x values (log-spaced when the range is wide) as step functions:
a run's value at x is its best score among the points it had recorded by x; before its first point it
has no value, after its last it keeps its final value (it stopped: solved or out of budget). At each x
the median and the quartiles are over the runs that have a value there.

numpy and matplotlib only: this module is imported by the API process, which never imports torch.
"""

from __future__ import annotations

import io

import numpy as np

from arena.methods import METHODS

GRID_POINTS = 120
AXES = ("evaluations", "seconds")


def _grid(values: list[np.ndarray]) -> tuple[np.ndarray, bool]:
    """A shared x grid for these runs, and whether it is log-spaced."""
    everything = np.concatenate([v for v in values if len(v)]) if any(len(v) for v in values) else np.array([])
    if everything.size == 0:
        return np.array([]), False
    low, high = float(everything.min()), float(everything.max())
    positive = everything[everything > 0]
    if positive.size and high / max(float(positive.min()), 1e-12) > 50:
        grid = np.geomspace(float(positive.min()), high, GRID_POINTS)
        return grid, True
    if high <= low:
        return np.array([low]), False
    return np.linspace(low, high, GRID_POINTS), False


def _step_values(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The run's last recorded value at each grid x (NaN before its first point)."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    index = np.searchsorted(x, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    has = index >= 0
    out[has] = y[index[has]]
    return out


def _points(curve: list[dict] | None, axis: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for point in curve or []:
        x, y = point.get(axis), point.get("score")
        if x is None or y is None:
            continue
        x, y = float(x), float(y)
        if np.isfinite(x) and np.isfinite(y):
            xs.append(x)
            ys.append(y)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values]


def aggregate(curves_by_method: dict[str, list[list[dict] | None]]) -> dict:
    """{method: [curve of each run]} -> per axis, one shared grid and each method's median and quartiles.

    Returns {"evaluations"|"seconds": {"x": [...], "log_x": bool, "methods": {method: {"median", "q1",
    "q3": [value or None per x], "runs": n}}}}. Every method shares the axis's grid, so a chart can draw
    them on one set of x values.
    """
    result = {}
    for axis in AXES:
        points = {m: [_points(c, axis) for c in curves] for m, curves in curves_by_method.items()}
        grid, log_x = _grid([x for runs in points.values() for x, _ in runs])
        methods = {}
        for method, runs in points.items():
            runs = [(x, y) for x, y in runs if len(x)]
            if not runs or not len(grid):
                methods[method] = {"median": [None] * len(grid), "q1": [None] * len(grid), "q3": [None] * len(grid), "runs": 0,
                                   "with_value": [0] * len(grid), "active": [0] * len(grid)}
                continue
            table = np.vstack([_step_values(x, y, grid) for x, y in runs])
            started = ~np.isnan(table).all(axis=0)
            median = np.full(len(grid), np.nan)
            q1 = np.full(len(grid), np.nan)
            q3 = np.full(len(grid), np.nan)
            if started.any():
                median[started] = np.nanmedian(table[:, started], axis=0)
                q1[started] = np.nanpercentile(table[:, started], 25, axis=0)
                q3[started] = np.nanpercentile(table[:, started], 75, axis=0)
            # How many runs each point rests on: `with_value` have started by x (a stopped run keeps its last
            # value, so it still counts); `active` had not stopped yet (recorded a point at x or later).
            with_value = (~np.isnan(table)).sum(axis=0)
            active = np.array([sum(float(np.max(x)) >= g for x, _ in runs) for g in grid])
            methods[method] = {"median": _clean(median), "q1": _clean(q1), "q3": _clean(q3), "runs": len(runs),
                               "with_value": [int(v) for v in with_value], "active": [int(v) for v in active]}
        result[axis] = {"x": _clean(grid), "log_x": log_x, "methods": methods}
    return result


def proportion_solved(runs: list[dict]) -> dict:
    """Empirical proportion of a method's runs solved by each number of evaluations (finished runs only).

    {method: [{"x", "solved"}]} step points; every finished run counts in the denominator (an unsolved
    run is censored at its budget, and all runs of a job share one budget, so this is the Kaplan-Meier
    estimate whenever no run stopped early for another reason).
    """
    by_method: dict[str, list[dict]] = {}
    for run in runs:
        if run.get("status") == "succeeded":
            by_method.setdefault(run["method"], []).append(run)
    out = {}
    for method, finished in by_method.items():
        n = len(finished)
        times = sorted(float(r["evaluations_to_solve"]) for r in finished if r.get("solved") and r.get("evaluations_to_solve") is not None)
        longest = max((float(r["evaluations"] or 0) for r in finished), default=0.0)
        points = [{"x": t, "solved": (k + 1) / n} for k, t in enumerate(times)]
        if longest and (not points or points[-1]["x"] < longest):
            points.append({"x": longest, "solved": len(times) / n})
        out[method] = points
    return out


def _colour(method: str, index: int) -> str:
    """The method's colour from the registry (its module's COLOUR); a name it does not know (a run of a
    method since removed) gets one of tab10's by position."""
    import matplotlib

    registered = METHODS.get(method.split(" ")[0])
    return registered.colour if registered else matplotlib.colors.to_hex(matplotlib.colormaps["tab10"](index % 10))


def _label(method: str) -> str:
    """What a legend calls a method: its name, and the registry's label where that says more ("ga: GA")."""
    name = method.split(" ")[0]
    registered = METHODS.get(name)
    return method if registered is None or registered.label == name else f"{method}: {registered.label}"


def render_curves(
    aggregated: dict, title: str, score_name: str, higher_is_better: bool, threshold: float | None = None, fmt: str = "png"
) -> bytes:
    """Median and interquartile band per method against evaluations (the `aggregate` result) -> PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = aggregated["evaluations"]
    x = np.array([np.nan if v is None else v for v in data["x"]], dtype=float)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    log_y = not higher_is_better  # losses (MSE) span decades
    for index, (method, series) in enumerate(sorted(data["methods"].items())):
        colour = _colour(method, index)
        median = np.array([np.nan if v is None else v for v in series["median"]], dtype=float)
        q1 = np.array([np.nan if v is None else v for v in series["q1"]], dtype=float)
        q3 = np.array([np.nan if v is None else v for v in series["q3"]], dtype=float)
        if log_y and np.nanmin(np.r_[median, q1, np.inf]) <= 0:
            log_y = False
        ax.fill_between(x, q1, q3, step="post", color=colour, alpha=0.2, linewidth=0)
        ax.step(x, median, where="post", color=colour, linewidth=1.8, label=f"{_label(method)} (median of {series['runs']} runs)")
    if not any(v is not None and np.isfinite(v) for series in data["methods"].values() for v in series["median"]):
        log_y = False  # no curve yet: a log axis with no data cannot be drawn (an empty figure, not a 500)
    if threshold is not None:
        ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"solved threshold {threshold:g}")
    if data.get("log_x"):
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best-so-far {score_name} ({'higher' if higher_is_better else 'lower'} is better)")
    ax.set_title(title + "\nmedian and interquartile band across seeds", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if data["methods"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    plt.close(fig)
    return buffer.getvalue()
