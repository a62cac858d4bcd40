"""Per-talker streams and endpointing: from a tracked direction to utterance boundaries.

Every live track gets a ``TalkerStream``: its beamformed audio (bounded), a VAD stream scoring 32 ms
chunks, and an ``Endpointer`` that turns speech probabilities into onset and end events with
hysteresis (``onset_ms`` of speech opens, ``min_silence_ms`` of silence closes, ``max_utterance_s``
forces a close). The hearing stage owns the policy (who may speak, robots, ASR); this module only
keeps the per-talker signal bookkeeping.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from voice_robot.hearing.audio import OverlapAdd
from voice_robot.hearing.doa import NoiseFloor
from voice_robot.hearing.leakage import LevelTrail
from voice_robot.hearing.vad import CHUNK, VadStream


NOISE_TARGET_DBFS = -55.0
MAX_VAD_GAIN_DB = 30.0


@dataclass
class EndpointEvent:
    kind: str            # 'onset' or 'end'
    time: float          # onset: first speech chunk start; end: first silent chunk start
    forced: bool = False


class Endpointer:
    """Speech/silence hysteresis on VAD probabilities of consecutive chunks."""

    def __init__(self, threshold: float = 0.5, onset_ms: float = 64.0, min_silence_ms: float = 250.0,
                 max_utterance_s: float = 20.0, chunk_s: float = CHUNK / 16000.0, release: float = 0.15):
        self.on = threshold
        self.off = max(0.05, threshold - release)
        self.onset_chunks = max(1, int(round(onset_ms / 1000.0 / chunk_s)))
        self.silence_chunks = max(1, int(round(min_silence_ms / 1000.0 / chunk_s)))
        self.max_utterance_s = max_utterance_s
        self.chunk_s = chunk_s
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self.run_start: float | None = None
        self.run = 0
        self.silence = 0
        self.silence_start: float | None = None
        self.onset_time: float | None = None
        self.last_speech_end = 0.0

    def push(self, stamp: float, probability: float, may_open: bool = True,
             onset_threshold: float | None = None) -> list[EndpointEvent]:
        """One chunk's speech probability; ``onset_threshold`` overrides the onset threshold for it
        (the stage lowers it where the array locates a source)."""
        events = []
        if not self.in_speech:
            if probability >= (self.on if onset_threshold is None else onset_threshold):
                if self.run == 0:
                    self.run_start = stamp
                self.run += 1
                if self.run >= self.onset_chunks and may_open:
                    self.in_speech = True
                    self.onset_time = self.run_start
                    self.silence = 0
                    self.last_speech_end = stamp + self.chunk_s
                    events.append(EndpointEvent('onset', self.run_start))
            else:
                self.run = 0
                self.run_start = None
            return events
        if probability >= self.off:
            self.silence = 0
            self.silence_start = None
            self.last_speech_end = stamp + self.chunk_s
        else:
            if self.silence == 0:
                self.silence_start = stamp
            self.silence += 1
            if self.silence >= self.silence_chunks:
                events.append(EndpointEvent('end', self.silence_start))
                self._closed()
                return events
        if self.onset_time is not None and stamp + self.chunk_s - self.onset_time >= self.max_utterance_s:
            events.append(EndpointEvent('end', stamp + self.chunk_s, forced=True))
            self._closed()
        return events

    def _closed(self) -> None:
        self.in_speech = False
        self.run = 0
        self.run_start = None
        self.silence = 0
        self.silence_start = None
        self.onset_time = None

    def force_end(self, time: float) -> EndpointEvent | None:
        if not self.in_speech:
            return None
        end = self.silence_start if self.silence_start is not None else time
        self._closed()
        return EndpointEvent('end', end, forced=True)


@dataclass
class Segment:
    """An utterance being heard on one talker stream."""
    utterance_id: str
    track_id: int
    start: float
    robot_name: str = ''                       # robot speech: never published
    azimuths: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    partials: int = 0
    early_done: bool = False
    early_count: int = 0                       # acoustic backchannel estimates made so far
    backchannel_early: float = 0.5
    cut_in_heard: bool = False                 # doubted words over our voice that open like "sorry, ..."
    next_asr_at: float = 0.0
    asr_interval: float = 0.5
    transcript: str = ''
    overlapped_with: dict = field(default_factory=dict)   # other open segment's utterance id -> seconds
    human_blocks: int = 0                      # consecutive blocks that look human during a robot segment
    foreign_since: float | None = None         # DOA has placed the sound elsewhere since then
    published: bool = False
    published_end: float = 0.0                 # audio time the last partial covered
    speech_probability_sum: float = 0.0
    speech_chunks: int = 0
    speculative_end: float | None = None       # the silence start a speculative final was decoded for
    speculative_text: str = ''
    speculative_confidence: float = 0.0
    speculating: bool = False                  # its speculative decode is running
    decoding: bool = False                     # a partial's decode is running
    bearings: list = field(default_factory=list)  # (time, azimuth) of the DOA peaks that fed the track
    pause: tuple | None = None                 # (start, end) of the latest pause inside, until judged
    voice_pauses: list = field(default_factory=list)   # longer pauses whose voices are still to compare
    peer_changes_judged: set = field(default_factory=set)   # peers' turn changes already compared here


class TalkerStream:
    """Beamformed audio, VAD and endpointing for one track."""

    def __init__(self, track_id: int, nfft: int, vad: VadStream, endpointer: Endpointer, sample_rate: int,
                 capacity_s: float):
        self.track_id = track_id
        self.sample_rate = sample_rate
        self.ola = OverlapAdd(nfft)
        self.hop = nfft // 2
        self.vad = vad
        self.endpointer = endpointer
        self.weights: np.ndarray | None = None
        self.weights_azimuth: float | None = None
        self.hops: deque = deque(maxlen=max(4, int(capacity_s * sample_rate / self.hop)))
        self._pending = np.zeros(0, np.float32)
        self._pending_stamp: float | None = None
        self.last_probability = 0.0
        self.probabilities: deque = deque(maxlen=int(4.0 * sample_rate / CHUNK))   # (chunk stamp, VAD p)
        self.segment: Segment | None = None
        self.voice_id = ''
        self.noise_floor = NoiseFloor(rise_db_per_s=2.0)
        self.trail = LevelTrail(self.hop / sample_rate, capacity=int(4.0 * sample_rate / self.hop))

    def vad_input(self, stamp: float, chunk: np.ndarray) -> np.ndarray:
        """The chunk scaled so the stream's background sits at NOISE_TARGET_DBFS.

        Silero's probabilities drop for quiet input (a talker 2 m from a small array is quiet); placing
        the background at a fixed level makes them depend on the speech-to-noise ratio, not on gain.
        """
        level = 10.0 * np.log10(float(np.mean(chunk ** 2)) + 1e-14)
        floor = self.noise_floor.update(stamp, level)
        gain_db = float(np.clip(NOISE_TARGET_DBFS - floor, 0.0, MAX_VAD_GAIN_DB))
        return chunk * np.float32(10 ** (gain_db / 20.0))

    def push_frame(self, frame_stamp: float, beam_spectrum: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Add one beamformed STFT frame; returns the completed VAD chunks (stamp, samples)."""
        samples = self.ola.frame(beam_spectrum)
        stamp = frame_stamp - self.hop / self.sample_rate          # OLA lags by one hop
        self.hops.append((stamp, samples))
        if self._pending_stamp is None:
            self._pending_stamp = stamp
        self._pending = np.concatenate([self._pending, samples])
        chunks = []
        while self._pending.size >= CHUNK:
            chunks.append((self._pending_stamp, self._pending[:CHUNK]))
            self._pending = self._pending[CHUNK:]
            self._pending_stamp += CHUNK / self.sample_rate
        return chunks

    def speech_share(self, t0: float, t1: float, threshold: float) -> float:
        """Share of the VAD chunks starting in [t0, t1) that were speech (0 when none is kept)."""
        inside = [p for stamp, p in self.probabilities if t0 <= stamp < t1]
        return sum(p >= threshold for p in inside) / len(inside) if inside else 0.0

    def audio(self, t0: float, t1: float) -> np.ndarray:
        """Beamformed samples between t0 and t1 (as far as kept)."""
        parts = []
        for stamp, samples in self.hops:
            end = stamp + samples.size / self.sample_rate
            if end <= t0 or stamp >= t1:
                continue
            a = max(0, int(round((t0 - stamp) * self.sample_rate)))
            b = min(samples.size, int(round((t1 - stamp) * self.sample_rate)))
            if b > a:
                parts.append(samples[a:b])
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def inherit_history(self, other: 'TalkerStream') -> None:
        """Keep the other stream's audio from before this stream's first hop (the two beams heard one
        talker, and an utterance that began on the other one goes on here)."""
        first = self.hops[0][0] if self.hops else float('inf')
        room = (self.hops.maxlen or 0) - len(self.hops)
        older = [h for h in other.hops if h[0] < first - 1e-6]
        for hop in reversed(older[-room:] if room > 0 else []):
            self.hops.appendleft(hop)

    @property
    def latest(self) -> float:
        if not self.hops:
            return 0.0
        stamp, samples = self.hops[-1]
        return stamp + samples.size / self.sample_rate
