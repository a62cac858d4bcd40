"""Beamformers that turn the array's STFT frames into one enhanced stream toward a talker.

Both kinds share one small interface (``Beamformer.weights(azimuth, interferers)`` and
``observe_noise(frame)``) and are chosen by name (``make_beamformer``):

* ``das``: delay-and-sum, far-field steering toward the talker's azimuth;
* ``mvdr``: minimum variance distortionless response. The covariance is the background noise
  (learned on frames without speech) plus a rank-one term for every other live talker, so the beam
  keeps the talker undistorted while steering nulls at the others (a steered-null LCMV in effect);
  diagonal loading bounds the white-noise gain of small arrays.

Steering vectors use the array geometry in the robot base frame, so azimuths are base-frame azimuths.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

SPEED_OF_SOUND = 343.0


def steering_vectors(mic_positions_base: np.ndarray, azimuth: float, sample_rate: int, nfft: int,
                     elevation: float = 0.0) -> np.ndarray:
    """(bins, channels) far-field steering vectors: phase of a plane wave from ``azimuth`` at each mic."""
    pos = np.asarray(mic_positions_base, float)
    pos = pos - pos.mean(axis=0)
    u = np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation), np.sin(elevation)])
    if pos.shape[1] == 2:
        u = u[:2]
    delays = -(pos @ u) / SPEED_OF_SOUND                 # seconds relative to the centre
    freqs = np.arange(nfft // 2 + 1) * sample_rate / nfft
    return np.exp(-2j * np.pi * freqs[:, None] * delays[None, :]).astype(np.complex64)


class Beamformer(ABC):
    """Weights (bins, channels) such that output(k) = sum_m conj(w[k, m]) * frame[m, k]."""
    name = 'beamformer'

    def __init__(self, mic_positions_base: np.ndarray, sample_rate: int, nfft: int):
        self.positions = np.asarray(mic_positions_base, float)
        self.channels = self.positions.shape[0]
        self.sample_rate = sample_rate
        self.nfft = nfft

    def steer(self, azimuth: float) -> np.ndarray:
        return steering_vectors(self.positions, azimuth, self.sample_rate, self.nfft)

    def observe_noise(self, frame: np.ndarray) -> None:
        """A frame (channels, bins) with no talker in it (background only)."""

    @abstractmethod
    def weights(self, azimuth: float, interferers: list[float] | None = None) -> np.ndarray:
        ...

    @staticmethod
    def apply(weights: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """frame (channels, bins) -> beam output (bins,)."""
        return np.einsum('km,mk->k', np.conj(weights), frame)


class DelayAndSum(Beamformer):
    name = 'das'

    def weights(self, azimuth, interferers=None):
        return self.steer(azimuth) / self.channels


class Mvdr(Beamformer):
    name = 'mvdr'

    def __init__(self, mic_positions_base, sample_rate, nfft, diagonal_loading: float = 1e-2,
                 interferer_power: float = 10.0, noise_smoothing: float = 0.98):
        super().__init__(mic_positions_base, sample_rate, nfft)
        self.loading = diagonal_loading
        self.interferer_power = interferer_power
        self.smoothing = noise_smoothing
        bins = nfft // 2 + 1
        # Until background frames arrive, assume spatially white noise (MVDR = delay-and-sum).
        self.noise_cov = np.tile(np.eye(self.channels, dtype=np.complex64), (bins, 1, 1))
        self.noise_frames = 0

    def observe_noise(self, frame):
        x = frame.T                                        # (bins, channels)
        outer = x[:, :, None] * np.conj(x[:, None, :])
        power = np.real(np.einsum('kmm->k', outer)) / self.channels
        outer = outer / (power[:, None, None] + 1e-12)      # shape only; the level is irrelevant to MVDR
        a = self.smoothing if self.noise_frames > 20 else 0.8
        self.noise_cov = (a * self.noise_cov + (1 - a) * outer).astype(np.complex64)
        self.noise_frames += 1

    def weights(self, azimuth, interferers=None):
        d = self.steer(azimuth)                             # (bins, channels)
        cov = self.noise_cov.copy()
        for other in interferers or []:
            v = self.steer(other)
            cov += self.interferer_power * v[:, :, None] * np.conj(v[:, None, :])
        trace = np.real(np.einsum('kmm->k', cov)) / self.channels
        cov += (self.loading * trace)[:, None, None] * np.eye(self.channels)[None]
        rinv_d = np.linalg.solve(cov, d[:, :, None])[:, :, 0]
        denom = np.einsum('km,km->k', np.conj(d), rinv_d)
        return (rinv_d / denom[:, None]).astype(np.complex64)


def make_beamformer(kind: str, mic_positions_base: np.ndarray, sample_rate: int, nfft: int,
                    diagonal_loading: float = 1e-2) -> Beamformer:
    if kind == 'das':
        return DelayAndSum(mic_positions_base, sample_rate, nfft)
    if kind == 'mvdr':
        return Mvdr(mic_positions_base, sample_rate, nfft, diagonal_loading=diagonal_loading)
    raise ValueError(f'unknown beamformer {kind!r}; known: das, mvdr')
