"""Car tracks: the built-in ones, user tracks and their validation, and the wall index. Numpy only.

The HTTP API validates a user's track through this module (via `sources.parse_track`, which also knows
the generated tracks), so it imports numpy only. The simulator (`arena.tasks.car.sim`) and the generator
build on the `Track` defined here; this module imports neither.

A track is a closed centre line resampled about every metre and a constant width; the walls are the
centre line's offsets by half the width. For ray casting, every centre-line segment knows the wall
segments that any point of its cross-section could see within sensor range (`Track.candidates`), so a
car only tests a few dozen walls instead of all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena.errors import ArenaError

CAR_RADIUS = 0.5  # m: the car's body is a disc
RAY_RANGE = 10.0  # m
SAMPLE_SPACING = 1.0  # m between centre-line points after resampling
MIN_WIDTH = 4 * CAR_RADIUS  # the car plus one car-width of room
MAX_WIDTH = 30.0
MIN_POINTS = 4
MAX_POINTS = 10_000
MIN_LENGTH = 20.0
MAX_LENGTH = 2_000.0  # keeps validation (pairwise segment tests) and the wall index small
MAX_COORDINATE = 10_000.0

# The car's steering geometry (the simulator, arena.tasks.car.sim, uses these same constants). A kinematic
# bicycle with wheelbase L at steering angle delta drives a circle of radius L / tan(delta), so at full lock
# the car turns no tighter than MIN_TURN_RADIUS = 2 / tan(0.5) ~= 3.66 m (its centre's path).
WHEELBASE = 2.0  # m
MAX_STEER = 0.5  # rad
MIN_TURN_RADIUS = WHEELBASE / math.tan(MAX_STEER)
BEND_WINDOW = 2  # centre-line samples (~2 m, about a wheelbase) each side over which a bend's radius is measured


@dataclass(frozen=True)
class Track:
    name: str
    centre: np.ndarray  # (N, 2) closed: segment i runs from point i to point (i + 1) % N
    width: float
    left: np.ndarray  # (N, 2) wall points
    right: np.ndarray  # (N, 2)
    cumulative: np.ndarray  # (N,) arc length at each centre point
    length: float  # lap length
    candidates: np.ndarray  # (N, K) indices into walls_a/walls_b: walls seen from centre segment i
    walls_a: np.ndarray  # (2N, 2) wall segment starts (left walls, then right walls)
    walls_b: np.ndarray  # (2N, 2) wall segment ends

    @property
    def half_width(self) -> float:
        return self.width / 2

    @property
    def segments(self) -> int:
        return len(self.centre)

    def point_at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre point, unit tangent and segment index at arc length(s) s (wrapped to the lap)."""
        s = np.mod(s, self.length)
        seg = np.clip(np.searchsorted(self.cumulative, s, side="right") - 1, 0, self.segments - 1)
        a = self.centre[seg]
        b = self.centre[(seg + 1) % self.segments]
        seg_len = np.linalg.norm(b - a, axis=-1)
        tangent = (b - a) / seg_len[..., None]
        return a + tangent * (s - self.cumulative[seg])[..., None], tangent, seg

    def describe(self) -> dict:
        return {"name": self.name, "length": round(self.length, 1), "width": self.width, "segments": self.segments}


# --- geometry helpers -------------------------------------------------------------------------------


