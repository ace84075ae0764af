"""Procedural tracks: seeded, smooth, closed and drivable. Numpy only (the HTTP API validates through it).

A generated track's centre line is a circle perturbed radially by a few random Fourier harmonics,

    r(theta) = R0 * (1 + alpha * sum_k a_k cos(k theta + phi_k)),   k = 2 .. harmonics,

with amplitudes a_k ~ 1 / k (smooth: high harmonics are small) and random phases. A radial curve with
r > 0 never crosses itself. R0 is chosen so the lap is about `length` metres, then the perturbation
alpha shrinks from 1 until every bend's radius (the exact curvature of the formula) is at least
`min_radius`, which the parameters must make drivable: min_radius + width / 2 - car radius must reach the
car's minimum turning radius (3.66 m). The result goes through the same validation as a user track
(`build_track`: walls that do not fold or cross, bends the car can take); a draw it refuses (two parts of
the track too close to each other) is replaced by the next draw of the same seed's generator, so a seed
always gives the same track.

Names: "random:7" is the track of seed 7 with the default parameters; {"generator": {"seed": 7, "width": 5}}
sets parameters. Every parameter is part of the track's name, so two different tracks never share one.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np

from arena.errors import ArenaError
from arena.tasks.car.tracks import CAR_RADIUS, MAX_WIDTH, MIN_TURN_RADIUS, MIN_WIDTH, Track, build_track

DEFAULTS = {"width": 6.0, "min_radius": 6.0, "length": 250.0, "harmonics": 6, "roughness": 1.0}
LIMITS = {
    "seed": (0, 2**63 - 1),
    "width": (MIN_WIDTH, 12.0),
    "min_radius": (1.0, 50.0),
    "length": (100.0, 800.0),
    "harmonics": (2, 12),
    "roughness": (0.0, 2.0),
}
MAX_DRAWS = 50  # draws per seed before giving up (in practice the first or second draw is accepted)
_DENSE = 2048  # samples of theta for the curve and its curvature
_CACHE: OrderedDict[tuple, Track] = OrderedDict()
_CACHE_SIZE = 512
_NAME = re.compile(r"random:(\d{1,19})")


def parse_random_name(name: str, field: str = "track") -> dict:
    """"random:7" -> {"seed": 7} (ArenaError if malformed)."""
    match = _NAME.fullmatch(name)
    if not match:
        raise ArenaError(f"a generated track's name is 'random:<seed>' with a seed from 0 to 2**63 - 1, got {name!r}", field)
    return check_generator_params({"seed": int(match.group(1))}, field)


def check_generator_params(params, field: str = "track") -> dict:
    """Validate generator parameters; returns them complete (defaults filled in) and normalised."""
    if not isinstance(params, dict):
        raise ArenaError('"generator" must be an object such as {"seed": 7, "width": 6}', field)
    unknown = set(params) - set(LIMITS)
    if unknown or "seed" not in params:
        raise ArenaError(f"generator parameters are seed (required), {', '.join(DEFAULTS)}; got {sorted(params)}", field)
    out = {}
    for key, (lo, hi) in LIMITS.items():
        value = params.get(key, DEFAULTS.get(key))
        integer = key in ("seed", "harmonics")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ArenaError(f"generator {key} must be a number, got {value!r}", field)
        if integer and float(value) != int(value):
            raise ArenaError(f"generator {key} must be an integer, got {value!r}", field)
        value = int(value) if integer else float(value)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ArenaError(f"generator {key} must be from {lo:g} to {hi:g}, got {value:g}", field)
        out[key] = value
    if out["min_radius"] <= out["width"] / 2:
        raise ArenaError(
            f"generator min_radius ({out['min_radius']:g} m) must exceed half the width ({out['width'] / 2:g} m), "
            "or the inner wall of the tightest bend folds over",
            field,
        )
    if out["min_radius"] + out["width"] / 2 - CAR_RADIUS < MIN_TURN_RADIUS:
        need = MIN_TURN_RADIUS - out["width"] / 2 + CAR_RADIUS
        raise ArenaError(
            f"generator min_radius {out['min_radius']:g} m at width {out['width']:g} m is tighter than the car can turn "
            f"(minimum turning radius {MIN_TURN_RADIUS:.2f} m): min_radius must be at least {need:.2f} m",
            field,
        )
    if out["length"] < 2 * math.pi * out["min_radius"]:
        raise ArenaError(f"generator length must be at least 2 pi min_radius ({2 * math.pi * out['min_radius']:.0f} m)", field)
    return out


def track_name(params: dict) -> str:
    """'random:7' for default parameters, else e.g. 'random:7(width=5)' listing what differs."""
    extra = ",".join(f"{k}={params[k]:g}" for k in DEFAULTS if params[k] != DEFAULTS[k])
    return f"random:{params['seed']}" + (f"({extra})" if extra else "")


def generated_track(seed: int, width: float = DEFAULTS["width"], min_radius: float = DEFAULTS["min_radius"],
                    length: float = DEFAULTS["length"], harmonics: int = DEFAULTS["harmonics"],
                    roughness: float = DEFAULTS["roughness"], field: str = "track") -> Track:
    """The generated track of `seed` with these parameters (validated, cached)."""
    params = check_generator_params(
        {"seed": seed, "width": width, "min_radius": min_radius, "length": length, "harmonics": harmonics, "roughness": roughness}, field
    )
    key = tuple(params[k] for k in LIMITS)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    rng = np.random.default_rng([params["seed"], 11])  # 11: a stream of its own, apart from any other use of the seed
    last = None
    for _ in range(MAX_DRAWS):
        points = _draw(rng, params)
        try:
            track = build_track(track_name(params), points, params["width"], field)
            break
        except ArenaError as refused:  # parts of the track too close to each other: draw again
            last = refused
    else:
        raise ArenaError(f"no drivable track found for {track_name(params)} in {MAX_DRAWS} draws ({last}); relax the parameters", field)
    _CACHE[key] = track
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return track


def _draw(rng: np.random.Generator, params: dict) -> np.ndarray:
    """One random closed curve meeting the parameters' length and minimum bend radius."""
    k = np.arange(2, params["harmonics"] + 1)
    amplitude = params["roughness"] * rng.uniform(0.2, 1.0, len(k)) * 0.5 / k**0.8
    phase = rng.uniform(0, 2 * np.pi, len(k))
    theta = np.linspace(0, 2 * np.pi, _DENSE, endpoint=False)
    arg = k[:, None] * theta[None] + phase[:, None]
    f = (amplitude[:, None] * np.cos(arg)).sum(0)  # the perturbation and its theta-derivatives
    f1 = -(amplitude[:, None] * k[:, None] * np.sin(arg)).sum(0)
    f2 = -(amplitude[:, None] * k[:, None] ** 2 * np.cos(arg)).sum(0)
    alpha = 1.0
    for _ in range(200):
        # Unit base radius: r, r', r'' of 1 + alpha f; curvature of a polar curve, lap length.
        r, r1, r2 = 1 + alpha * f, alpha * f1, alpha * f2
        if r.min() > 0.2:
            speed = np.sqrt(r**2 + r1**2)
            curvature = np.abs(r**2 + 2 * r1**2 - r * r2) / speed**3
            unit_length = speed.mean() * 2 * np.pi
            scale = params["length"] / unit_length  # R0
            if scale / curvature.max() >= params["min_radius"]:
                break
        alpha *= 0.9
    else:  # the circle: always meets the parameters (length >= 2 pi min_radius was checked)
        r, scale = np.ones_like(theta), params["length"] / (2 * np.pi)
    rotation = rng.uniform(0, 2 * np.pi)
    angle = theta + rotation
    return scale * np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
