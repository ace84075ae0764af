"""A picture of a trained car policy: the track's walls and its deterministic trajectories (PNG).

`plot_trajectories("car-oval", weights, architecture)` returns PNG bytes; with `path_or_buffer` it writes
there instead. The episodes are the task's first evaluation episodes (the same starts the score used).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display on workers or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from arena.models.architecture import Architecture  # noqa: E402


def plot_trajectories(
    task_name: str,
    weights,
    architecture: Architecture | dict,
    task_options: dict | None = None,
    path_or_buffer=None,
    episodes: int = 8,
) -> bytes | None:
    from arena.models.network import PopulationForward
    from arena.tasks import make_task
    from arena.tasks.car.task import run_episodes

    if isinstance(architecture, dict):
        architecture = Architecture.model_validate(architecture)
    task = make_task(task_name, task_options)
    track = task.eval_track
    forward = PopulationForward(architecture).numpy(np.asarray(weights, dtype=np.float32)[None])
    starts = task.eval_starts.take(np.arange(min(episodes, len(task.eval_starts))))
    result = run_episodes(task.eval_world, starts, lambda x: forward(x)[0], stop_after_lap=True, record=True)

    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    for wall in (track.left, track.right):
        closed = np.vstack([wall, wall[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color="0.2", linewidth=1.5)
    centre = np.vstack([track.centre, track.centre[:1]])
    ax.plot(centre[:, 0], centre[:, 1], color="0.75", linewidth=0.8, linestyle="--")
    colours = plt.cm.tab10(np.arange(len(starts)) % 10)
    for k, path in enumerate(result.trajectories):
        ax.plot(path[:, 0], path[:, 1], color=colours[k], linewidth=1.2)
        ax.plot(*path[0], marker="o", color=colours[k], markersize=5)
        end = "x" if result.crashed[k] else ("s" if result.stalled[k] else ">")
        ax.plot(*path[-1], marker=end, color=colours[k], markersize=7)
    laps = int((result.progress >= result.lap_length).sum())
    ax.set_title(
        f"{task_name} on {track.name}: {laps}/{len(starts)} laps completed, {int(result.crashed.sum())} crashes\n"
        "o start, > lap done or time out, x crash, s stall",
        fontsize=9,
    )
    ax.set_aspect("equal")
    ax.set_xlabel("m")
    ax.set_ylabel("m")
    fig.tight_layout()

    target = path_or_buffer if path_or_buffer is not None else io.BytesIO()
    fig.savefig(target, format="png")
    plt.close(fig)
    if path_or_buffer is None:
        return target.getvalue()
    return None
