"""Tracking sound sources over time, and triangulating one source heard by several robots.

``SourceTracker`` keeps one track per talker from per-block DOA peaks: each track is a Kalman filter
on (azimuth, angular rate) with wrapped innovations; peaks are assigned to tracks by a gated optimal
assignment (Hungarian on the angular distance), unassigned peaks start tentative tracks, a tentative
track is confirmed after ``birth_blocks`` supporting blocks and any track dies after ``death_s``
without support. Tracks closer than ``merge_deg`` are merged into the older one, so a talker keeps one
track id through pauses and small moves.

``triangulate`` intersects bearing lines from several robots' poses in ``map`` by weighted least
squares and returns the point with its covariance (the person manager calls it).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from voice_robot.hearing.doa import DoaPeak, wrap

# People sit or stand: a source turns around the array slowly, and a still one stops "moving" soon.
MAX_RATE = math.radians(60.0)        # rad/s
VELOCITY_TAU_S = 0.7


@dataclass
class Track:
    track_id: int
    azimuth: float
    born: float
    last_update: float
    velocity: float = 0.0
    covariance: np.ndarray = field(default_factory=lambda: np.diag([math.radians(10) ** 2, math.radians(20) ** 2]))
    hits: int = 1
    confirmed: bool = False
    strength: float = 0.0
    energy_db: float = -120.0
    recent: list = field(default_factory=list)      # times of the latest supporting blocks
    robot_name: str = ''                             # set while the track is a robot's voice
    predicted_at: float = 0.0

    @property
    def azimuth_std(self) -> float:
        return float(math.sqrt(max(self.covariance[0, 0], 0.0)))

    def supported_since(self, t: float) -> int:
        return sum(1 for s in self.recent if s >= t)


class SourceTracker:
    """Multi-source azimuth tracker (birth, death, association)."""

    def __init__(self, birth_blocks: int = 3, death_s: float = 1.5, gate_deg: float = 20.0,
                 process_noise_deg: float = 2.0, measurement_noise_deg: float = 6.0, merge_deg: float = 12.0,
                 tentative_death_s: float = 0.4, block_s: float = 0.064):
        self.birth_blocks = birth_blocks
        self.death_s = death_s
        self.tentative_death_s = tentative_death_s
        self.gate = math.radians(gate_deg)
        self.q = math.radians(process_noise_deg) ** 2
        self.r = math.radians(measurement_noise_deg) ** 2
        self.merge = math.radians(merge_deg)
        self.block_s = block_s
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._last_t: float | None = None
        self.births = 0
        self.deaths = 0
        self.merged_into: dict[int, int] = {}     # track id -> the track that absorbed it (last update)

    def reset(self) -> None:
        self.tracks.clear()
        self._last_t = None

    def _predict(self, track: Track, t: float) -> None:
        dt = max(0.0, t - track.predicted_at)
        track.predicted_at = max(track.predicted_at, t)
        if dt <= 0:
            return
        f = np.array([[1.0, dt], [0.0, 1.0]])
        # Talkers mostly sit still: the rate is weakly damped and the process noise is per second.
        q = np.array([[self.q * dt, 0.0], [0.0, self.q * 4 * dt]])
        track.azimuth = float(wrap(track.azimuth + track.velocity * dt))
        track.velocity *= math.exp(-dt / VELOCITY_TAU_S)
        track.covariance = f @ track.covariance @ f.T + q

    def _update(self, track: Track, peak: DoaPeak, t: float, energy_db: float) -> None:
        r = self.r / max(peak.strength, 0.3)
        h = np.array([1.0, 0.0])
        innovation = float(wrap(peak.azimuth - track.azimuth))
        s = float(h @ track.covariance @ h + r)
        k = track.covariance @ h / s
        track.azimuth = float(wrap(track.azimuth + k[0] * innovation))
        track.velocity = float(np.clip(track.velocity + k[1] * innovation, -MAX_RATE, MAX_RATE))
        track.covariance = (np.eye(2) - np.outer(k, h)) @ track.covariance
        track.last_update = t
        track.hits += 1
        track.strength = 0.7 * track.strength + 0.3 * peak.strength
        track.energy_db = energy_db
        track.recent.append(t)
        if len(track.recent) > 32:
            del track.recent[:-32]
        window = (self.birth_blocks + 1) * self.block_s
        if not track.confirmed and track.supported_since(t - window) >= self.birth_blocks:
            track.confirmed = True

    def update(self, t: float, peaks: list[DoaPeak], energy_db: float = -120.0) -> list[Track]:
        """Advance to time t with this block's peaks (possibly none); returns the live tracks.

        Returns the tracks each peak was assigned to in ``self.assigned`` (peak index -> Track), and
        the tracks merged away in this update in ``self.merged_into`` (track id -> surviving track id).
        """
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f'tracker time went backwards ({t:.3f} < {self._last_t:.3f})')
        self._last_t = t
        self.merged_into = {}
        for track in self.tracks:
            self._predict(track, t)
        self.assigned: dict[int, Track] = {}
        if peaks and self.tracks:
            cost = np.full((len(peaks), len(self.tracks)), 1e6)
            for i, p in enumerate(peaks):
                for j, tr in enumerate(self.tracks):
                    d = abs(float(wrap(p.azimuth - tr.azimuth)))
                    # Uncertain tracks may look a little wider, never far: a stale track must not
                    # capture a new talker on the other side of the array.
                    gate = min(max(self.gate, 3.0 * math.sqrt(tr.covariance[0, 0] + self.r)), 1.5 * self.gate)
                    if d <= gate:
                        # Prefer confirmed tracks: a tentative duplicate should not steal a talker.
                        cost[i, j] = d - (0.02 if tr.confirmed else 0.0)
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] < 1e5:
                    self.assigned[i] = self.tracks[j]
        for i, p in enumerate(peaks):
            if i in self.assigned:
                self._update(self.assigned[i], p, t, energy_db)
            else:
                track = Track(next(self._ids), p.azimuth, born=t, last_update=t, strength=p.strength,
                              energy_db=energy_db, recent=[t], predicted_at=t,
                              covariance=np.diag([self.r / max(p.strength, 0.3), math.radians(20) ** 2]))
                track.confirmed = self.birth_blocks <= 1
                self.tracks.append(track)
                self.assigned[i] = track
                self.births += 1
        self._merge()
        alive = []
        for tr in self.tracks:
            limit = self.death_s if tr.confirmed else self.tentative_death_s
            if t - tr.last_update <= limit:
                alive.append(tr)
            else:
                self.deaths += 1
        self.tracks = alive
        return self.tracks

    def _merge(self) -> None:
        # When two tracks meet, the one the talker has fed most in the last second keeps its id (a
        # wandering noise track must not take over a talker's id), then the confirmed, then the older.
        keep: list[Track] = []
        now = self._last_t or 0.0
        for tr in sorted(self.tracks, key=lambda x: (-x.supported_since(now - 1.0), not x.confirmed, x.born,
                                                     x.track_id)):
            twin = next((k for k in keep if abs(float(wrap(k.azimuth - tr.azimuth))) < self.merge), None)
            if twin is None:
                keep.append(tr)
                continue
            # The older track absorbs the newer one's latest evidence.
            if tr.last_update > twin.last_update:
                twin.last_update = tr.last_update
                twin.recent = sorted(set(twin.recent + tr.recent))[-32:]
            for i, assigned in list(self.assigned.items()):
                if assigned is tr:
                    self.assigned[i] = twin
            self.merged_into[tr.track_id] = twin.track_id
            self.deaths += 1
        self.tracks = sorted(keep, key=lambda x: x.track_id)

    def get(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


def triangulate(poses: Sequence[Sequence[float]], azimuths: Sequence[float],
                stds: Sequence[float] | None = None, min_angle_deg: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares intersection of bearing lines in ``map``.

    poses: (x, y, yaw) of each observing array centre in map (yaw in rad); azimuths: bearing of the
    source in each robot's base frame (rad); stds: their standard deviations (rad, default 5 deg).
    Returns (point (2,), covariance (2, 2)). Raises ValueError with fewer than two bearings, lines
    that are (nearly) parallel, or an intersection behind an observer.
    """
    poses = np.asarray(poses, float)
    az = np.asarray(azimuths, float)
    if poses.ndim != 2 or poses.shape[1] != 3 or poses.shape[0] != az.shape[0]:
        raise ValueError(f'poses must be (n, 3) [x, y, yaw] matching {az.shape[0]} azimuths, got {poses.shape}')
    if poses.shape[0] < 2:
        raise ValueError('triangulation needs bearings from at least two robots')
    if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(az))):
        raise ValueError('poses and azimuths must be finite')
    sig = np.full(az.shape, math.radians(5.0)) if stds is None else np.maximum(np.asarray(stds, float), 1e-3)
    phi = poses[:, 2] + az
    d = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    n = np.stack([-np.sin(phi), np.cos(phi)], axis=1)
    origins = poses[:, :2]
    spread = max(abs(float(wrap(a - b))) % math.pi for a, b in itertools.combinations(phi, 2))
    spread = min(spread, math.pi - spread)
    if spread < math.radians(min_angle_deg):
        raise ValueError('bearings are nearly parallel: the source cannot be located')
    ranges = np.ones(len(az))
    point = np.zeros(2)
    for _ in range(3):
        # A bearing error of sigma moves the line by range * sigma at the source: weight accordingly.
        w = 1.0 / (np.maximum(ranges, 0.3) * sig) ** 2
        a = (n * w[:, None]).T @ n
        b = (n * w[:, None]).T @ np.sum(n * origins, axis=1)
        point = np.linalg.solve(a, b)
        ranges = np.sum((point - origins) * d, axis=1)
    if np.any(ranges < -0.2):
        raise ValueError('the bearing lines meet behind an observer: inconsistent bearings')
    residual = np.sum(n * (point - origins), axis=1)
    w = 1.0 / (np.maximum(ranges, 0.3) * sig) ** 2
    a = (n * w[:, None]).T @ n
    cov = np.linalg.inv(a)
    # With more lines than unknowns, inflate by the observed misfit when it exceeds the model.
    if len(az) > 2:
        chi2 = float(np.sum(w * residual ** 2)) / (len(az) - 2)
        cov = cov * max(1.0, chi2)
    return point, cov


def triangulate_robots(robots, azimuths: Sequence[float], stds: Sequence[float] | None = None):
    """triangulate() with poses taken from RobotSpecs (array centre and yaw)."""
    poses = [(*r.array_center_map()[:2], r.yaw) for r in robots]
    return triangulate(poses, azimuths, stds)
