"""Audio plumbing shared by the hearing pipeline: input checks, re-blocking and a streaming STFT.

The hearing stage receives frames of any size (20 ms from a device, 64 ms from a file) and works on
fixed STFT hops. ``FrameAssembler`` turns the incoming chunks into a gap-free stream of hops and says
what was wrong with a chunk it refuses (wrong shape, rate, non-finite samples, out-of-order or
duplicated stamps); ``StreamingStft`` / ``OverlapAdd`` are a perfect-reconstruction STFT pair
(sqrt-Hann windows, 50 % overlap) used for echo cancellation, DOA and beamforming.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from voice_robot.messages import AudioChunk


class BadAudio(ValueError):
    """A chunk cannot be used; ``reason`` is a short counter name, the message says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f'{reason}: {detail}')
        self.reason = reason
        self.detail = detail


def check_chunk(chunk: AudioChunk, channels: int, sample_rate: int, clip_fraction: float = 0.05) -> np.ndarray:
    """Validate a microphone chunk and return its samples as float32 (samples, channels).

    Raises BadAudio for anything the pipeline cannot use. A few clipped samples are fine; a frame in
    which more than ``clip_fraction`` of the samples sit at full scale is refused (its phase and
    spectrum are no longer the talker's).
    """
    if not isinstance(chunk, AudioChunk):
        raise BadAudio('not audio', f'expected AudioChunk, got {type(chunk).__name__}')
    if not isinstance(chunk.stamp, (int, float)) or not np.isfinite(chunk.stamp):
        raise BadAudio('bad stamp', f'stamp {chunk.stamp!r} is not a finite number')
    samples = chunk.samples
    if not isinstance(samples, np.ndarray) or samples.ndim != 2:
        shape = getattr(samples, 'shape', None)
        raise BadAudio('bad shape', f'samples must be a 2-D array (samples, channels), got shape {shape}')
    if samples.shape[1] != channels:
        raise BadAudio('wrong channel count', f'{samples.shape[1]} channels, the array has {channels}')
    if int(chunk.sample_rate) != int(sample_rate):
        raise BadAudio('wrong sample rate', f'{chunk.sample_rate} Hz, configured {sample_rate} Hz')
    if samples.shape[0] == 0:
        raise BadAudio('empty frame', 'no samples')
    if not np.issubdtype(samples.dtype, np.floating):
        raise BadAudio('bad dtype', f'samples must be float in [-1, 1], got {samples.dtype}')
    samples = samples.astype(np.float32, copy=False)
    if not np.isfinite(samples).all():
        raise BadAudio('non-finite samples', f'{int((~np.isfinite(samples)).sum())} NaN/inf samples')
    clipped = float(np.mean(np.abs(samples) >= 0.999))
    if clipped > clip_fraction:
        raise BadAudio('clipped frame', f'{clipped:.0%} of the samples at full scale')
    return samples


@dataclass
class Hop:
    """One hop of audio: the time of its first sample and (hop, channels) samples."""
    stamp: float
    samples: np.ndarray


