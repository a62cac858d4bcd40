"""Microphone-array capture sources behind one small interface.

A source turns "what time is it now" into the frames that are due: ``read(now)`` returns every
complete frame whose end is not later than ``now`` on the caller's clock. Pacing lives here (not in
the device) because replayed files and ALSA ``file`` PCMs deliver as fast as they are read.

* ``PyAudioSource``: a PortAudio input device by index or name substring; survives input overruns
  (counted) and device loss (closes, counts, reopens every ``reconnect_s``; the timeline jumps over
  the outage so consumers see a gap rather than made-up audio).
* ``WavFileSource``: replays a WAV file (optionally looping), mono files are refused unless the
  array has one channel.
* ``SimulatorSource``: the closed-loop simulator's frames for one robot.

Frames are float32 (samples, channels) in [-1, 1], stamped with the time of their first sample.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from voice_robot.messages import AudioChunk
from voice_robot.pipeline import Stage


class CaptureError(RuntimeError):
    """The configured input cannot be opened or read (named device, file or format problem)."""


class AudioSource(ABC):
    """Frames from a microphone array; ``read(now)`` never blocks for long."""

    def __init__(self, sample_rate: int, channels: int, frame_size: int, name: str = ''):
        if sample_rate <= 0 or channels <= 0 or frame_size <= 0:
            raise CaptureError(f'bad capture format: {sample_rate} Hz, {channels} channels, {frame_size} frames')
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.frame_size = int(frame_size)
        self.name = name
        self.stats: Counter[str] = Counter()
        self._sequence = 0

    @abstractmethod
    def open(self, now: float) -> None:
        """Start capturing; the stream's timeline starts at ``now``."""

    @abstractmethod
    def read(self, now: float) -> list[AudioChunk]:
        """Every complete frame due by ``now`` (possibly none)."""

    def close(self) -> None:
        """Release the device or file."""

    @property
    def exhausted(self) -> bool:
        """True when a finite source has delivered everything it has."""
        return False

    def _chunk(self, stamp: float, samples: np.ndarray) -> AudioChunk:
        self._sequence += 1
        self.stats['frames'] += 1
        return AudioChunk(stamp=stamp, sample_rate=self.sample_rate, samples=samples, source=self.name,
                          sequence=self._sequence)


class PacedTimeline:
    """How many frames are due: frames are emitted no faster than the clock, anchored at a start time."""

    def __init__(self, sample_rate: int, frame_size: int, max_burst: int = 50):
        self.sample_rate = sample_rate
        self.frame_size = frame_size
        self.max_burst = max_burst        # after a stall, catch up at most this many frames at once
        self.start: float | None = None
        self.emitted = 0

    def anchor(self, now: float) -> None:
        self.start = now
        self.emitted = 0

    def due(self, now: float) -> int:
        if self.start is None:
            return 0
        total = int(math.floor((now - self.start) * self.sample_rate / self.frame_size + 1e-9))
        return max(0, total - self.emitted)

    def stamp_of_next(self) -> float:
        return self.start + self.emitted * self.frame_size / self.sample_rate

    def skip_to(self, now: float) -> int:
        """Jump over frames that were not delivered (device outage, stall); returns how many."""
        missed = self.due(now)
        self.emitted += missed
        return missed


class WavFileSource(AudioSource):
    """Replays a multichannel WAV file, paced by the caller's clock (or as fast as asked)."""

    def __init__(self, path: str | Path, channels: int, frame_size: int, sample_rate: int | None = None,
                 loop: bool = False, realtime: bool = True, name: str = ''):
        import soundfile
        path = Path(path)
        try:
            info = soundfile.info(str(path))
        except (RuntimeError, OSError) as exc:
            raise CaptureError(f'cannot read WAV file {path}: {exc}') from None
        if info.channels != channels:
            raise CaptureError(f'{path} has {info.channels} channels, the array has {channels}')
        rate = sample_rate or info.samplerate
        super().__init__(rate, channels, frame_size, name)
        audio, file_rate = soundfile.read(str(path), dtype='float32', always_2d=True)
        if file_rate != rate:
            from voice_robot.hearing.audio import resample
            audio = resample(audio, file_rate, rate)
        self.path = path
        self.audio = audio
        self.loop = loop
        self.realtime = realtime
        self._position = 0
        self._timeline = PacedTimeline(rate, frame_size)

    def open(self, now: float) -> None:
        self._position = 0
        self._timeline.anchor(now)

    def read(self, now: float) -> list[AudioChunk]:
        if self._timeline.start is None:
            raise CaptureError('read before open')
        n = self._timeline.due(now) if self.realtime else self._timeline.max_burst
        n = min(n, self._timeline.max_burst)
        out = []
        for _ in range(n):
            if self.exhausted:
                break
            end = self._position + self.frame_size
            block = self.audio[self._position:end]
            if block.shape[0] < self.frame_size:
                if not self.loop:
                    block = np.concatenate([block, np.zeros((self.frame_size - block.shape[0], self.channels),
                                                            np.float32)])
                    self._position = self.audio.shape[0]
                else:
                    rest = self.frame_size - block.shape[0]
                    block = np.concatenate([block, self.audio[:rest]])
                    self._position = rest
            else:
                self._position = end if end < self.audio.shape[0] or not self.loop else 0
            out.append(self._chunk(self._timeline.stamp_of_next(), np.ascontiguousarray(block)))
            self._timeline.emitted += 1
        return out

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._position >= self.audio.shape[0]


