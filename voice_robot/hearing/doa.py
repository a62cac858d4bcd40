"""Direction of arrival on STFT blocks with pyroomacoustics (SRP-PHAT, MUSIC or NormMUSIC).

``DoaEstimator`` wraps one pyroomacoustics DOA object (built once: its steering vectors are
precomputed) for the array in the robot base frame, so the azimuths it returns are base-frame
azimuths (REP-103, CCW from +x). ``estimate`` returns up to ``max_sources`` peaks of the spatial
spectrum with a relative strength; weak secondary peaks (side lobes, reflections) are left out.

A linear array (every microphone on one line) cannot tell a source from its mirror image across that
line: its spatial spectrum is symmetric, and both images would become tracks and utterances. Its
peaks are taken on the front half-plane only (the side of the line the robot faces, +x), and
``fold`` maps any azimuth (e.g. the bearing of a peer robot behind) to the image the array reports.

``NoiseFloor`` follows the background level so DOA only runs on blocks that stand out from it
(the cheapest DOA is the one not computed).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

ALGORITHMS = {'srp_phat': 'SRP', 'music': 'MUSIC', 'normmusic': 'NormMUSIC'}


@dataclass
class DoaPeak:
    azimuth: float         # rad, base frame, in (-pi, pi]
    strength: float        # peak height relative to the block's strongest peak (1.0 for it)
    score: float           # peak height above the spectrum's median, normalised by its range (0..1)


def wrap(angle: float | np.ndarray):
    """Angle in (-pi, pi]."""
    return -((-np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi) if isinstance(angle, np.ndarray) else \
        -((-angle + math.pi) % (2 * math.pi) - math.pi)


class DoaEstimator:
    """Azimuth peaks of one STFT block (channels, bins, frames) for a fixed array geometry."""

    def __init__(self, mic_positions_base: np.ndarray, sample_rate: int, nfft: int, algorithm: str = 'srp_phat',
                 freq_range_hz=(300.0, 3500.0), grid_step_deg: float = 2.0, max_sources: int = 3,
                 secondary_ratio: float = 0.6, min_separation_deg: float = 25.0, speed_of_sound: float = 343.0):
        import pyroomacoustics as pra
        if algorithm not in ALGORITHMS:
            raise ValueError(f'unknown DOA algorithm {algorithm!r}; known: {", ".join(ALGORITHMS)}')
        pos = np.asarray(mic_positions_base, float)
        if pos.ndim != 2 or pos.shape[1] < 2 or pos.shape[0] < 2:
            raise ValueError(f'mic positions must be (channels >= 2, 2 or 3), got {pos.shape}')
        centred = (pos[:, :2] - pos[:, :2].mean(axis=0)).T
        self.algorithm = algorithm
        self.channels = pos.shape[0]
        self.nfft = nfft
        self.freq_range = [float(freq_range_hz[0]), float(min(freq_range_hz[1], sample_rate / 2 - 1))]
        self.max_sources = max_sources
        self.secondary_ratio = secondary_ratio
        self.min_separation = math.radians(min_separation_deg)
        n_grid = max(8, int(round(360.0 / grid_step_deg)))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            self._doa = pra.doa.algorithms[ALGORITHMS[algorithm]](
                centred, sample_rate, nfft, c=speed_of_sound, num_src=max_sources, n_grid=n_grid, dim=2)
        self.grid = np.asarray(self._doa.grid.azimuth, float)
        self.spectrum: np.ndarray | None = None
        self.mirror_normal = linear_array_normal(pos)
        if self.mirror_normal is None:
            self._front = np.ones(self.grid.size, bool)
        else:
            n = self.mirror_normal
            self._front = np.cos(self.grid) * n[0] + np.sin(self.grid) * n[1] >= -1e-9

    def fold(self, azimuth: float) -> float:
        """The azimuth as this array reports it (a linear array's back half-plane mirrored to the front)."""
        return fold_azimuth(azimuth, self.mirror_normal)

    def estimate(self, block: np.ndarray) -> list[DoaPeak]:
        """block: (channels, bins, frames) complex STFT. Returns peaks strongest first."""
        if block.ndim != 3 or block.shape[0] != self.channels or block.shape[1] != self.nfft // 2 + 1:
            raise ValueError(f'DOA block must be ({self.channels}, {self.nfft // 2 + 1}, frames), got {block.shape}')
        with warnings.catch_warnings(), np.errstate(all='ignore'):
            warnings.simplefilter('ignore')
            self._doa.locate_sources(block, num_src=1, freq_range=self.freq_range)
        values = np.asarray(self._doa.grid.values, float)
        if not np.all(np.isfinite(values)):
            return []
        self.spectrum = values
        return self._peaks(values)

    def locate(self, block: np.ndarray, num_src: int) -> list[float]:
        """pyroomacoustics' own answer for ``num_src`` sources (its peak picking, no gating): the raw baseline."""
        with warnings.catch_warnings(), np.errstate(all='ignore'):
            warnings.simplefilter('ignore')
            self._doa.locate_sources(block, num_src=num_src, freq_range=self.freq_range)
        return [float(a) for a in np.atleast_1d(self._doa.azimuth_recon)]

    def _peaks(self, values: np.ndarray) -> list[DoaPeak]:
        n = values.size
        left, right = np.roll(values, 1), np.roll(values, -1)
        # Edges of a linear array's front half compare with their own mirror images: equal is a peak.
        idx = np.flatnonzero((values >= left) & ((values > right) | ~np.roll(self._front, -1)) & self._front)
        if idx.size == 0:
            return []
        idx = idx[np.argsort(values[idx])[::-1]]
        top = values[idx[0]]
        base = float(np.median(values[self._front]))
        span = max(top - base, 1e-12)
        peaks: list[DoaPeak] = []
        for i in idx:
            strength = (values[i] - base) / span
            if peaks and strength < self.secondary_ratio:
                break
            az = float(wrap(self.grid[i]))
            if any(abs(wrap(az - p.azimuth)) < self.min_separation for p in peaks):
                continue
            peaks.append(DoaPeak(az, float(strength), float(span / (np.max(values) - np.min(values) + 1e-12))))
            if len(peaks) >= self.max_sources:
                break
        del n
        return peaks


def linear_array_normal(positions: np.ndarray) -> np.ndarray | None:
    """For microphones on one line (in the horizontal plane): the unit normal of that line pointing
    to the front (+x, or +y for a line along x); None for arrays that resolve the full circle."""
    pos = np.asarray(positions, float)[:, :2]
    centred = pos - pos.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv.size < 2 or sv[0] <= 0 or sv[1] > 1e-3 * sv[0]:
        return None
    axis = np.linalg.svd(centred)[2][0]
    normal = np.array([-axis[1], axis[0]])
    if normal[0] < -1e-9 or (abs(normal[0]) <= 1e-9 and normal[1] < 0):
        normal = -normal
    return normal / np.linalg.norm(normal)


def fold_azimuth(azimuth: float, normal: np.ndarray | None) -> float:
    """Mirror an azimuth behind a linear array (``normal`` from linear_array_normal) to its front image."""
    if normal is None:
        return float(wrap(azimuth))
    d = np.array([math.cos(azimuth), math.sin(azimuth)])
    side = float(d @ normal)
    if side < 0:
        d = d - 2.0 * side * normal
    return float(math.atan2(d[1], d[0]))


class NoiseFloor:
    """Background level tracker: falls fast to quieter blocks, rises slowly (speech is not the floor)."""

    def __init__(self, rise_db_per_s: float = 3.0, initial_db: float | None = None):
        self.rise = rise_db_per_s
        self.level_db = initial_db
        self._last_t: float | None = None

    def update(self, t: float, level_db: float) -> float:
        if self.level_db is None:
            self.level_db = level_db
        else:
            dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
            if level_db < self.level_db:
                self.level_db = 0.7 * self.level_db + 0.3 * level_db
            else:
                self.level_db = min(level_db, self.level_db + self.rise * dt)
        self._last_t = t
        return self.level_db
