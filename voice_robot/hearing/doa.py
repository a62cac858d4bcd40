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
        self._front = front_half(self.grid, self.mirror_normal)

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
        return pick_peaks(values, self.grid, self._front, self.secondary_ratio, self.min_separation,
                          self.max_sources)


def pick_peaks(values: np.ndarray, grid: np.ndarray, front: np.ndarray, secondary_ratio: float,
               min_separation: float, max_sources: int) -> list[DoaPeak]:
    """Local maxima of a spatial spectrum on ``grid`` (rad), strongest first, within ``front``; weaker
    ones below ``secondary_ratio`` of the strongest (relative to the median) are side lobes."""
    left, right = np.roll(values, 1), np.roll(values, -1)
    # Edges of a linear array's front half compare with their own mirror images: equal is a peak.
    idx = np.flatnonzero((values >= left) & ((values > right) | ~np.roll(front, -1)) & front)
    if idx.size == 0:
        return []
    idx = idx[np.argsort(values[idx])[::-1]]
    top = values[idx[0]]
    base = float(np.median(values[front]))
    span = max(top - base, 1e-12)
    peaks: list[DoaPeak] = []
    for i in idx:
        strength = (values[i] - base) / span
        if peaks and strength < secondary_ratio:
            break
        az = float(wrap(grid[i]))
        if any(abs(wrap(az - p.azimuth)) < min_separation for p in peaks):
            continue
        peaks.append(DoaPeak(az, float(strength), float(span / (np.max(values) - np.min(values) + 1e-12))))
        if len(peaks) >= max_sources:
            break
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


def front_half(grid: np.ndarray, normal: np.ndarray | None) -> np.ndarray:
    """Grid directions a linear array can tell apart (its front half-plane); every one otherwise."""
    if normal is None:
        return np.ones(grid.size, bool)
    return np.cos(grid) * normal[0] + np.sin(grid) * normal[1] >= -1e-9


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


WHITENER_REFRESH_FRAMES = 16
EXCESS_QUANTILE = 0.75
NOISE_LOADING = 0.1       # diagonal loading of the background covariance: a few dozen frames estimate it roughly