def _default_pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise CaptureError('pyaudio is not installed (pip install pyaudio==0.2.14; needs portaudio19-dev)') from None
    return pyaudio


class PyAudioSource(AudioSource):
    """A PortAudio input device; reconnects after device loss and counts what it could not deliver.

    ``device`` is an index, a case-insensitive substring of the device name, or None for the default
    input. Reads only what is available (``get_read_available``) and never more than is due by the
    clock, so unpaced devices (ALSA ``file`` PCMs) are paced too.
    """

    def __init__(self, device: int | str | None, channels: int, sample_rate: int, frame_size: int,
                 reconnect_s: float = 1.0, name: str = '', pyaudio_module: Any | None = None):
        super().__init__(sample_rate, channels, frame_size, name)
        self.device = device
        self.reconnect_s = reconnect_s
        self._pa_module = pyaudio_module or _default_pyaudio()
        self._pa = None
        self._stream = None
        self._next_attempt = -math.inf
        self._timeline = PacedTimeline(self.sample_rate, frame_size)
        self.device_name = ''

    # --- device handling ------------------------------------------------------------------------
    def _find_device(self, pa) -> int | None:
        count = pa.get_device_count()
        if self.device is None:
            return None
        if isinstance(self.device, int) or (isinstance(self.device, str) and self.device.isdigit()):
            index = int(self.device)
            if not 0 <= index < count:
                raise CaptureError(f'no audio device with index {index} ({count} devices)')
            return index
        wanted = str(self.device).lower()
        names = []
        for i in range(count):
            info = pa.get_device_info_by_index(i)
            names.append(f"{i}: {info.get('name')} ({info.get('maxInputChannels')} in)")
            if wanted in str(info.get('name', '')).lower() and int(info.get('maxInputChannels', 0)) >= self.channels:
                return i
        raise CaptureError(f'no input device named like {self.device!r} with {self.channels} channels; '
                           f'devices: {"; ".join(names) or "none"}')

    def _connect(self, now: float) -> bool:
        pa_mod = self._pa_module
        try:
            if self._pa is None:
                self._pa = pa_mod.PyAudio()
            index = self._find_device(self._pa)
            info = self._pa.get_device_info_by_index(index) if index is not None else \
                self._pa.get_default_input_device_info()
            self.device_name = str(info.get('name', ''))
            self._stream = self._pa.open(format=pa_mod.paInt16, channels=self.channels, rate=self.sample_rate,
                                         input=True, input_device_index=index, frames_per_buffer=self.frame_size)
        except (OSError, CaptureError, ValueError) as exc:
            self.stats['open failures'] += 1
            self.last_error = str(exc)
            self._release()
            self._next_attempt = now + self.reconnect_s
            return False
        if self._timeline.start is None:
            self._timeline.anchor(now)
        else:
            self.stats['frames lost to outages'] += self._timeline.skip_to(now)
            self.stats['reconnects'] += 1
        return True

    def _release(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop_stream()
                self._stream.close()
            except Exception:   # the device is already gone; nothing else to release
                pass
            self._stream = None
        if self._pa is not None:
            try:
                self._pa.terminate()
            except Exception:
                pass
            self._pa = None

    def open(self, now: float) -> None:
        """Open the device; a device that cannot be found is an error at start-up, later it is retried."""
        if not self._connect(now):
            raise CaptureError(f'cannot open audio input {self.device!r}: {getattr(self, "last_error", "")}')

    def read(self, now: float) -> list[AudioChunk]:
        if self._stream is None:
            if now < self._next_attempt or not self._connect(now):
                return []
        due = min(self._timeline.due(now), self._timeline.max_burst)
        out = []
        try:
            for _ in range(due):
                # Only what the device already has: a read never waits for audio in a timer callback.
                if self._stream.get_read_available() < self.frame_size:
                    break
                try:
                    data = self._stream.read(self.frame_size, exception_on_overflow=True)
                except OSError as exc:
                    if getattr(exc, 'errno', None) == getattr(self._pa_module, 'paInputOverflowed', -9981) \
                            or 'overflow' in str(exc).lower():
                        # An overrun lost samples inside the driver: keep the stream, count it.
                        self.stats['overruns'] += 1
                        data = self._stream.read(self.frame_size, exception_on_overflow=False)
                    else:
                        raise
                pcm = np.frombuffer(data, dtype='<i2')
                if pcm.size != self.frame_size * self.channels:
                    self.stats['short reads'] += 1
                    continue
                samples = (pcm.astype(np.float32) / 32768.0).reshape(self.frame_size, self.channels)
                out.append(self._chunk(self._timeline.stamp_of_next(), samples))
                self._timeline.emitted += 1
        except OSError as exc:
            self.stats['device lost'] += 1
            self.last_error = str(exc)
            self._release()
            self._next_attempt = now + self.reconnect_s
        # A device that delivers less than the clock says is late; once it is a second behind,
        # the missing audio is gone for good (overrun in the driver): jump so stamps stay true.
        if self._stream is not None and self._timeline.due(now) * self.frame_size > self.sample_rate:
            self.stats['frames lost to overruns'] += self._timeline.skip_to(now)
        return out

    def close(self) -> None:
        self._release()


class SimulatorSource(AudioSource):
    """Frames the closed-loop simulator renders for one robot.

    ``step`` is a callable returning the next frames for this robot (e.g. a bound method of the
    simulator or a per-robot queue it fills); frames are passed through, re-stamped only if missing.
    """

    def __init__(self, step: Callable[[], list[AudioChunk] | AudioChunk | None], channels: int, sample_rate: int,
                 frame_size: int, name: str = ''):
        super().__init__(sample_rate, channels, frame_size, name)
        self._step = step

    def open(self, now: float) -> None:
        pass

    def read(self, now: float) -> list[AudioChunk]:
        got = self._step()
        if got is None:
            return []
        frames = got if isinstance(got, list) else [got]
        out = []
        for f in frames:
            if f.samples.ndim != 2 or f.samples.shape[1] != self.channels:
                self.stats['bad simulator frames'] += 1
                continue
            out.append(f)
            self.stats['frames'] += 1
        return out


def make_source(audio_in, channels: int, name: str = '', simulator_step=None) -> AudioSource:
    """The source a robot's ``audio_in`` (voice_robot.config.robots.AudioInput) asks for."""
    frame_size = int(round(audio_in.sample_rate * audio_in.frame_ms / 1000.0))
    if audio_in.backend == 'pyaudio':
        return PyAudioSource(audio_in.device, channels, audio_in.sample_rate, frame_size, name=name)
    if audio_in.backend == 'file':
        if not audio_in.path:
            raise CaptureError("audio_in.backend 'file' needs audio_in.path (a WAV file)")
        return WavFileSource(audio_in.path, channels, frame_size, sample_rate=audio_in.sample_rate,
                             realtime=audio_in.realtime, name=name)
    if audio_in.backend == 'sim':
        if simulator_step is None:
            raise CaptureError("audio_in.backend 'sim': the simulator publishes audio/raw itself; "
                               'run the simulator node instead of audio_capture')
        return SimulatorSource(simulator_step, channels, audio_in.sample_rate, frame_size, name=name)
    raise CaptureError(f'unknown audio_in.backend {audio_in.backend!r}; known: pyaudio, file, sim')


class CaptureStage(Stage):
    """Capture as a stage: a timer asks the source for the frames due and publishes them on 'audio/raw'.

    The source opens on the first tick (so its timeline starts at the stage clock), failures to open a
    device at start-up are retried by the source, and what the source counts (overruns, device loss,
    reconnects) shows in the diagnostics.
    """
    name = 'audio_capture'
    outputs = ('audio/raw',)

    def __init__(self, source: AudioSource, robot: str = '', period_s: float | None = None):
        super().__init__(robot)
        self.source = source
        self.period_s = period_s or source.frame_size / source.sample_rate
        self._opened = False

    def timers(self):
        return [(self.period_s, self.tick)]

    def tick(self) -> None:
        now = self.now()
        if not self._opened:
            try:
                self.source.open(now)
            except CaptureError as exc:
                self.drop('capture open failed', str(exc))
                return
            self._opened = True
        for chunk in self.source.read(now):
            chunk.source = self.robot or chunk.source
            self.publish('audio/raw', chunk)
        if self.source.exhausted:
            self.stats['source exhausted'] = 1

    def diagnostics(self) -> dict[str, str]:
        out = super().diagnostics()
        out.update({f'source {k}': str(v) for k, v in sorted(self.source.stats.items())})
        return out

    def close(self) -> None:
        self.source.close()
