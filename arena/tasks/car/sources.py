"""A track from any source a user can name: a built-in name, a generated track, or user points.

Its own module because it is the one place that knows every source: the built-in and user tracks
(`tracks.py`) and the generator (`generator.py`, which builds on `tracks.py`), so neither of those
imports the other back. Numpy only: the HTTP API validates a user's track through it.
"""

from __future__ import annotations

import numpy as np

from arena.errors import ArenaError
from arena.tasks.car.generator import check_generator_params, generated_track, parse_random_name
from arena.tasks.car.tracks import BUILTIN_TRACKS, Track, build_track, builtin_track


def parse_track(value, field: str = "track") -> Track:
    """A track source -> Track (ArenaError if unusable). Accepted:

    - a built-in name ("oval", "scurve", "hard");
    - "random:<seed>": a generated track with the generator's default parameters;
    - {"generator": {"seed": 7, ...}}: a generated track (see arena.tasks.car.generator for the parameters);
    - {"points": [[x, y], ...], "width": w} (optional "name"): a user track; points may be a numpy array;
    - a Track (returned as is).
    """
    if isinstance(value, Track):
        return value
    if isinstance(value, str):
        if value.startswith("random:"):
            return generated_track(**parse_random_name(value, field), field=field)
        if value not in BUILTIN_TRACKS:
            raise ArenaError(
                f"unknown track {value!r}; built-in tracks: {', '.join(BUILTIN_TRACKS)}; or 'random:<seed>', "
                '{"generator": {"seed": ...}} or {"points": [[x, y], ...], "width": metres}',
                field,
            )
        return builtin_track(value)
    if not isinstance(value, dict):
        raise ArenaError(
            'a track is a built-in name, "random:<seed>", {"generator": {"seed": ...}} or an object '
            '{"points": [[x, y], ...], "width": metres}',
            field,
        )
    if "generator" in value:
        if set(value) != {"generator"}:
            raise ArenaError(f'a generated track is {{"generator": {{...}}}} alone; got keys {sorted(value)}', field)
        return generated_track(**check_generator_params(value["generator"], field), field=field)
    unknown = set(value) - {"points", "width", "name"}
    if unknown or "points" not in value or "width" not in value:
        raise ArenaError(f'a user track needs exactly "points" and "width" (optional "name"); got {sorted(value)}', field)
    points = value["points"]
    if isinstance(points, np.ndarray):
        if points.ndim != 2 or points.shape[1:] != (2,) or not np.issubdtype(points.dtype, np.number) or points.dtype == bool:
            raise ArenaError(f"track points must be an (n, 2) array of numbers, got shape {points.shape} of {points.dtype}", field)
    elif not isinstance(points, (list, tuple)) or not all(
        isinstance(p, (list, tuple, np.ndarray)) and len(p) == 2
        and all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, (bool, np.bool_)) for c in p)
        for p in points
    ):
        raise ArenaError("track points must be a list of [x, y] number pairs (or an (n, 2) numpy array)", field)
    name = value.get("name", "user")
    if not isinstance(name, str) or len(name) > 64:
        raise ArenaError("a track name must be a string of at most 64 characters", field)
    width = value["width"]
    if isinstance(width, np.generic) and not isinstance(width, np.bool_):
        width = width.item()
    return build_track(name, points, width, field)
