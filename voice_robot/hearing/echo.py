"""Cancelling the robot's own voice from its microphones (acoustic echo cancellation).

The robot knows what it plays (``speech/audio``: mono chunks stamped with their play time). For every
microphone an adaptive filter in the STFT domain (a multi-delay / partitioned-block frequency-domain
NLMS: ``taps`` past reference frames per frequency bin) learns the loudspeaker-to-microphone path and
subtracts its echo estimate. The step size follows Valin's double-talk-robust rule (J.-M. Valin,
"On adjusting the learning rate in frequency domain echo cancellation with double-talk", IEEE TASLP
2007): mu(k) = min(mu_max, leak * |echo estimate(k)|^2 / |error(k)|^2), where ``leak`` estimates the share
of echo still in the error; near-end speech inflates the error and slows learning automatically, so a
person talking over the robot neither diverges the filter nor gets cancelled. Before the filter has
converged once, a plain NLMS step is used. The learned path is kept between speech acts (the robot
does not move relative to its own loudspeaker).

A residual-echo post-filter applies one real gain per bin to all microphones (so inter-microphone
phase, which DOA and beamforming need, is untouched).

``ReferenceBuffer`` stores the played audio by absolute time so any microphone hop can fetch the
reference that was playing during it.
"""
from __future__ import annotations

import numpy as np

from voice_robot.hearing.audio import StreamingStft


