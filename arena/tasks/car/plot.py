"""A picture of a trained car policy: the track's walls and its deterministic trajectories (PNG).

`plot_trajectories("car-oval", weights, architecture)` returns PNG bytes; with `path_or_buffer` it writes
there instead. It drives every scoring episode (the same starts, in the same order, the score used),
unless `episodes` asks for fewer, in which case the title says it is a sample. Each path is coloured
by how its episode ended: lap finished, timed out, crashed or stalled (the legend counts each).

`title_info` (optional) names the run in the title: {"method": "backprop (ppo)", "seed": 3,
"run_id": 17, "score": 0.917}; any key may be missing.

The PNG carries the picture's facts as text chunks (`Episodes`, `Laps`, `Crashes`, `Timeouts`,
`Stalls`, `Title`), so scripts and tests can read what was drawn without looking at pixels.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display on workers or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from arena.models.architecture import Architecture  # noqa: E402

# How an episode ended -> (legend text, colour, end marker). Checked in this order: a car that
# finished its lap has not crashed; a time-out is the episode's step limit.
OUTCOMES = {
    "lap": ("lap finished", "#2a9d3f", ">"),
    "timeout": ("timed out", "#1f6fd1", "s"),
    "crash": ("crashed", "#d62828", "x"),
    "stall": ("stalled", "#8e44ad", "d"),
}


def episode_outcomes(result) -> list[str]:
    """One of OUTCOMES' keys per episode."""
    outcomes = []
    for k in range(len(result.progress)):
        if result.progress[k] >= np.asarray(result.lap_length)[k]:
            outcomes.append("lap")
        elif result.crashed[k]:
            outcomes.append("crash")
        elif result.stalled[k]:
            outcomes.append("stall")
        else:
            outcomes.append("timeout")
    return outcomes


def describe_run(task_name: str, title_info: dict | None) -> str:
    """'car-oval, backprop (ppo), seed 3, run 17, score 0.917 (fraction of laps)': what is known of the run."""
    info = title_info or {}
    parts = [task_name]
    if info.get("method"):
        parts.append(str(info["method"]))
    if info.get("seed") is not None:
        parts.append(f"seed {info['seed']}")
    if info.get("run_id") is not None:
        parts.append(f"run {info['run_id']}")
    if info.get("score") is not None:
        try:
            from arena.tasks import task_info

            score_name = task_info(task_name).score_name
        except Exception:  # a task this build does not describe: the number alone
            score_name = ""
        parts.append(f"score {float(info['score']):.4g}" + (f" ({score_name})" if score_name else ""))
    return ", ".join(parts)


def plot_trajectories(
    task_name: str,
    weights,
    architecture: Architecture | dict,
    task_options: dict | None = None,
    path_or_buffer=None,
    episodes: int | None = None,
    title_info: dict | None = None,
) -> bytes | None:
    from arena.models.network import PopulationForward
    from arena.tasks import make_task
    from arena.tasks.car.task import run_episodes

    if isinstance(architecture, dict):
        architecture = Architecture.model_validate(architecture)
    task = make_task(task_name, task_options)
    forward = PopulationForward(architecture).numpy(np.asarray(weights, dtype=np.float32)[None])
    total = len(task.eval_starts)
    drawn = total if episodes is None else max(1, min(int(episodes), total))
    starts = task.eval_starts if drawn == total else task.eval_starts.take(np.arange(drawn))
    result = run_episodes(task.eval_world, starts, lambda x: forward(x)[0], stop_after_lap=True, record=True)
    outcomes = episode_outcomes(result)
    counts = {key: outcomes.count(key) for key in OUTCOMES}

    # One panel per scoring track (car-generalize scores on several), each with its own episodes.
    tracks = task.eval_tracks
    columns = min(len(tracks), 4)
    rows = -(-len(tracks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7.5 if columns == 1 else 3.2 * columns, 6.8 if rows == 1 and columns == 1 else 3.3 * rows + 1.2), dpi=110, squeeze=False)
    for k, panel in enumerate(axes.flat):
        if k >= len(tracks):
            panel.set_axis_off()
            continue
        shown = tracks[k]
        for wall in (shown.left, shown.right):
            closed = np.vstack([wall, wall[:1]])
            panel.plot(closed[:, 0], closed[:, 1], color="0.2", linewidth=1.5)
        centre = np.vstack([shown.centre, shown.centre[:1]])
        panel.plot(centre[:, 0], centre[:, 1], color="0.75", linewidth=0.8, linestyle="--")
        for episode, (path, outcome) in enumerate(zip(result.trajectories, outcomes)):
            if starts.track[episode] != k:
                continue
            _, colour, marker = OUTCOMES[outcome]
            panel.plot(path[:, 0], path[:, 1], color=colour, linewidth=1.0, alpha=0.55)
            panel.plot(*path[0], marker="o", color=colour, markersize=3.5, alpha=0.8)
            panel.plot(*path[-1], marker=marker, color=colour, markersize=7, markeredgewidth=1.8, linestyle="none")
        panel.set_aspect("equal")
        if len(tracks) > 1:
            panel.set_title(shown.name.split("(")[0][:28], fontsize=8)  # generated names carry their parameters
            panel.tick_params(labelsize=6)
        else:
            panel.set_xlabel("m")
            panel.set_ylabel("m")
    ax = axes.flat[0]

    handles = [Line2D([], [], color="0.3", marker="o", markersize=4, linestyle="none", label="start")]
    for key, (text, colour, marker) in OUTCOMES.items():
        if counts[key] or key != "stall":  # lap / time-out / crash always listed, so their absence shows too
            handles.append(Line2D([], [], color=colour, marker=marker, markersize=7, markeredgewidth=1.8, label=f"{text} ({counts[key]})"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)

    where = f"track {tracks[0].name}" if len(tracks) == 1 else f"{len(tracks)} scoring tracks"
    if drawn == total:
        what = f"all {total} scoring episodes on {where}"
    else:
        what = f"a sample: the first {drawn} of the {total} scoring episodes on {where}"
    title = f"{describe_run(task_name, title_info)}\n{what}: {counts['lap']}/{drawn} laps, {counts['crash']} crashes, {counts['timeout']} time-outs"
    if counts["stall"]:
        title += f", {counts['stall']} stalls"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))

    metadata = {
        "Title": title.replace("\n", " - "),
        "Episodes": str(drawn),
        "Laps": str(counts["lap"]),
        "Crashes": str(counts["crash"]),
        "Timeouts": str(counts["timeout"]),
        "Stalls": str(counts["stall"]),
    }
    target = path_or_buffer if path_or_buffer is not None else io.BytesIO()
    fig.savefig(target, format="png", metadata=metadata, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    if path_or_buffer is None:
        return target.getvalue()
    return None


def png_text(png: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (what `plot_trajectories` records about its picture)."""
    import struct
    import zlib

    chunks: dict[str, str] = {}
    position = 8
    while position + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        data = png[position + 8 : position + 8 + length]
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = data.partition(b"\0")
            chunks[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = data.partition(b"\0")
            _flag, _method, rest = rest[0], rest[1], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            chunks[key.decode("latin-1")] = (zlib.decompress(text) if _flag else text).decode("utf-8")
        position += 12 + length
    return chunks