class NoiseAwareDoa:
    """DOA that looks only at what stands out from the learned background, spatially (GEVD).

    A television, a fan, a radio or a babbling crowd is heard all the time, and from its own direction
    (or from everywhere): with plain SRP-PHAT it wins every block and a person talking over it goes
    unlocated. Here each block's spatial covariance is whitened by the background covariance (learned
    on blocks without speech: ``observe_noise``); per frequency bin the principal eigenvectors of the
    whitened covariance whose eigenvalue exceeds 1 (the background) by ``min_excess_db`` are what is new,
    and the spatial spectrum is how well each direction's (whitened) steering vector matches them,
    weighted by that excess. This is the generalised-eigenvalue idea of GEVD-MUSIC (HARK) in its
    signal-subspace form. ``excess_db`` (median over bins of the largest eigenvalue) says how far the
    block stands out from the background in any direction; blocks that do not stand out give no peaks.
    Same interface as DoaEstimator: ``estimate(block)`` -> peaks, strongest first.
    """

    def __init__(self, mic_positions_base: np.ndarray, sample_rate: int, nfft: int, freq_range_hz=(300.0, 3500.0),
                 grid_step_deg: float = 2.0, max_sources: int = 3, secondary_ratio: float = 0.6,
                 min_separation_deg: float = 25.0, min_excess_db: float = 3.0, noise_smoothing: float = 0.97,
                 speed_of_sound: float = 343.0):
        pos = np.asarray(mic_positions_base, float)
        if pos.ndim != 2 or pos.shape[1] < 2 or pos.shape[0] < 2:
            raise ValueError(f'mic positions must be (channels >= 2, 2 or 3), got {pos.shape}')
        self.algorithm = 'gevd'
        self.channels = pos.shape[0]
        self.nfft = nfft
        self.max_sources = max_sources
        self.secondary_ratio = secondary_ratio
        self.min_separation = math.radians(min_separation_deg)
        self.min_excess = 10 ** (min_excess_db / 10.0)
        self.smoothing = noise_smoothing
        freqs = np.arange(nfft // 2 + 1) * sample_rate / nfft
        self.bins = np.flatnonzero((freqs >= freq_range_hz[0]) & (freqs <= min(freq_range_hz[1], sample_rate / 2 - 1)))
        n_grid = max(8, int(round(360.0 / grid_step_deg)))
        self.grid = np.linspace(0.0, 2 * np.pi, n_grid, endpoint=False)
        centred = pos[:, :2] - pos[:, :2].mean(axis=0)
        delays = -(np.stack([np.cos(self.grid), np.sin(self.grid)], axis=1) @ centred.T) / speed_of_sound  # (G, M)
        f = freqs[self.bins]
        self.steering = np.exp(-2j * np.pi * f[None, :, None] * delays[:, None, :]).astype(np.complex64)  # (G, K, M)
        self.mirror_normal = linear_array_normal(pos)
        self._front = front_half(self.grid, self.mirror_normal)
        eye = np.eye(self.channels, dtype=np.complex64)
        self.noise_cov = np.tile(eye, (self.bins.size, 1, 1)) * 1e-8
        self.noise_frames = 0
        self._whitener = None
        self.spectrum: np.ndarray | None = None
        self.excess_db = 0.0

    def fold(self, azimuth: float) -> float:
        return fold_azimuth(azimuth, self.mirror_normal)

    def observe_noise(self, frame: np.ndarray) -> None:
        """A frame (channels, bins) of background only."""
        x = frame[:, self.bins].T                                   # (K, M)
        outer = x[:, :, None] * np.conj(x[:, None, :])
        a = self.smoothing if self.noise_frames > 30 else 0.8
        self.noise_cov = (a * self.noise_cov + (1 - a) * outer).astype(np.complex64)
        self.noise_frames += 1
        if self.noise_frames <= 32 or self.noise_frames % WHITENER_REFRESH_FRAMES == 0:
            self._whitener = None      # the background changes slowly: refresh the whitening now and then

    def _whitening(self) -> tuple[np.ndarray, np.ndarray]:
        """(W with W R_n W^H = I per bin, the unit whitened steering vectors (G, K, M))."""
        if self._whitener is None:
            cov = self.noise_cov
            trace = np.real(np.einsum('kmm->k', cov)) / self.channels
            loaded = cov + (NOISE_LOADING * trace + 1e-12)[:, None, None] * np.eye(self.channels)[None]
            chol = np.linalg.cholesky(loaded)
            w = np.linalg.inv(chol).astype(np.complex64)
            a = np.einsum('kmn,gkn->gkm', w, self.steering)
            a /= np.linalg.norm(a, axis=2, keepdims=True) + 1e-12
            self._whitener = (w, np.conj(a))
        return self._whitener

    def estimate(self, block: np.ndarray) -> list[DoaPeak]:
        if block.ndim != 3 or block.shape[0] != self.channels or block.shape[1] != self.nfft // 2 + 1:
            raise ValueError(f'DOA block must be ({self.channels}, {self.nfft // 2 + 1}, frames), got {block.shape}')
        if self.noise_frames < 8:
            return []                                                # no background learned yet
        x = block[:, self.bins, :].transpose(1, 0, 2)               # (K, M, F)
        cov = np.einsum('kmf,knf->kmn', x, np.conj(x)) / x.shape[2]
        w, a_conj = self._whitening()
        white = w @ cov @ np.conj(np.transpose(w, (0, 2, 1)))
        vals, vecs = np.linalg.eigh(white)                          # ascending
        # The largest eigenvalue of a covariance of F frames of pure background is about
        # (1 + sqrt(M / F))^2 (the Marchenko-Pastur edge), not 1: measure the excess from there.
        vals = vals / (1.0 + math.sqrt(self.channels / x.shape[2])) ** 2
        # Voiced speech fills the bins near its harmonics only: a high quantile, not the median.
        top = float(np.quantile(vals[:, -1], EXCESS_QUANTILE))
        self.excess_db = float(10 * np.log10(max(top, 1e-12)))
        if not np.all(np.isfinite(vals)) or top < self.min_excess:
            self.spectrum = None
            return []
        # One source per eigenvector that stands out (its spectrum has side lobes, never a second
        # source). Every bin where it stands out votes equally (as PHAT does): loud low bins, where a
        # small array cannot tell directions apart, must not outweigh the rest.
        peaks: list[DoaPeak] = []
        spectrum = None
        for j in range(1, min(self.max_sources, self.channels - 1) + 1):
            use = vals[:, -j] >= self.min_excess
            if float(np.quantile(vals[:, -j], EXCESS_QUANTILE)) < self.min_excess or use.sum() < 3:
                break
            match = np.abs(np.einsum('gkm,km->gk', a_conj[:, use], vecs[use, :, -j])) ** 2
            values = match.mean(axis=1)
            if not np.all(np.isfinite(values)):
                break
            spectrum = values if spectrum is None else spectrum
            best = pick_peaks(values, self.grid, self._front, 0.0, self.min_separation, 1)
            if not best:
                break
            peak = best[0]
            if any(abs(wrap(peak.azimuth - p.azimuth)) < self.min_separation for p in peaks):
                continue
            strength = 1.0 if not peaks else float(np.quantile(vals[:, -j], EXCESS_QUANTILE) / top)
            if peaks and strength < self.secondary_ratio:
                break
            peaks.append(DoaPeak(peak.azimuth, strength, peak.score))
        self.spectrum = spectrum
        return peaks
