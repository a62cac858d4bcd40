"""Cancelling the robot's own voice from its microphones (acoustic echo cancellation).

The robot knows what it plays (``speech/audio``: mono chunks stamped with their play time). For every
microphone a partitioned-block frequency-domain adaptive filter (MDF: the multidelay filter of Soo &
Pang, as in speexdsp) learns the loudspeaker-to-microphone path and subtracts its echo estimate.
Overlap-save with a gradient constraint makes it an exact linear convolution of ``taps`` blocks of
``block`` samples (16 x 256 samples = 256 ms of echo path at 16 kHz), so echo paths with room
reverberation are cancelled by 30 dB and more once converged.

The step size follows Valin's double-talk-robust rule (J.-M. Valin, "On adjusting the learning rate in
frequency domain echo cancellation with double-talk", IEEE TASLP 2007):
mu(k) = min(mu_max, leak * |echo estimate(k)|^2 / |error(k)|^2), where ``leak`` estimates the share of
echo still in the error. A person talking over the robot inflates the error and slows learning by
itself, so double talk neither diverges the filter nor cancels the person. Before the filter has
converged once, a plain NLMS step is used. The learned path is kept between speech acts (the robot
does not move relative to its own loudspeaker).

A canceller that starts from zero under double talk (a person already talking when the robot first
speaks, which is when people talk most) takes seconds to learn: the full NLMS step learns the person
along with the path. So until it has converged once, the canceller *warm-starts*: after 0.15, 0.3, 0.6
and 1 s of played reference it solves the least-squares path of up to ``warm_start_blocks`` partitions
(no more taps than an eighth of the samples) over everything heard so far (a Toeplitz system per
microphone: the person is uncorrelated with the reference, so least squares averages them out where a
gradient step follows them), and adapts from there with a smaller step. On rendered first acts with a
person talking throughout, this lifts ERLE from about 3 to 14 dB over the act's second half-second
(``voice-robot bench hearing``).

``ReferenceBuffer`` stores the played audio by absolute time so any microphone hop can fetch the
reference that was playing during it. ``residual_ratio_db`` follows what the canceller leaves of the
echo when nobody else talks (a minimum tracker), which tells the hearing stage whether a block is
the robot's own residue or a person.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_toeplitz

from voice_robot.acting.playback import seamless_start
from voice_robot.hearing.doa import NoiseFloor

WARM_START_AT_S = (0.15, 0.3, 0.6, 1.0)   # played reference (s) at which the path is re-fitted
WARM_START_MAX_S = 3.0      # audio kept for the fit (bounded, also over pauses before the path is learned)
WARM_SAMPLES_PER_TAP = 8    # played samples per fitted tap (least squares over fewer follows noise)
WARM_STEP = 0.3             # step (share of mu_max) between a warm start and convergence
LEAK_MARGIN = 16.0          # the step stays full until the error exceeds 16x the expected residual
REGULARISATION = 0.05       # step normaliser floor, relative to the mean reference power over bins


class ReferenceBuffer:
    """Played mono audio indexed by absolute sample number; bounded to ``capacity_s``."""

    def __init__(self, sample_rate: int, capacity_s: float = 4.0):
        self.sample_rate = sample_rate
        self.capacity = int(capacity_s * sample_rate)
        self._start = 0                     # absolute sample index of _data[0]
        self._data = np.zeros(0, np.float32)
        self._continues: tuple[int, int] | None = None   # (stamped, stored) sample where the latest chunk ended
        self.last_end: float = -np.inf      # time the latest played sample ends
        self.last_active: float = -np.inf   # end time of the latest chunk with energy

    def push(self, stamp: float, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        # Placed as the loudspeaker plays it: a chunk stored at its rounded stamp half a sample off the
        # grid would shift the reference one sample against the echo, and the canceller would lose
        # 20 dB or more until it had re-learned the path.
        stamped = int(round(stamp * self.sample_rate))
        begin = seamless_start(stamped, self._continues)
        self._continues = (stamped + samples.size, begin + samples.size)
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


def band_mask(bins: int, sample_rate: int, band_hz) -> np.ndarray:
    """Which of an rfft's ``bins`` lie within ``band_hz`` (low, high)."""
    freqs = np.arange(bins) * sample_rate / (2 * (bins - 1))
    return (freqs >= band_hz[0]) & (freqs <= band_hz[1])


