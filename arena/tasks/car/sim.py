"""The batched car simulator: many cars, one or more tracks, one call per time step. Pure numpy.

Every operation is an array operation over cars (no Python loop over cars), and element-wise, so a
car's trajectory is the same whether it is stepped alone or among a thousand others.

The car is a kinematic bicycle: steering angle delta, speed v, wheelbase L,
    heading' = v / L * tan(delta)   (capped so that |heading' * v| <= the grip limit)
    x' = v cos(heading), y' = v sin(heading)
integrated with a 0.05 s step. Its body is a disc; it crashes when the disc touches a wall. The top
speed times the time step (0.5 m) is no more than the disc's radius, so a car can never jump over a
wall between two checks: wherever it crosses a wall line during a step, it ends that step within its
radius of that line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.tasks.car.tracks import CAR_RADIUS, MAX_STEER, MIN_TURN_RADIUS, RAY_RANGE, WHEELBASE, Track  # noqa: F401

DT = 0.05  # s
# WHEELBASE (2 m) and MAX_STEER (0.5 rad) live in tracks.py: track validation needs the minimum turning radius.
TOP_SPEED = 10.0  # m/s
ACCELERATION = 6.0  # m/s^2
BRAKING = 12.0  # m/s^2
GRIP = 12.0  # m/s^2: |yaw rate x speed| (lateral acceleration) limit
RAY_ANGLES = np.radians([-45.0, -20.0, 0.0, 20.0, 45.0])
OBSERVATION_SIZE = len(RAY_ANGLES) + 1  # rays / range, speed / top speed
ACTION_SIZE = 2  # steering, speed command; both in [-1, 1]

LAP_REWARD = 100.0  # reward for a full lap of signed progress
CRASH_REWARD = -5.0
STALL_DISTANCE = 5.0  # m: best progress must grow this much ...
STALL_STEPS = 60  # ... within this many steps, or the episode ends (ends circling and standing still)
MAX_STEPS = 1000
SENSE_CHUNK = 128  # cars per ray-casting chunk (measured: 64-128 fastest; 256 spills the cache)

# Random starts: anywhere along the lap, off the centre line by up to this fraction of the room the
# car has, heading along the track give or take START_HEADING radians, standing still.
START_LATERAL = 0.5
START_HEADING = 0.4

assert TOP_SPEED * DT <= CAR_RADIUS, "a car could jump a wall between two contact checks"


class World:
    """One or more tracks as flat arrays: segments and walls of every track, indexed globally."""

    def __init__(self, tracks: list[Track]):
        self.tracks = list(tracks)
        starts, ends, cum, lap, track_of, nxt, prv, cands = [], [], [], [], [], [], [], []
        walls_a, walls_b = [], []
        seg_offset = wall_offset = 0
        width = max(t.candidates.shape[1] for t in tracks)
        for k, t in enumerate(tracks):
            n = t.segments
            idx = np.arange(n)
            starts.append(t.centre)
            ends.append(t.centre[(idx + 1) % n])
            cum.append(t.cumulative)
            lap.append(np.full(n, t.length))
            track_of.append(np.full(n, k))
            nxt.append((idx + 1) % n + seg_offset)
            prv.append((idx - 1) % n + seg_offset)
            c = t.candidates
            c = np.concatenate([c, np.repeat(c[:, :1], width - c.shape[1], axis=1)], axis=1)  # pad with duplicates
            cands.append(c + wall_offset)
            walls_a.append(t.walls_a)
            walls_b.append(t.walls_b)
            seg_offset += n
            wall_offset += len(t.walls_a)
        self.seg_start = np.concatenate(starts)
        self.seg_vec = np.concatenate(ends) - self.seg_start
        self.seg_len2 = (self.seg_vec**2).sum(1)
        self.seg_len = np.sqrt(self.seg_len2)
        self.seg_cum = np.concatenate(cum)
        self.seg_lap = np.concatenate(lap)
        self.seg_track = np.concatenate(track_of)
        self.track_offset = np.cumsum([0] + [t.segments for t in tracks])[:-1]
        nxt, prv = np.concatenate(nxt), np.concatenate(prv)
        # The segments a car may have moved onto in one step (it moves at most 0.5 m; segments are ~1 m).
        self.neighbours = np.stack([prv[prv], prv, np.arange(len(nxt)), nxt, nxt[nxt]], axis=1)
        self.candidates_t = np.ascontiguousarray(np.concatenate(cands).T)  # (K, segments): see Cars._sense
        a, b = np.concatenate(walls_a), np.concatenate(walls_b)
        f32 = np.float32
        self.wall_ax, self.wall_ay = a[:, 0].astype(f32), a[:, 1].astype(f32)
        self.wall_ex, self.wall_ey = (b - a)[:, 0].astype(f32), (b - a)[:, 1].astype(f32)
        self.wall_len2 = self.wall_ex**2 + self.wall_ey**2


@dataclass
class Starts:
    """Where episodes start: a track index, arc length, lateral offset (m) and heading offset (rad)."""

    track: np.ndarray
    s: np.ndarray
    lateral: np.ndarray
    heading: np.ndarray

    def __len__(self):
        return len(self.s)

    def take(self, index) -> "Starts":
        return Starts(self.track[index], self.s[index], self.lateral[index], self.heading[index])


def random_starts(world: World, rng: np.random.Generator, count: int, tracks: np.ndarray | None = None) -> Starts:
    """`count` seeded random starts; episode i is on track i % len(tracks) unless `tracks` says otherwise."""
    if tracks is None:
        tracks = np.arange(count) % len(world.tracks)
    u = rng.random((3, count))
    lengths = np.array([t.length for t in world.tracks])[tracks]
    room = np.array([t.half_width - CAR_RADIUS for t in world.tracks])[tracks]
    return Starts(
        track=np.asarray(tracks, dtype=np.int64),
        s=u[0] * lengths,
        lateral=(2 * u[1] - 1) * START_LATERAL * room,
        heading=(2 * u[2] - 1) * START_HEADING,
    )


class Cars:
    """The state of n cars as arrays, and the step function."""

    def __init__(self, world: World, starts: Starts):
        self.world = world
        n = len(starts)
        self.x = np.zeros(n)
        self.y = np.zeros(n)
        self.heading = np.zeros(n)
        self.speed = np.zeros(n)
        self.seg = np.zeros(n, dtype=np.int64)
        self.s = np.zeros(n)  # arc length of the nearest centre-line point
        self.lap = np.zeros(n)  # the lap length of the car's track
        self.progress = np.zeros(n)  # signed distance along the centre line since the start
        self.best = np.zeros(n)
        self.stall_anchor = np.zeros(n)
        self.stall_steps = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)
        self.obs = np.zeros((n, OBSERVATION_SIZE), dtype=np.float32)
        self.reset(np.arange(n), starts)

    def __len__(self):
        return len(self.x)

    def reset(self, index: np.ndarray, starts: Starts) -> None:
        """Put cars `index` at `starts` (standing still) and compute their observations."""
        w = self.world
        for k in np.unique(starts.track):  # one call per track, not per car
            mine = starts.track == k
            point, tangent, seg = w.tracks[k].point_at(starts.s[mine])
            normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
            pos = point + normal * starts.lateral[mine, None]
            i = index[mine]
            self.x[i], self.y[i] = pos[:, 0], pos[:, 1]
            self.heading[i] = np.arctan2(tangent[:, 1], tangent[:, 0]) + starts.heading[mine]
            self.seg[i] = seg + w.track_offset[k]
        self.speed[index] = 0.0
        seg, s = self._locate(self.x[index], self.y[index], self.seg[index])
        self.seg[index], self.s[index] = seg, s
        self.lap[index] = w.seg_lap[seg]
        for name in ("progress", "best", "stall_anchor"):
            getattr(self, name)[index] = 0.0
        self.stall_steps[index] = 0
        self.steps[index] = 0
        self.obs[index], _ = self._sense(self.x[index], self.y[index], self.heading[index], self.speed[index], seg)

    def subset(self, index: np.ndarray) -> "Cars":
        """A copy holding only cars `index` (to drop finished cars from a batch)."""
        other = object.__new__(Cars)
        other.world = self.world
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                setattr(other, name, value[index])
        return other

    def step(self, actions: np.ndarray):
        """Advance every car by one time step.

        Returns (reward, crashed, stalled, timed_out) per car; `self.obs` holds the new observations.
        """
        # fmax/fmin also map a NaN action (a diverged network) to -1 instead of spreading NaN; and np.clip's
        # Python wrapper costs more than the arithmetic at these sizes.
        actions = np.fmin(np.fmax(actions.astype(np.float64), -1.0), 1.0)
        steer = actions[:, 0] * MAX_STEER
        target = (actions[:, 1] + 1.0) * (TOP_SPEED / 2)
        # Speed follows the command within the acceleration and braking limits; no reverse.
        change = np.minimum(np.maximum(target - self.speed, -BRAKING * DT), ACCELERATION * DT)
        self.speed = np.maximum(self.speed + change, 0.0)
        yaw_rate = self.speed / WHEELBASE * np.tan(steer)
        grip = GRIP / np.maximum(self.speed, 1e-6)  # the lateral-acceleration limit caps the yaw rate
        yaw_rate = np.minimum(np.maximum(yaw_rate, -grip), grip)
        self.heading = self.heading + yaw_rate * DT
        self.x = self.x + self.speed * np.cos(self.heading) * DT
        self.y = self.y + self.speed * np.sin(self.heading) * DT

        seg, s = self._locate(self.x, self.y, self.seg)
        delta = s - self.s
        delta -= self.lap * np.round(delta / self.lap)  # crossing the start line in either direction
        self.seg, self.s = seg, s
        self.progress = self.progress + delta
        reward = LAP_REWARD * delta / self.lap

        self.obs, crashed = self._sense(self.x, self.y, self.heading, self.speed, seg)
        reward[crashed] += CRASH_REWARD

        self.best = np.maximum(self.best, self.progress)
        grew = self.best >= self.stall_anchor + STALL_DISTANCE
        self.stall_anchor = np.where(grew, self.best, self.stall_anchor)
        self.stall_steps = np.where(grew, 0, self.stall_steps + 1)
        self.steps = self.steps + 1
        stalled = (self.stall_steps >= STALL_STEPS) & ~crashed
        timed_out = (self.steps >= MAX_STEPS) & ~crashed & ~stalled
        return reward, crashed, stalled, timed_out

    def _locate(self, x, y, seg):
        """The nearest centre-line segment among the neighbours of `seg`, and the arc length there."""
        w = self.world
        near = w.neighbours[seg]  # (n, 5)
        ax, ay = w.seg_start[near, 0], w.seg_start[near, 1]
        ex, ey = w.seg_vec[near, 0], w.seg_vec[near, 1]
        px, py = x[:, None] - ax, y[:, None] - ay
        t = np.minimum(np.maximum((px * ex + py * ey) / w.seg_len2[near], 0.0), 1.0)
        dx, dy = px - t * ex, py - t * ey
        best = np.argmin(dx * dx + dy * dy, axis=1)
        rows = np.arange(len(x))
        seg = near[rows, best]
        return seg, w.seg_cum[seg] + t[rows, best] * w.seg_len[seg]

    def _sense(self, x, y, heading, speed, seg):
        # Big batches go in chunks: the (K, 5, n) temporaries of up to 128 cars stay in the CPU cache.
        if len(x) <= SENSE_CHUNK:
            return self._sense_chunk(x, y, heading, speed, seg)
        parts = [
            self._sense_chunk(*(a[i : i + SENSE_CHUNK] for a in (x, y, heading, speed, seg)))
            for i in range(0, len(x), SENSE_CHUNK)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _sense_chunk(self, x, y, heading, speed, seg):
        """Observations (rays / range, speed / top speed) and wall contact, against nearby walls only.

        Arrays are laid out (K walls, 5 rays, n cars) in float32 so that every operation runs along the
        contiguous car axis and the minimum over walls is an element-wise reduction: this layout is
        several times faster in numpy than (n, 5, K). Coordinates are relative to the car, where
        float32 is exact to about 1e-5 m.
        """
        w = self.world
        walls = w.candidates_t[:, seg]  # (K, n)
        ex, ey = w.wall_ex[walls], w.wall_ey[walls]
        qx = w.wall_ax[walls] - x.astype(np.float32)  # car -> wall start
        qy = w.wall_ay[walls] - y.astype(np.float32)

        # Contact: the distance from the car's centre to the nearest wall segment is within its radius.
        t = qx * ex
        t += qy * ey
        t /= -w.wall_len2[walls]
        np.maximum(t, 0.0, out=t)
        np.minimum(t, 1.0, out=t)
        cx, cy = qx + t * ex, qy + t * ey
        cx *= cx
        cy *= cy
        cx += cy
        crashed = cx.min(axis=0) <= np.float32(CAR_RADIUS * CAR_RADIUS)

        # Rays: origin o, direction d; wall a + u e. Solve o + r d = a + u e for r >= 0, 0 <= u <= 1.
        angle = RAY_ANGLES[:, None] + heading[None, :]  # (5, n)
        dx, dy = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
        qx, qy, ex, ey = qx[:, None, :], qy[:, None, :], ex[:, None, :], ey[:, None, :]
        denom = dx * ey
        denom -= dy * ex  # (K, 5, n)
        along = qx * ey
        along -= qy * ex  # (K, 1, n)
        u = qx * dy
        u -= qy * dx
        with np.errstate(divide="ignore", invalid="ignore"):
            r = along / denom  # distance along the ray
            u /= denom  # position along the wall, in [0, 1] when the ray meets it
            u -= np.float32(0.5)
            hit = (r >= 0.0) & (np.abs(u, out=u) <= 0.5)  # NaN (parallel) compares False
        distance = np.minimum.reduce(r, axis=0, where=hit, initial=RAY_RANGE)  # (5, n)
        obs = np.empty((len(x), OBSERVATION_SIZE), dtype=np.float32)
        obs[:, :-1] = distance.T / np.float32(RAY_RANGE)
        obs[:, -1] = speed / TOP_SPEED
        return obs, crashed