class ReferenceBuffer:
    """Played mono audio indexed by absolute sample number; bounded to ``capacity_s``."""

    def __init__(self, sample_rate: int, capacity_s: float = 4.0):
        self.sample_rate = sample_rate
        self.capacity = int(capacity_s * sample_rate)
        self._start = 0                     # absolute sample index of _data[0]
        self._data = np.zeros(0, np.float32)
        self.last_end: float = -np.inf      # time the latest played sample ends
        self.last_active: float = -np.inf   # end time of the latest chunk with energy

    def push(self, stamp: float, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        begin = int(round(stamp * self.sample_rate))
        if self._data.size == 0 or begin > self._start + self._data.size + self.capacity:
            self._start, self._data = begin, samples.copy()
        else:
            end = begin + samples.size
            cur_end = self._start + self._data.size
            if end > cur_end:
                self._data = np.concatenate([self._data, np.zeros(end - cur_end, np.float32)])
            if begin < self._start:        # older than what is kept: keep only the part that fits
                samples = samples[self._start - begin:]
                begin = self._start
            offset = begin - self._start
            self._data[offset:offset + samples.size] = samples
            if self._data.size > self.capacity:
                cut = self._data.size - self.capacity
                self._data = self._data[cut:]
                self._start += cut
        end_t = (begin + samples.size) / self.sample_rate
        self.last_end = max(self.last_end, end_t)
        if samples.size and float(np.max(np.abs(samples))) > 1e-4:
            self.last_active = max(self.last_active, end_t)

    def covers(self, t_end: float) -> bool:
        return self.last_end >= t_end - 0.5 / self.sample_rate

    def get(self, stamp: float, n: int) -> np.ndarray:
        """n samples starting at ``stamp``; zeros where nothing was played."""
        begin = int(round(stamp * self.sample_rate))
        out = np.zeros(n, np.float32)
        lo = max(begin, self._start)
        hi = min(begin + n, self._start + self._data.size)
        if hi > lo:
            out[lo - begin:hi - begin] = self._data[lo - self._start:hi - self._start]
        return out


class EchoCanceller:
    """Per-microphone STFT-domain adaptive echo canceller with a double-talk-robust step size.

    ``process(mic_spectra, ref_hop)`` takes the microphones' STFT frame (channels, bins) and the
    reference hop played during it; it returns the cleaned frame. After each call ``echo_power`` and
    ``residual_power`` (mean over microphones and bins) describe the frame.
    """

    def __init__(self, channels: int, nfft: int, taps: int = 8, mu_max: float = 0.5, postfilter: bool = True,
                 postfilter_overestimate: float = 2.0, postfilter_floor: float = 0.1):
        self.channels = channels
        self.nfft = nfft
        self.bins = nfft // 2 + 1
        self.taps = taps
        self.mu_max = mu_max
        self.postfilter = postfilter
        self.overestimate = postfilter_overestimate
        self.floor = postfilter_floor
        self._ref_stft = StreamingStft(nfft, 1)
        self.weights = np.zeros((channels, taps, self.bins), np.complex64)
        self._ref_hist = np.zeros((taps, self.bins), np.complex64)
        self._ref_power = np.full(self.bins, 1e-6, np.float32)
        # Valin leak estimate: recursive covariances of error and echo-estimate power spectra.
        self._mean_e = np.zeros(self.bins)
        self._mean_y = np.zeros(self.bins)
        self._r_ey = 0.0
        self._r_yy = 1e-9
        self.leak = 1.0
        self.adapted = False
        self._adapt_energy = 0.0            # reference energy seen with a plain NLMS step
        self._mic_smooth = np.zeros(self.bins)
        self._err_smooth = np.zeros(self.bins)
        self._echo_smooth = np.zeros(self.bins)
        self.erle_db = 0.0
        self.echo_power = 0.0
        self.residual_power = 0.0
        self.mic_power = 0.0

    def reset_reference(self) -> None:
        """Forget the reference history (after a long pause) but keep the learned echo path."""
        self._ref_stft.reset()
        self._ref_hist[:] = 0

    def process(self, mic: np.ndarray, ref_hop: np.ndarray) -> np.ndarray:
        x = self._ref_stft.frame(ref_hop.reshape(-1, 1))[0].astype(np.complex64)
        self._ref_hist = np.roll(self._ref_hist, 1, axis=0)
        self._ref_hist[0] = x
        ref_energy = float(np.sum(np.abs(self._ref_hist[0]) ** 2))
        mic = mic.astype(np.complex64, copy=False)
        self.mic_power = float(np.mean(np.abs(mic) ** 2))
        if ref_energy < 1e-8 and not np.any(self._ref_hist):
            self.echo_power = 0.0
            self.residual_power = self.mic_power
            return mic
        echo = np.einsum('mlk,lk->mk', self.weights, self._ref_hist)
        err = mic - echo
        pe = np.abs(err) ** 2
        py = np.abs(echo) ** 2
        self.echo_power = float(np.mean(py))
        self.residual_power = float(np.mean(pe))
        if ref_energy > 1e-6:
            self._adapt(err, pe, py)
        # ERLE over far-end activity: how much the canceller takes out.
        a = 0.9
        self._mic_smooth = a * self._mic_smooth + (1 - a) * np.mean(np.abs(mic) ** 2, axis=0)
        self._err_smooth = a * self._err_smooth + (1 - a) * pe.mean(axis=0)
        self._echo_smooth = a * self._echo_smooth + (1 - a) * py.mean(axis=0)
        if ref_energy > 1e-6:
            self.erle_db = float(10 * np.log10((self._mic_smooth.sum() + 1e-12) / (self._err_smooth.sum() + 1e-12)))
        if not self.postfilter:
            return err
        residual_echo = self.overestimate * self.leak * self._echo_smooth
        gain = np.clip(1.0 - residual_echo / (self._err_smooth + 1e-12), self.floor, 1.0).astype(np.float32)
        return err * gain[None, :]

    def _adapt(self, err: np.ndarray, pe: np.ndarray, py: np.ndarray) -> None:
        power = np.sum(np.abs(self._ref_hist) ** 2, axis=0)
        self._ref_power = 0.7 * self._ref_power + 0.3 * power
        norm = 1.0 / (self._ref_power + 1e-6 * self.taps)
        if self.adapted:
            self._update_leak(pe.mean(axis=0), py.mean(axis=0))
            mu = np.minimum(self.mu_max, self.leak * py / (pe + 1e-10))
        else:
            # Not converged yet: a plain (cautious) NLMS step; converged once ERLE shows it.
            mu = np.full(pe.shape, 0.5 * self.mu_max)
            self._adapt_energy += 1.0
            self._update_leak(pe.mean(axis=0), py.mean(axis=0))
            if self._adapt_energy > 30 and self.erle_db > 6.0:
                self.adapted = True
        grad = (mu * err)[:, None, :] * np.conj(self._ref_hist)[None, :, :] * norm[None, None, :]
        self.weights += grad.astype(np.complex64)

    def _update_leak(self, pe: np.ndarray, py: np.ndarray) -> None:
        b = 0.05
        self._mean_e = (1 - b) * self._mean_e + b * pe
        self._mean_y = (1 - b) * self._mean_y + b * py
        de = pe - self._mean_e
        dy = py - self._mean_y
        self._r_ey = (1 - b) * self._r_ey + b * float(np.sum(de * dy))
        self._r_yy = (1 - b) * self._r_yy + b * float(np.sum(dy * dy))
        self.leak = float(np.clip(self._r_ey / (self._r_yy + 1e-12), 0.0, 1.0))