class EchoCanceller:
    """Per-microphone MDF echo canceller with a double-talk-robust step size.

    ``process(mic_block, ref_block)`` takes ``block`` samples of every microphone (block, channels) and
    of the reference played during them; it returns the echo-cancelled block (block, channels). After
    each call ``echo_power`` (echo estimate), ``residual_power`` (what is left) and ``mic_power`` are
    mean powers over microphones; ``echo_estimate`` holds the echo estimate of microphone 0.
    """

    def __init__(self, channels: int, block: int = 256, taps: int = 16, mu_max: float = 0.5,
                 sample_rate: int = 16000, band_hz: tuple[float, float] = (300.0, 3500.0),
                 warm_start_blocks: int = 4):
        self.channels = channels
        self.sample_rate = sample_rate
        self.block = block
        self.nfft = 2 * block
        self.bins = block + 1
        self.taps = taps
        self.mu_max = mu_max
        self._band = band_mask(self.bins, sample_rate, band_hz)
        self.weights = np.zeros((channels, taps, self.bins), np.complex128)
        self._ref_spectra = np.zeros((taps, self.bins), np.complex128)   # newest first
        self._ref_prev = np.zeros(block)
        self._ref_power = np.full(self.bins, 1e-8)
        self._constrain_next = 0
        # Valin leak estimate: recursive covariances of error and echo-estimate power spectra.
        self._mean_e = np.zeros(self.bins)
        self._mean_y = np.zeros(self.bins)
        self._r_ey = 0.0
        self._r_yy = 1e-12
        self.leak = 1.0
        self.adapted = False
        self._adapt_blocks = 0
        self._mic_smooth = 0.0
        self._err_smooth = 0.0
        self.erle_db = 0.0
        self.echo_power = 0.0
        self.residual_power = 0.0
        self.mic_power = 0.0
        self.echo_band_power = 0.0          # speech band (band_hz) powers of the last block
        self.residual_band_power = 0.0
        self.echo_estimate = np.zeros(block, np.float32)
        self.residual_ratio_db: float | None = None      # min-tracked residual / echo estimate
        # Per-bin powers of the last block, mean over microphones (None before any reference).
        self.error_bin_power: np.ndarray | None = None
        self.echo_bin_power: np.ndarray | None = None
        self.warm_start_blocks = min(warm_start_blocks, taps)
        self._warm_at = list(WARM_START_AT_S) if self.warm_start_blocks > 0 else []
        self._warm_mic: list[np.ndarray] = []
        self._warm_ref: list[np.ndarray] = []
        self._warm_active_blocks = 0
        self.warm_starts = 0

    def reset_reference(self) -> None:
        """Forget the reference history (after a long pause) but keep the learned echo path."""
        self._ref_spectra[:] = 0
        self._ref_prev[:] = 0
        self._warm_mic.clear()            # the fit needs one contiguous stretch of audio
        self._warm_ref.clear()

    def _warm_start(self, mic: np.ndarray, ref: np.ndarray) -> None:
        """Keep the opening audio; at each WARM_START_AT_S of played reference, fit the path to it."""
        self._warm_mic.append(np.asarray(mic, np.float64))
        self._warm_ref.append(ref)
        keep = int(WARM_START_MAX_S * self.sample_rate / self.block)
        del self._warm_mic[:-keep], self._warm_ref[:-keep]
        self._warm_active_blocks += float(np.mean(ref ** 2)) > 1e-9
        if self._warm_active_blocks * self.block < self._warm_at[0] * self.sample_rate:
            return
        del self._warm_at[0]
        # Samples per fitted tap bound the fit's noise (a person, the room): a short opening fits a
        # short path, a longer one the whole warm-start length.
        blocks = min(self.warm_start_blocks, max(1, self._warm_active_blocks // WARM_SAMPLES_PER_TAP))
        self._fit_path(np.concatenate(self._warm_ref), np.concatenate(self._warm_mic), blocks)
        if not self._warm_at:
            self._warm_mic.clear()
            self._warm_ref.clear()

    def _fit_path(self, x: np.ndarray, d: np.ndarray, blocks: int) -> None:
        """Least-squares filter of ``blocks`` partitions from reference x to microphones d."""
        taps = blocks * self.block
        if x.size < 2 * taps or float(np.dot(x, x)) <= 1e-9:
            return
        nfft = 1 << int(np.ceil(np.log2(x.size + taps)))
        xs = np.fft.rfft(x, nfft)
        autocorr = np.fft.irfft(np.abs(xs) ** 2, nfft)[:taps]
        autocorr[0] = autocorr[0] * (1.0 + 1e-3) + 1e-9       # ridge: the voice leaves bins empty
        cross = np.fft.irfft(np.conj(xs)[:, None] * np.fft.rfft(d, nfft, axis=0), nfft, axis=0)[:taps]
        paths = np.zeros((self.channels, self.taps, self.nfft))
        for m in range(self.channels):
            h = solve_toeplitz(autocorr, cross[:, m])
            paths[m, :blocks, :self.block] = h.reshape(blocks, self.block)
        self.weights = np.fft.rfft(paths, axis=2)
        self.warm_starts += 1

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        b = self.block
        ref = np.asarray(ref, np.float64).reshape(-1)
        if mic.shape != (b, self.channels) or ref.size != b:
            raise ValueError(f'echo canceller takes ({b}, {self.channels}) mic and {b} reference samples, '
                             f'got {mic.shape} and {ref.size}')
        if not self.adapted and self._warm_at:
            self._warm_start(mic, ref)
        x = np.fft.rfft(np.concatenate([self._ref_prev, ref]))
        self._ref_prev = ref
        self._ref_spectra = np.roll(self._ref_spectra, 1, axis=0)
        self._ref_spectra[0] = x
        d = mic.astype(np.float64)
        self.mic_power = float(np.mean(d ** 2))
        if not np.any(self._ref_spectra):
            self.echo_power = self.echo_band_power = 0.0
            self.residual_power = self.mic_power
            self.residual_band_power = 0.0
            self.echo_estimate[:] = 0
            self.error_bin_power = self.echo_bin_power = None
            return mic
        y_spec = np.einsum('mpk,pk->mk', self.weights, self._ref_spectra)
        y = np.fft.irfft(y_spec, n=self.nfft, axis=1)[:, b:]          # (channels, block): overlap-save
        e = d.T - y
        self.echo_power = float(np.mean(y ** 2))
        self.residual_power = float(np.mean(e ** 2))
        self.echo_estimate = y[0].astype(np.float32)
        ref_energy = float(np.mean(ref ** 2))
        b2 = self.block
        err_spec = np.fft.rfft(np.concatenate([np.zeros((self.channels, b2)), e], axis=1), axis=1)
        echo_spec = np.fft.rfft(np.concatenate([np.zeros((self.channels, b2)), y], axis=1), axis=1)
        pe = np.abs(err_spec) ** 2
        py = np.abs(echo_spec) ** 2
        self.residual_band_power = float(np.mean(pe[:, self._band])) / self.nfft
        self.echo_band_power = float(np.mean(py[:, self._band])) / self.nfft
        self.error_bin_power = pe.mean(axis=0) / self.nfft
        self.echo_bin_power = py.mean(axis=0) / self.nfft
        if ref_energy > 1e-9:
            self._adapt(err_spec, pe, py)
            a = 0.9
            self._mic_smooth = a * self._mic_smooth + (1 - a) * self.mic_power
            self._err_smooth = a * self._err_smooth + (1 - a) * self.residual_power
            self.erle_db = float(10 * np.log10((self._mic_smooth + 1e-14) / (self._err_smooth + 1e-14)))
            self._track_residual_ratio()
        return e.T.astype(np.float32)

    def _adapt(self, err_spec: np.ndarray, pe: np.ndarray, py: np.ndarray) -> None:
        b = self.block
        # NLMS: normalise by the energy of the whole regressor (every partition of this bin).
        # Bins where the voice has almost no energy get a regularised step (relative to the mean), or
        # noise there would be "explained" by huge filter gains.
        power = np.sum(np.abs(self._ref_spectra) ** 2, axis=0)
        self._ref_power = np.maximum(power, 0.7 * self._ref_power + 0.3 * power)
        norm = 1.0 / (self._ref_power + REGULARISATION * float(np.mean(self._ref_power)) + 1e-9)
        self._update_leak(pe.mean(axis=0), py.mean(axis=0))
        # Valin's rule, mu = leak * |echo estimate|^2 / |error|^2, with the leak taken from what the
        # canceller leaves when only the robot talks (residual_ratio_db: a minimum tracker that
        # near-end speech cannot pull down; Valin's covariance estimate runs low on speech) and a
        # margin: without near-end speech the step stays at mu_max, with it, it shrinks as the
        # person's share of the error grows.
        leak = 1.0 if self.residual_ratio_db is None else min(1.0, 10 ** (self.residual_ratio_db / 10.0))
        # Per microphone over the whole band: a per-bin rule would starve bins not yet converged.
        ratio = py.sum(axis=1, keepdims=True) / (pe.sum(axis=1, keepdims=True) + 1e-12)
        mu = np.broadcast_to(self.mu_max * np.minimum(1.0, LEAK_MARGIN * leak * ratio), pe.shape)
        if not self.adapted:
            # No echo estimate to steer by yet: a full step, or a smaller one from a warm start.
            mu = np.full(pe.shape, self.mu_max * (WARM_STEP if self.warm_starts else 1.0))
            self._adapt_blocks += 1
            if self._adapt_blocks > 40 and self.erle_db > 10.0:
                self.adapted = True
        grad = (mu * err_spec)[:, None, :] * np.conj(self._ref_spectra)[None, :, :] * norm[None, None, :]
        self.weights += grad
        # Gradient constraint: keep every partition a causal block-length filter so the
        # convolution stays linear (all partitions at once: one batched FFT pair).
        w = np.fft.irfft(self.weights, n=self.nfft, axis=2)
        w[:, :, b:] = 0.0
        self.weights = np.fft.rfft(w, axis=2)

    def _update_leak(self, pe: np.ndarray, py: np.ndarray) -> None:
        a = 0.05
        self._mean_e = (1 - a) * self._mean_e + a * pe
        self._mean_y = (1 - a) * self._mean_y + a * py
        de = pe - self._mean_e
        dy = py - self._mean_y
        self._r_ey = (1 - a) * self._r_ey + a * float(np.sum(de * dy))
        self._r_yy = (1 - a) * self._r_yy + a * float(np.sum(dy * dy))
        self.leak = float(np.clip(self._r_ey / (self._r_yy + 1e-20), 0.0, 1.0))

    def _track_residual_ratio(self) -> None:
        if self.echo_band_power < 1e-10:
            return
        ratio = 10 * np.log10((self.residual_band_power + 1e-14) / (self.echo_band_power + 1e-14))
        if self.residual_ratio_db is None or ratio < self.residual_ratio_db:
            self.residual_ratio_db = float(ratio) if self.residual_ratio_db is None else \
                0.8 * self.residual_ratio_db + 0.2 * float(ratio)
        else:
            # Rise slowly (about 1.5 dB/s at 16 ms blocks): a person talking only raises the ratio.
            self.residual_ratio_db += min(ratio - self.residual_ratio_db, 0.025)


SPEECH_BAND_HZ = (300.0, 4000.0)


def near_end_detector(bins: int, sample_rate: int, hop_s: float, margin_db: float, decay_db_per_s: float,
                      share: float, low_band_hz=None, low_share: float | None = None) -> 'NearEndDetector':
    """A detector on the speech band (300-4000 Hz) that also counts ``low_band_hz`` alone at ``low_share``."""
    low = low_band_hz is not None and bool(low_share)
    return NearEndDetector(bins, band_mask(bins, sample_rate, SPEECH_BAND_HZ), hop_s, margin_db=margin_db,
                           decay_db_per_s=decay_db_per_s,
                           low_band=band_mask(bins, sample_rate, low_band_hz) if low else None,
                           low_scale=share / low_share if low else 0.0)


class NearEndDetector:
    """Per time-frequency bin: does someone else stand out from what the canceller leaves of the robot?

    Speech is sparse in time and frequency: while the robot talks, a person barging in dominates the
    bins where the robot's voice is momentarily weak, long before their level exceeds the robot's
    broadband. Per bin k the residual echo expected from the robot alone is ``leak[k] * echo[k]`` (the
    canceller's echo estimate times a learned leak: a low quantile of error/echo while the robot
    talks, frozen while a person is detected), held up by a reverberant decay (the room rings on
    after each syllable while the estimate drops at once) and never below the background. A bin is
    near-end when the error exceeds that by ``margin_db``; ``share`` is the fraction of such bins
    in the speech band, the per-hop evidence of a person.

    Some voices put little energy above 300 Hz (flite's, many deep voices): while our voice masks
    their upper band they stand out almost only in 100-1000 Hz. ``low_band`` with ``low_scale`` also
    counts that band alone: its share times ``low_scale`` (the speech band's needed share over the low
    band's) is evidence on the speech band's scale; ``share`` is the larger of the two.

    ``gain`` is a residual-echo suppression post-filter for the same bins (a Wiener-like
    over-subtraction with a floor): applied to every microphone alike it keeps the spatial cues.
    """

    def __init__(self, bins: int, band: np.ndarray, hop_s: float, margin_db: float = 10.0,
                 decay_db_per_s: float = 80.0, quantile: float = 0.3, step_db: float = 0.5,
                 suppression: float = 2.0, gain_floor_db: float = -18.0,
                 low_band: np.ndarray | None = None, low_scale: float = 0.0):
        self.bins = bins
        self.band = np.asarray(band, bool)
        self.low_band = np.zeros(bins, bool) if low_band is None else np.asarray(low_band, bool)
        self.low_scale = low_scale if self.low_band.any() else 0.0
        self.margin = 10 ** (margin_db / 10.0)
        self.decay = 10 ** (-decay_db_per_s * hop_s / 10.0)
        self.quantile = quantile
        self.step_db = step_db
        self.suppression = suppression
        self.gain_floor = 10 ** (gain_floor_db / 10.0)
        self.leak_db = np.zeros(bins)                 # 0 dB: nothing learned, the residue may equal the echo
        self.learned = np.zeros(bins, int)
        self.noise = None
        self._err = np.zeros(bins)
        self._echo = np.zeros(bins)
        self.expected = np.zeros(bins)
        self.share = 0.0
        self.gain = np.ones(bins)

    def reset_decay(self) -> None:
        self.expected[:] = 0.0

    def update(self, error: np.ndarray, echo: np.ndarray, robot_playing: bool) -> float:
        """One hop of per-bin error and echo-estimate powers; returns the near-end share."""
        a = 0.5
        self._err = a * self._err + (1 - a) * error
        self._echo = a * self._echo + (1 - a) * echo
        if self.noise is None:
            self.noise = self._err.copy()
        else:
            # Background per bin: falls at once, rises about 3 dB/s (speech and echo are not the floor).
            self.noise = np.where(self._err < self.noise, 0.7 * self.noise + 0.3 * self._err, self.noise * 1.012)
        leak = 10 ** (self.leak_db / 10.0)
        self.expected = np.maximum(leak * self._echo, self.expected * self.decay)
        floor = np.maximum(self.expected, self.noise)
        near = self._err > self.margin * floor
        self.share = float((near & self.band).sum()) / max(1, int(self.band.sum()))
        if self.low_scale > 0:
            low = float((near & self.low_band).sum()) / int(self.low_band.sum())
            self.share = max(self.share, min(1.0, low * self.low_scale))
        if robot_playing and self.share < 0.1:
            # Learn the leak only where the robot's echo is well above the background.
            audible = self._echo > 4.0 * self.noise
            ratio_db = 10 * np.log10((self._err + 1e-20) / (self._echo + 1e-20))
            below = ratio_db < self.leak_db
            step = np.where(below, -self.step_db * (1 - self.quantile), self.step_db * self.quantile)
            first = audible & (self.learned == 0)
            self.leak_db = np.where(first, ratio_db, np.where(audible, self.leak_db + step, self.leak_db))
            self.leak_db = np.clip(self.leak_db, -40.0, 10.0)
            self.learned += audible
        residual = self.suppression * self.expected
        self.gain = np.clip(1.0 - residual / (self._err + 1e-20), self.gain_floor, 1.0)
        return self.share


def expected_residue_db(echo_db: float, ratio_db: float | None, previous_db: float, decay_db: float) -> float:
    """What a canceller should leave of a robot's voice alone in a block: its echo estimate times the
    learned residual ratio, held up by the previous block's residue decayed as a room rings down (the
    room rings on after each word while the echo estimate drops at once)."""
    return max(echo_db + (ratio_db if ratio_db is not None else 0.0), previous_db - decay_db)


class PeerVoiceCanceller:
    """Another robot's voice cancelled from our microphones, its played audio as the reference.

    The same adaptive filter as for our own voice (``EchoCanceller``; the path across the room is kept
    over all the peer's acts) plus the same evidence of a person: per bin (``NearEndDetector``) and
    broadband. ``residue_only`` then tells, per DOA block, whether what the filter leaves is only the
    peer's residue. Without that test the residue, which the room smears away from the peer's bearing,
    opens utterances that direction tests no longer recognise as the peer's.
    """

    def __init__(self, channels: int, block: int, taps: int, step: float, sample_rate: int,
                 band_hz: tuple[float, float], margin_db: float, near_margin_db: float, near_share: float,
                 near_hops: int, decay_db_per_s: float, reverb_decay_db_per_s: float,
                 low_band_hz=None, low_share: float | None = None):
        self.canceller = EchoCanceller(channels, block, taps, step, sample_rate, band_hz)
        self.near_end = near_end_detector(block + 1, sample_rate, block / sample_rate, near_margin_db,
                                          decay_db_per_s, near_share, low_band_hz, low_share)
        self.margin_db = margin_db
        self.near_share = near_share
        self.near_hops = near_hops
        self.reverb_decay_db_per_s = reverb_decay_db_per_s
        self.running = False
        self._echo = self._error = 0.0
        self._hops = self._near = 0
        self._expected_db = -200.0
        self._background = NoiseFloor(rise_db_per_s=3.0)   # of what is left (people and the peer are not it)
        self._elapsed_s = 0.0

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        if not self.running:
            self.canceller.reset_reference()      # stale blocks of the peer's last act
            self.running = True
        out = self.canceller.process(mic, ref)
        c = self.canceller
        if not c.adapted:
            # A half-learned filter smears the peer's voice over the room, where its bearing no longer
            # recognises it: until the path is learned, the peer is heard as it is (and known by direction).
            out = mic
        self._echo += c.echo_band_power
        self._error += c.residual_band_power
        self._hops += 1
        if c.error_bin_power is not None:
            share = self.near_end.update(c.error_bin_power, c.echo_bin_power, bool(np.any(ref)))
            self._near += share >= self.near_share
        return out

    def residue_only(self, block_s: float) -> bool:
        """Was everything the filter left since the last call only the peer's residue? (Resets the block.)"""
        hops, echo, error, near = self._hops, self._echo, self._error, self._near
        self._hops = self._near = 0
        self._echo = self._error = 0.0
        c = self.canceller
        if hops == 0 or not c.adapted or c.residual_ratio_db is None:
            self._expected_db = -200.0
            return False          # not learned yet: the peer's voice is still recognised by direction
        echo_db = 10 * np.log10(echo / hops + 1e-14)
        error_db = 10 * np.log10(error / hops + 1e-14)
        expected = expected_residue_db(echo_db, c.residual_ratio_db, self._expected_db,
                                       self.reverb_decay_db_per_s * block_s)
        self._expected_db = expected
        self._elapsed_s += block_s
        background = self._background.update(self._elapsed_s, error_db)
        person = error_db >= max(expected, background) + self.margin_db or near >= self.near_hops
        return not person