class FrameAssembler:
    """Re-blocks validated chunks into hops of ``hop`` samples on one continuous timeline.

    The stream's timeline is anchored at the first chunk; later chunks are expected to continue it.
    A chunk that starts before the end of what was already received (by more than ``tolerance_s``) is
    a duplicate or out of order and is refused; a gap up to ``max_gap_s`` is filled with silence so
    the STFT stays aligned; a longer gap restarts the stream (``restarted`` is set so the caller can
    close what was open).
    """

    def __init__(self, hop: int, sample_rate: int, channels: int, max_gap_s: float = 0.5,
                 tolerance_s: float | None = None):
        self.hop = hop
        self.sample_rate = sample_rate
        self.channels = channels
        self.max_gap_s = max_gap_s
        # Device clocks jitter by a fraction of a frame; a quarter hop is well below a real gap.
        self.tolerance_s = tolerance_s if tolerance_s is not None else 0.25 * hop / sample_rate
        self.restarted = False
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros((0, self.channels), np.float32)
        self._pending_stamp: float | None = None
        self._expected: float | None = None        # stamp the next chunk should carry
        self._last_sequence: int | None = None
        self.gap_filled_s = 0.0

    @property
    def expected_stamp(self) -> float | None:
        return self._expected

    def push(self, stamp: float, samples: np.ndarray, sequence: int | None = None) -> list[Hop]:
        """Add a chunk; return the complete hops it finishes. Raises BadAudio for out-of-order input."""
        self.restarted = False
        if self._expected is not None:
            offset = stamp - self._expected
            if offset < -self.tolerance_s:
                dup = (sequence is not None and self._last_sequence is not None and sequence <= self._last_sequence)
                same_span = abs(offset + samples.shape[0] / self.sample_rate) < self.tolerance_s
                reason = 'duplicate frame' if dup or same_span else 'out-of-order frame'
                raise BadAudio(reason, f'stamp {stamp:.3f} s is {-offset * 1000:.0f} ms before the end of the '
                                       f'previous frame ({self._expected:.3f} s)')
            if offset > self.max_gap_s:
                self.reset()
                self.restarted = True
            elif offset > self.tolerance_s:
                gap = int(round(offset * self.sample_rate))
                self.gap_filled_s += gap / self.sample_rate
                self._append(np.zeros((gap, self.channels), np.float32), None)
        if self._pending_stamp is None:
            self._pending_stamp = float(stamp)
        self._append(samples, stamp)
        self._expected = (self._pending_stamp + self._pending.shape[0] / self.sample_rate)
        if sequence is not None:
            self._last_sequence = sequence
        return self._drain()

    def _append(self, samples: np.ndarray, stamp: float | None) -> None:
        if self._pending_stamp is None:
            self._pending_stamp = float(stamp) if stamp is not None else 0.0
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])

    def _drain(self) -> list[Hop]:
        hops = []
        n = self._pending.shape[0] // self.hop
        for i in range(n):
            block = self._pending[i * self.hop:(i + 1) * self.hop]
            hops.append(Hop(self._pending_stamp + i * self.hop / self.sample_rate, block))
        if n:
            self._pending = self._pending[n * self.hop:]
            self._pending_stamp += n * self.hop / self.sample_rate
            # Keep the timeline anchored to the first chunk (no drift from float sums).
            self._expected = self._pending_stamp + self._pending.shape[0] / self.sample_rate
        return hops


def sqrt_hann(n: int) -> np.ndarray:
    """Periodic sqrt-Hann: analysis * synthesis = Hann, which sums to 1 at 50 % overlap."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


class StreamingStft:
    """STFT of a multichannel stream, one hop (nfft/2 samples) in, one frame (channels, bins) out."""

    def __init__(self, nfft: int, channels: int):
        if nfft % 2:
            raise ValueError(f'nfft must be even, got {nfft}')
        self.nfft = nfft
        self.hop = nfft // 2
        self.window = sqrt_hann(nfft)
        self._previous = np.zeros((self.hop, channels), np.float32)

    def reset(self) -> None:
        self._previous[:] = 0.0

    def frame(self, hop_samples: np.ndarray) -> np.ndarray:
        """hop_samples (hop, channels) -> spectrum (channels, nfft/2+1) of the last nfft samples."""
        buf = np.concatenate([self._previous, hop_samples], axis=0)
        self._previous = hop_samples.copy()
        return np.fft.rfft(buf.T * self.window, axis=1)


class OverlapAdd:
    """Inverse of StreamingStft for one or more channels: one spectrum in, one hop of samples out.

    The output of frame t is complete for the first half of that frame, i.e. it lags the input by one
    hop; ``latency`` says so.
    """

    def __init__(self, nfft: int):
        self.nfft = nfft
        self.hop = nfft // 2
        self.window = sqrt_hann(nfft)
        self._tail: np.ndarray | None = None

    @property
    def latency(self) -> int:
        return self.hop

    def frame(self, spectrum: np.ndarray) -> np.ndarray:
        """spectrum (..., bins) -> (..., hop) samples."""
        x = np.fft.irfft(spectrum, n=self.nfft, axis=-1).astype(np.float32) * self.window
        if self._tail is None or self._tail.shape != x[..., self.hop:].shape:
            self._tail = np.zeros_like(x[..., self.hop:])
        out = self._tail + x[..., :self.hop]
        self._tail = x[..., self.hop:].copy()
        return out


class RingBuffer:
    """The last ``capacity`` items with their times; bounded by construction."""

    def __init__(self, capacity: int):
        self.items: deque = deque(maxlen=capacity)

    def append(self, stamp: float, item) -> None:
        self.items.append((stamp, item))

    def since(self, t: float) -> list:
        return [(s, x) for s, x in self.items if s >= t]

    def clear(self) -> None:
        self.items.clear()

    def __len__(self) -> int:
        return len(self.items)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (any number of channels)."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(audio, sr_out // g, sr_in // g, axis=0).astype(np.float32)


def db(power: float | np.ndarray, floor: float = 1e-12):
    return 10.0 * np.log10(np.maximum(power, floor))