def _resample_closed(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ~`spacing` metres along the closed polyline through `points`."""
    closed = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    n = max(MIN_POINTS, int(round(total / spacing)))
    s = np.linspace(0.0, total, n, endpoint=False)
    x = np.interp(s, cum, closed[:, 0])
    y = np.interp(s, cum, closed[:, 1])
    return np.stack([x, y], axis=1)


def _vertex_normals(centre: np.ndarray) -> np.ndarray:
    """Unit left normals at the vertices of a closed polyline (from the averaged neighbouring tangents)."""
    forward = np.roll(centre, -1, axis=0) - centre
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    tangent = forward + np.roll(forward, 1, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def _near_pairs(points_a: np.ndarray, points_b: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with points_a[i] and points_b[j] in the same or neighbouring grid cells of size `cell`.

    Any two points closer than `cell` are among them: a spatial hash that keeps validation and the wall
    index near-linear in the track's length instead of quadratic.
    """
    shift = int(2 * MAX_COORDINATE / cell) + 2
    ca = np.floor(points_a / cell).astype(np.int64) + shift
    cb = np.floor(points_b / cell).astype(np.int64) + shift
    span = 2 * shift + 2
    keys_b = cb[:, 0] * span + cb[:, 1]
    order = np.argsort(keys_b, kind="stable")
    sorted_keys = keys_b[order]
    firsts, seconds = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = (ca[:, 0] + dx) * span + (ca[:, 1] + dy)
            lo = np.searchsorted(sorted_keys, target, "left")
            counts = np.searchsorted(sorted_keys, target, "right") - lo
            total = int(counts.sum())
            if not total:
                continue
            i = np.repeat(np.arange(len(points_a)), counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            firsts.append(i)
            seconds.append(order[np.repeat(lo, counts) + within])
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _crossing_pairs(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, skip_adjacent: int | None) -> np.ndarray:
    """Pairs (i, j) where segment a[i]-b[i] properly crosses segment c[j]-d[j].

    With `skip_adjacent` = n (the polyline's length), a closed polyline is tested against itself and
    neighbouring segments (which share an end point) are skipped.
    """
    # Two segments can only cross if their midpoints are closer than half their lengths summed.
    longest = max(np.linalg.norm(b - a, axis=1).max(), np.linalg.norm(d - c, axis=1).max())
    i, j = _near_pairs((a + b) / 2, (c + d) / 2, max(longest, 1e-3) * 1.01)
    if skip_adjacent is not None:
        gap = np.abs(i - j)
        keep = (gap > 1) & (gap < skip_adjacent - 1)
        i, j = i[keep], j[keep]
    r, q, w = b[i] - a[i], d[j] - c[j], c[j] - a[i]
    denom = _cross(r[:, 0], r[:, 1], q[:, 0], q[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _cross(w[:, 0], w[:, 1], q[:, 0], q[:, 1]) / denom
        u = _cross(w[:, 0], w[:, 1], r[:, 0], r[:, 1]) / denom
    hit = (denom != 0) & (t > 1e-9) & (t < 1 - 1e-9) & (u > 1e-9) & (u < 1 - 1e-9)
    return np.stack([i[hit], j[hit]], axis=1)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p (..., 2) to segments a-b (..., 2), broadcasting."""
    e = b - a
    length2 = np.maximum((e * e).sum(-1), 1e-12)
    t = np.clip(((p - a) * e).sum(-1) / length2, 0.0, 1.0)
    closest = a + t[..., None] * e
    return np.linalg.norm(p - closest, axis=-1)


def _wall_candidates(centre: np.ndarray, left: np.ndarray, right: np.ndarray, walls_a, walls_b) -> np.ndarray:
    """For each centre segment, every wall segment within sensor range of any point of its cross-section.

    Conservative: a wall qualifies when it is within RAY_RANGE + the cross-section's radius + a margin of
    the cross-section's centre, so the ray cast is exact for a car anywhere near that segment. Rows are
    padded to equal length by repeating their first entry (a duplicate wall changes no minimum).
    """
    n = len(centre)
    nxt = np.roll(np.arange(n), -1)
    quad = np.stack([left, left[nxt], right[nxt], right], axis=1)  # (N, 4, 2)
    middle = quad.mean(axis=1)
    radius = np.linalg.norm(quad - middle[:, None, :], axis=2).max(axis=1)
    reach = RAY_RANGE + radius + 1.0  # 1 m margin: the car may sit a little off its nearest segment
    half_wall = np.linalg.norm(walls_b - walls_a, axis=1).max() / 2
    seg, wall = _near_pairs(middle, (walls_a + walls_b) / 2, reach.max() + half_wall)
    close = _segment_distance(middle[seg], walls_a[wall], walls_b[wall]) <= reach[seg]
    seg, wall = seg[close], wall[close]
    order = np.lexsort((wall, seg))
    seg, wall = seg[order], wall[order]
    counts = np.bincount(seg, minlength=n)
    starts = np.cumsum(counts) - counts
    table = np.repeat(wall[starts][:, None], counts.max(), axis=1)  # pad with each row's first wall
    column = np.arange(len(seg)) - starts[seg]
    table[seg, column] = wall
    return table


# --- building and validating tracks ---------------------------------------------------------------


def build_track(name: str, points, width: float, field: str = "track") -> Track:
    """Resample, validate and index a closed track; raise ArenaError (naming `field`) if it is unusable."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ArenaError(f"track points must be a list of [x, y] pairs, got an array of shape {pts.shape}", field)
    if not np.isfinite(pts).all() or np.abs(pts).max() > MAX_COORDINATE:
        raise ArenaError(f"track points must be finite numbers within +-{MAX_COORDINATE:g} m", field)
    if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
        pts = pts[:-1]  # a closed list repeating its first point
    steps = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)
    pts = pts[steps > 1e-9] if len(pts) else pts  # drop repeated points
    if len(pts) < MIN_POINTS:
        raise ArenaError(f"a track needs at least {MIN_POINTS} distinct centre-line points, got {len(pts)}", field)
    if len(pts) > MAX_POINTS:
        raise ArenaError(f"a track may have at most {MAX_POINTS} centre-line points, got {len(pts)}", field)
    if isinstance(width, bool) or not isinstance(width, (int, float, np.floating)) or not math.isfinite(width):
        raise ArenaError(f"track width must be a number of metres, got {width!r}", field)
    if width < MIN_WIDTH:
        raise ArenaError(
            f"track width {width:g} m is too small for the car (a disc of diameter {2 * CAR_RADIUS:g} m): "
            f"it must be at least {MIN_WIDTH:g} m",
            field,
        )
    if width > MAX_WIDTH:
        raise ArenaError(f"track width must be at most {MAX_WIDTH:g} m, got {width:g}", field)
    length = float(np.sum(np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)))
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ArenaError(f"a track's lap must be from {MIN_LENGTH:g} to {MAX_LENGTH:g} m long, got {length:.1f} m", field)

    centre = _resample_closed(pts, SAMPLE_SPACING)
    n = len(centre)
    nxt = np.roll(np.arange(n), -1)
    crossings = _crossing_pairs(centre, centre[nxt], centre, centre[nxt], skip_adjacent=n)
    if len(crossings):
        i, j = crossings[0]
        raise ArenaError(f"the track's centre line crosses itself (near {_where(centre[i])} and {_where(centre[j])})", field)
    check_drivable(centre, float(width), field)  # before re-orienting: arc lengths count from the user's first point
    # Oriented counter-clockwise, so "left" is the inside wall on every track (only matters for pictures).
    signed_area = 0.5 * np.sum(_cross(centre[:, 0], centre[:, 1], centre[nxt, 0], centre[nxt, 1]))
    if signed_area < 0:
        centre = centre[::-1].copy()
    normals = _vertex_normals(centre)
    half = width / 2
    left, right = centre + half * normals, centre - half * normals
    for wall, label in ((left, "left"), (right, "right")):
        # A bend whose radius is below half the width turns its inner wall inside out: the wall then runs
        # against the centre line there (and may not cross itself at all, as in a small circle).
        backwards = ((wall[nxt] - wall) * (centre[nxt] - centre)).sum(axis=1) <= 0
        if backwards.any():
            raise ArenaError(
                f"a bend near {_where(centre[np.argmax(backwards)])} is tighter than half the track width "
                f"({half:g} m): its {label} wall folds over; widen the bend or narrow the track",
                field,
            )
        bad = _crossing_pairs(wall, wall[nxt], wall, wall[nxt], skip_adjacent=n)
        if len(bad):
            raise ArenaError(
                f"the track's {label} wall crosses itself near {_where(wall[bad[0][0]])}: a bend is too tight for "
                f"width {width:g} m or two parts of the track overlap; widen the bends or narrow the track",
                field,
            )
    if len(_crossing_pairs(left, left[nxt], right, right[nxt], skip_adjacent=None)):
        raise ArenaError(f"the track's walls cross each other: two parts of the track overlap at width {width:g} m", field)
    walls_a = np.vstack([left, right])
    walls_b = np.vstack([left[nxt], right[nxt]])
    cumulative = np.concatenate([[0.0], np.cumsum(np.linalg.norm(centre[nxt] - centre, axis=1))[:-1]])
    track_length = float(cumulative[-1] + np.linalg.norm(centre[0] - centre[-1]))
    candidates = _wall_candidates(centre, left, right, walls_a, walls_b)
    return Track(name, centre, float(width), left, right, cumulative, track_length, candidates, walls_a, walls_b)


def bend_radii(centre: np.ndarray, window: int = BEND_WINDOW) -> np.ndarray:
    """The radius of the centre line's bend at every sample of a closed, ~1 m resampled polyline.

    It is the radius of the circle through the points `window` samples before and after each point (about
    a wheelbase either side), so a polyline's sharp corner is judged by the bend it makes over a car's
    length rather than by the angle at one vertex; on a true circle it is that circle's radius.
    """
    a = np.roll(centre, window, axis=0)
    c = np.roll(centre, -window, axis=0)
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((centre, a), (c, centre), (a, c)))
    twice_area = np.abs(_cross(*(centre - a).T, *(c - a).T))
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = ab * bc * ca / (2 * twice_area)
    return np.where(twice_area > 1e-12, radius, np.inf)


def check_drivable(centre: np.ndarray, width: float, field: str = "track") -> None:
    """Refuse a track with a bend the car cannot take at its minimum turning radius (ArenaError naming it).

    The rule: a bend of centre-line radius r in a lane of width w is drivable when
        r + w / 2 - CAR_RADIUS >= MIN_TURN_RADIUS  (~3.66 m).
    Why: going round a bend, the widest circle the car's centre can follow without its body (a disc of
    radius CAR_RADIUS) touching a wall is the one along the outer wall, of radius r + w/2 - CAR_RADIUS;
    if even that is tighter than the car's tightest turn (full steering lock), no line through the bend
    exists that stays on the track. The rule ignores corner-cutting across the lane (a racing line can
    take a short bend wider than its centre-line radius), so it errs on the side of refusing: a track it
    accepts can be driven at low enough speed. Speed never makes a bend undrivable: the grip limit
    (|yaw rate x speed| <= 12 m/s^2) only binds above sqrt(12 x 3.66) ~= 6.6 m/s, and the car can brake.
    """
    radius = bend_radii(centre)
    room = radius + width / 2 - CAR_RADIUS
    worst = int(np.argmin(room))
    if room[worst] < MIN_TURN_RADIUS - 1e-9:
        along = float(np.sum(np.linalg.norm(np.diff(centre[: worst + 1], axis=0), axis=1)))
        need = MIN_TURN_RADIUS - width / 2 + CAR_RADIUS
        raise ArenaError(
            f"the bend at {_where(centre[worst])}, {along:.1f} m along the lap from the first point, has a "
            f"centre-line radius of {radius[worst]:.2f} m: the car (minimum turning radius {MIN_TURN_RADIUS:.2f} m, "
            f"body radius {CAR_RADIUS:g} m) cannot take it at width {width:g} m, which needs centre-line radius + "
            f"half width - car radius >= {MIN_TURN_RADIUS:.2f} m; make the bend's radius at least {need:.2f} m "
            f"or widen the track",
            field,
        )


def _where(point) -> str:
    return f"({point[0]:.1f}, {point[1]:.1f})"


def _turtle(pieces: list[tuple], step: float = 0.05) -> np.ndarray:
    """A path from straights ("S", length) and arcs ("A", radius, degrees, + is left).

    Exactly two straights may have length None: they are solved so that the path closes.
    """
    heading, free_headings = 0.0, []
    for piece in pieces:  # first pass: the heading of each free straight
        if piece[0] == "S" and piece[1] is None:
            free_headings.append(heading)
        elif piece[0] == "A":
            heading += math.radians(piece[2])
    lengths = iter([None])
    if free_headings:
        end = _trace(pieces, [0.0, 0.0], step)[-1]
        m = np.array([[math.cos(h) for h in free_headings], [math.sin(h) for h in free_headings]])
        lengths = iter(np.linalg.solve(m, -end))
    resolved = [("S", float(next(lengths))) if p[0] == "S" and p[1] is None else p for p in pieces]
    path = _trace(resolved, None, step)
    return path[:-1]  # the last point repeats the first


def _trace(pieces, free_lengths, step):
    x = y = heading = 0.0
    points = [(x, y)]
    free = iter(free_lengths or [])
    for piece in pieces:
        if piece[0] == "S":
            length = piece[1] if piece[1] is not None else next(free)
            n = max(1, int(abs(length) / step))
            for _ in range(n):
                x += math.cos(heading) * length / n
                y += math.sin(heading) * length / n
                points.append((x, y))
        else:
            radius, angle = piece[1], math.radians(piece[2])
            n = max(1, int(abs(angle) * radius / step))
            chord = 2 * radius * math.sin(abs(angle) / n / 2)
            for _ in range(n):
                heading += angle / n / 2
                x += math.cos(heading) * chord
                y += math.sin(heading) * chord
                heading += angle / n / 2
                points.append((x, y))
    return np.array(points)


def _oval() -> np.ndarray:
    """Two 40 m straights joined by half circles of 15 m radius: about 174 m."""
    return _turtle([("S", 40.0), ("A", 15.0, 180.0), ("S", 40.0), ("A", 15.0, 180.0)])


def _scurve() -> np.ndarray:
    """Three lobes, r = 30 + 8 cos(3 theta): bends alternate left and right, minimum radius ~9.7 m, ~216 m."""
    theta = np.linspace(0.0, 2 * np.pi, 4000, endpoint=False)
    r = 30.0 + 8.0 * np.cos(3 * theta)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def _hard() -> np.ndarray:
    """5 m wide: a chicane on the start straight, a 5 m-radius right hairpin, a 180-degree 8 m bend; ~320 m."""
    return _turtle(
        [
            ("S", 20.0),
            ("A", 8.0, 35.0),  # chicane: left, right, left
            ("A", 8.0, -70.0),
            ("A", 8.0, 35.0),
            ("S", 15.0),
            ("A", 12.0, 90.0),
            ("S", 20.0),
            ("A", 10.0, 90.0),
            ("S", 20.0),
            ("A", 5.0, -180.0),  # the hairpin
            ("S", 15.0),
            ("A", 8.0, 180.0),
            ("S", None),  # solved so the lap closes
            ("A", 12.0, 90.0),
            ("S", None),
            ("A", 12.0, 90.0),
        ]
    )


BUILTIN_TRACKS = {
    "oval": (_oval, 6.0),
    "scurve": (_scurve, 6.0),
    "hard": (_hard, 5.0),
}
_CACHE: dict[str, Track] = {}


def builtin_track(name: str) -> Track:
    if name not in _CACHE:
        shape, width = BUILTIN_TRACKS[name]
        _CACHE[name] = build_track(name, shape(), width)
    return _CACHE[name]
