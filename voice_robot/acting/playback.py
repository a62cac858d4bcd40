"""Where a robot's speech is played: nowhere (simulation), or a PortAudio output device through pyaudio.

The speech stage hands every chunk it plays to a sink (``write``) and tells it when speech is
cancelled (``flush``: drop what is queued so the robot goes quiet within a chunk). The pyaudio sink
keeps a short queue that PortAudio's callback drains in real time; device errors (no such device,
device lost, stream errors) are counted and the sink retries later: speech output never crashes on
audio hardware.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter, deque
from typing import Any

import numpy as np


# A chunk stamped within this many samples (1 ms at 16 kHz) of where the previous one ended continues it:
# a loudspeaker plays consecutive chunks back to back, while their stamps carry clock rounding.
SEAMLESS_SAMPLES = 16


def seamless_start(stamped: int, previous: tuple[int, int] | None) -> int:
    """The sample a chunk stamped to start at sample ``stamped`` plays from, given where the previous
    chunk ended as (stamped end, played end): right after it when the stamps say so within
    SEAMLESS_SAMPLES. Whatever stores what was played (the echo reference, the simulator's room) must
    place each chunk by this one rule, or the two slip apart by the stamps' rounding."""
    if previous is not None and abs(stamped - previous[0]) <= SEAMLESS_SAMPLES:
        return previous[1]
    return stamped


class PlaybackError(RuntimeError):
    """An output device cannot be used."""


class AudioSink(ABC):
    """Plays mono float32 chunks in order."""

    def __init__(self):
        self.stats: Counter[str] = Counter()

    @abstractmethod
    def write(self, samples: np.ndarray, sample_rate: int) -> None:
        """Queue one chunk (mono float32 in [-1, 1]) for playback; never blocks for long, never raises."""

    def flush(self) -> None:
        """Drop everything queued but not yet played."""

    def close(self) -> None:
        """Release the device."""


class NullSink(AudioSink):
    """Discards audio (the simulator plays 'speech/audio' instead); counts what it was given."""

    def write(self, samples, sample_rate):
        self.stats['chunks'] += 1


def _default_pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise PlaybackError('pyaudio is not installed (pip install pyaudio==0.2.14; needs portaudio19-dev)') from None
    return pyaudio


class PyAudioSink(AudioSink):
    """A PortAudio output device chosen by index, by a case-insensitive name substring, or the default.

    The device is opened on the first chunk (and again after an error, at most every
    ``retry_every`` chunks). ``max_queued`` bounds the latency between the stage and the loudspeaker,
    which is also how much audio may still play after a cancel without a flush.
    """

    def __init__(self, device: int | str | None = None, sample_rate: int = 16000, chunk_ms: float = 20.0,
                 max_queued: int = 4, retry_every: int = 50, pyaudio_module: Any | None = None):
        super().__init__()
        self.device = device
        self.sample_rate = int(sample_rate)
        self.frames_per_buffer = max(1, int(round(sample_rate * chunk_ms / 1000.0)))
        self.max_queued = max(1, int(max_queued))
        self.retry_every = max(1, int(retry_every))
        self._pa_module = pyaudio_module
        self._pa = None
        self._stream = None
        self._queue: deque[np.ndarray] = deque()
        self._pending = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._writes_since_failure = 0
        self._failed = False
        self.device_name = ''
        self.last_error = ''

    # --- device handling ---------------------------------------------------------------------
    def find_device(self, pa) -> int | None:
        if self.device is None:
            return None
        count = pa.get_device_count()
        if isinstance(self.device, int) or (isinstance(self.device, str) and self.device.strip().isdigit()):
            index = int(self.device)
            if not 0 <= index < count:
                raise PlaybackError(f'no audio device with index {index} ({count} devices)')
            if int(pa.get_device_info_by_index(index).get('maxOutputChannels', 0)) < 1:
                raise PlaybackError(f'audio device {index} has no output channels')
            return index
        wanted = str(self.device).lower()
        names = []
        for i in range(count):
            info = pa.get_device_info_by_index(i)
            names.append(f"{i}: {info.get('name')} ({info.get('maxOutputChannels')} out)")
            if wanted in str(info.get('name', '')).lower() and int(info.get('maxOutputChannels', 0)) >= 1:
                return i
        raise PlaybackError(f'no output device named like {self.device!r}; devices: {"; ".join(names) or "none"}')

    def _open(self) -> bool:
        try:
            module = self._pa_module or _default_pyaudio()
            self._pa_module = module
            if self._pa is None:
                self._pa = module.PyAudio()
            index = self.find_device(self._pa)
            info = self._pa.get_device_info_by_index(index) if index is not None else \
                self._pa.get_default_output_device_info()
            self.device_name = str(info.get('name', ''))
            self._stream = self._pa.open(format=module.paInt16, channels=1, rate=self.sample_rate, output=True,
                                         output_device_index=index, frames_per_buffer=self.frames_per_buffer,
                                         stream_callback=self._callback)
        except (OSError, PlaybackError, ValueError, IOError) as exc:
            self._fail('open failures', exc)
            return False
        self.stats['opened'] += 1
        self._failed = False
        return True

    def _fail(self, what: str, exc: Exception) -> None:
        self.stats[what] += 1
        self.last_error = str(exc)[:200]
        self._failed = True
        self._writes_since_failure = 0
        self._release()

    def _release(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except Exception:   # the device is already gone: nothing more to release
                pass
        pa, self._pa = self._pa, None
        if pa is not None:
            try:
                pa.terminate()
            except Exception:
                pass

    # --- PortAudio's thread ------------------------------------------------------------------
    def _callback(self, in_data, frame_count, time_info, status):
        module = self._pa_module
        need = frame_count
        with self._lock:
            parts = [self._pending] if self._pending.size else []
            have = self._pending.size
            while have < need and self._queue:
                chunk = self._queue.popleft()
                parts.append(chunk)
                have += chunk.size
            data = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
            self._pending = data[need:]
        out = data[:need]
        if out.size < need:
            if out.size:
                self.stats['underruns'] += 1
            out = np.concatenate([out, np.zeros(need - out.size, dtype=np.int16)])
        return out.tobytes(), module.paContinue

    # --- the sink interface ------------------------------------------------------------------
    def write(self, samples, sample_rate):
        if int(sample_rate) != self.sample_rate:
            self.stats['wrong sample rate'] += 1
            return
        if self._stream is None:
            if self._failed:
                self._writes_since_failure += 1
                if self._writes_since_failure < self.retry_every:
                    self.stats['chunks not played (no device)'] += 1
                    return
            if not self._open():
                self.stats['chunks not played (no device)'] += 1
                return
        pcm = (np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1)), -1.0, 1.0)
               * 32767.0).astype(np.int16)
        with self._lock:
            while len(self._queue) >= self.max_queued:
                self._queue.popleft()
                self.stats['chunks dropped (queue full)'] += 1
            self._queue.append(pcm)
        try:
            if not self._stream.is_active():
                self._stream.start_stream()
        except (OSError, IOError) as exc:
            self._fail('device errors', exc)
            return
        self.stats['chunks'] += 1

    def flush(self):
        with self._lock:
            self._queue.clear()
            self._pending = np.zeros(0, dtype=np.int16)

    def close(self):
        self.flush()
        self._release()


def make_sink(audio_out, sample_rate: int) -> AudioSink | None:
    """The sink a robot's ``audio_out`` (voice_robot.config.robots.AudioOutput) asks for; None for the simulator."""
    if audio_out.backend == 'pyaudio':
        return PyAudioSink(audio_out.device, sample_rate, audio_out.chunk_ms)
    if audio_out.backend == 'none':
        return NullSink()
    return None
