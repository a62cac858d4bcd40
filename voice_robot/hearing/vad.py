"""Voice activity detection behind one interface: silero (default), webrtcvad (light), energy (plain).

Every backend scores chunks of ``CHUNK`` samples (32 ms at 16 kHz, silero's native size) with a
speech probability in [0, 1]. One backend object is shared; each audio stream (one per tracked
talker) gets its own ``VadStream`` with its own recurrent state, so talkers do not disturb each other.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

CHUNK = 512
SAMPLE_RATE = 16000


class VadError(RuntimeError):
    """The configured VAD backend cannot be used here."""


class VadStream(ABC):
    @abstractmethod
    def process(self, chunk: np.ndarray) -> float:
        """Speech probability of one chunk of CHUNK float32 samples at 16 kHz."""

    def reset(self) -> None:
        pass


class Vad(ABC):
    name = 'vad'

    @abstractmethod
    def stream(self) -> VadStream:
        ...

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Score a whole clip (tests, offline use): one probability per CHUNK samples."""
        s = self.stream()
        n = len(audio) // CHUNK
        return np.array([s.process(audio[i * CHUNK:(i + 1) * CHUNK]) for i in range(n)], dtype=np.float32)


def _check(chunk: np.ndarray) -> np.ndarray:
    chunk = np.asarray(chunk, np.float32).reshape(-1)
    if chunk.size != CHUNK:
        raise ValueError(f'VAD chunks are {CHUNK} samples at {SAMPLE_RATE} Hz, got {chunk.size}')
    if not np.all(np.isfinite(chunk)):
        raise ValueError('VAD chunk contains NaN or inf')
    return chunk


class SileroVad(Vad):
    """silero-vad's bundled ONNX model run by onnxruntime (one session, per-stream state)."""
    name = 'silero'

    def __init__(self):
        try:
            import onnxruntime
            from importlib import resources
            path = str(resources.files('silero_vad.data').joinpath('silero_vad.onnx'))
        except ImportError as exc:
            raise VadError(f'silero VAD needs silero-vad and onnxruntime ({exc})') from None
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(path, sess_options=opts, providers=['CPUExecutionProvider'])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def stream(self) -> VadStream:
        return _SileroStream(self)


class _SileroStream(VadStream):
    CONTEXT = 64

    def __init__(self, vad: SileroVad):
        self.vad = vad
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = np.zeros(self.CONTEXT, np.float32)

    def process(self, chunk):
        chunk = _check(chunk)
        x = np.concatenate([self.context, chunk])[None, :]
        out, self.state = self.vad.session.run(None, {'input': x, 'state': self.state, 'sr': self.vad._sr})
        self.context = chunk[-self.CONTEXT:].copy()
        return float(out.reshape(-1)[0])


class WebrtcVad(Vad):
    """Google's WebRTC VAD (webrtcvad or webrtcvad-wheels): share of 10 ms frames voiced per chunk."""
    name = 'webrtcvad'

    def __init__(self, aggressiveness: int = 2):
        try:
            import webrtcvad
        except ImportError:
            raise VadError('webrtcvad backend needs webrtcvad-wheels (or webrtcvad)') from None
        self._module = webrtcvad
        self.aggressiveness = aggressiveness

    def stream(self) -> VadStream:
        return _WebrtcStream(self._module.Vad(self.aggressiveness))


class _WebrtcStream(VadStream):
    FRAME = 160      # 10 ms at 16 kHz

    def __init__(self, vad):
        self.vad = vad
        self.rest = np.zeros(0, np.float32)

    def reset(self) -> None:
        self.rest = np.zeros(0, np.float32)

    def process(self, chunk):
        chunk = _check(chunk)
        buf = np.concatenate([self.rest, chunk])
        n = len(buf) // self.FRAME
        pcm = (np.clip(buf[:n * self.FRAME], -1, 1) * 32767).astype('<i2')
        self.rest = buf[n * self.FRAME:]
        voiced = [self.vad.is_speech(pcm[i * self.FRAME:(i + 1) * self.FRAME].tobytes(), SAMPLE_RATE) for i in range(n)]
        return float(np.mean(voiced)) if voiced else 0.0


class EnergyVad(Vad):
    """Level above a tracked noise floor, mapped to a probability (no model; for tests and tiny CPUs)."""
    name = 'energy'

    def __init__(self, margin_db: float = 9.0, slope_db: float = 3.0):
        self.margin_db = margin_db
        self.slope_db = slope_db

    def stream(self) -> VadStream:
        return _EnergyStream(self)


class _EnergyStream(VadStream):
    def __init__(self, vad: EnergyVad):
        self.vad = vad
        self.reset()

    def reset(self) -> None:
        self.floor_db: float | None = None

    def process(self, chunk):
        chunk = _check(chunk)
        # Speech band only: rumble and hiss should not open the gate.
        spec = np.abs(np.fft.rfft(chunk * np.hanning(CHUNK))) ** 2
        band = spec[int(200 * CHUNK / SAMPLE_RATE):int(4000 * CHUNK / SAMPLE_RATE)]
        level = 10 * np.log10(float(np.mean(band)) + 1e-12)
        if self.floor_db is None:
            self.floor_db = level
        elif level < self.floor_db:
            self.floor_db = 0.8 * self.floor_db + 0.2 * level
        else:
            self.floor_db += min(level - self.floor_db, 0.05)     # about 1.5 dB/s upward
        x = (level - self.floor_db - self.vad.margin_db) / self.vad.slope_db
        return float(1.0 / (1.0 + np.exp(-x)))


def make_vad(backend: str) -> Vad:
    if backend == 'silero':
        return SileroVad()
    if backend == 'webrtcvad':
        return WebrtcVad()
    if backend == 'energy':
        return EnergyVad()
    raise VadError(f'unknown VAD backend {backend!r}; known: silero, webrtcvad, energy')
