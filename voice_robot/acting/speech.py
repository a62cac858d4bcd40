"""Speech output: turns SpeechCommands into played audio, one chunk per timer tick, cancellable at once.

A speech act (SAY) is spoken sentence by sentence: each sentence is synthesised in a background thread
as soon as it arrives (SAY text, later APPENDs), so playback starts after the first sentence and never
waits for the whole reply. A timer every ``chunk_ms`` plays the next chunk: it is published on
'speech/audio' stamped with its play time (the simulator renders it; it is also the echo reference of
hearing) and handed to the robot's sink (a loudspeaker through pyaudio). CANCEL stops before the next
chunk; DUCK/UNDUCK change the volume; 'speech/state' reports every change and, while speaking, the
progress about every ``progress_period_s``.

Acts queue behind the one playing; a REPLY replaces queued FILLER/HOLD acts that have not started. An
act ends when its audio has been played and its final sentence was announced (``final``), or when it
waited ``max_gap_s`` for a next sentence. TTS failures are counted and skip the sentence; an act that
spoke nothing still reports its end.

Time: in the eval every handler's compute time is charged to simulated time, so how a tick waits for a
sentence still being synthesised decides what that synthesis costs in simulated time (``synthesis_wait``):

* ``'tick'`` (the default, the eval): wait at most one chunk of wall time per tick, then let the tick
  end. Synthesis not hidden behind playback costs about as much simulated time as real time, and a
  CANCEL arriving meanwhile is handled before the next chunk is played.
* ``'full'``: wait until the sentence is ready. Deterministic with ``charge_compute=False`` (tests).
* ``'none'``: never wait (a ROS node: its timer keeps running and the robot is silent until the audio is
  ready).
"""
from __future__ import annotations

import itertools
import math
import re
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from voice_robot import messages as m
from voice_robot.acting import tts
from voice_robot.acting.config import SpeechConfig
from voice_robot.acting.playback import AudioSink
from voice_robot.config.robots import RobotSpec
from voice_robot.pipeline import Stage

# Speaking rate used to estimate the length of sentences not yet synthesised (progress only).
SECONDS_PER_CHAR = 0.065
SYNTHESIS_WAITS = ('tick', 'full', 'none')
_CLAUSE = re.compile(r'(?<=[,;:])\s+')
_SENTENCE = re.compile(r'(?<=[.!?])\s+(?=[A-Z0-9"\'(])')


def segments(text: str, max_chars: int = 120) -> list[str]:
    """Sentences of ``text``; a sentence longer than ``max_chars`` is cut at clause boundaries."""
    text = ' '.join(str(text).split())
    out = []
    for sentence in _SENTENCE.split(text):
        if len(sentence) <= max_chars:
            if sentence:
                out.append(sentence)
            continue
        current = ''
        for clause in _CLAUSE.split(sentence):
            if current and len(current) + 1 + len(clause) > max_chars:
                out.append(current)
                current = clause
            else:
                current = f'{current} {clause}' if current else clause
        if current:
            out.append(current)
    return out


@dataclass
class Segment:
    text: str
    future: Future | None = None
    audio: np.ndarray | None = None
    voice: str = ''
    submitted: float = 0.0          # stage time the synthesis was asked for


@dataclass
class Act:
    speech_id: str
    kind: m.SpeechKind
    voice: str
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    pending: deque = field(default_factory=deque)      # Segments not yet playing
    current: Segment | None = None
    position: int = 0                                  # samples of ``current`` already played
    spoken: list[str] = field(default_factory=list)    # segments fully played
    final: bool = False
    started: float | None = None                       # play time of the first chunk
    idle_since: float | None = None                    # when it last ran out of audio to play
    played_samples: int = 0
    last_progress: float = -math.inf                  # when progress was last published
    progress: float = 0.0                             # never goes back, even when more text arrives
    segments_total: int = 0

    def spoken_text(self) -> str:
        """The words played so far; the current segment in proportion to the audio played."""
        words = list(self.spoken)
        if self.current is not None and self.current.audio is not None and self.current.audio.size and self.position:
            share = min(1.0, self.position / self.current.audio.size)
            current_words = self.current.text.split()
            n = len(current_words) if share >= 0.999 else int(round(share * len(current_words)))
            if n:
                words.append(' '.join(current_words[:n]))
        return ' '.join(words)


class SpeechOutputStage(Stage):
    name = 'speech'
    outputs = ('speech/audio', 'speech/state')

    def __init__(self, robot: RobotSpec, config: SpeechConfig, sink: AudioSink | None = None,
                 synthesis_wait: str = 'tick'):
        super().__init__(robot.name)
        self.spec = robot
        self.config = config
        self.sink = sink
        if synthesis_wait not in SYNTHESIS_WAITS:
            raise ValueError(f'synthesis_wait must be one of {", ".join(SYNTHESIS_WAITS)}, got {synthesis_wait!r}')
        self.synthesis_wait = synthesis_wait
        self._wait_budget = 0.0
        self.sample_rate = int(config.sample_rate)
        self.chunk_samples = max(1, int(round(self.sample_rate * config.chunk_ms / 1000.0)))
        self.voice = robot.voice or config.default_voice
        self._queue: deque[Act] = deque()
        self._act: Act | None = None
        self._known: dict[str, Act] = {}
        self._ended: deque[str] = deque(maxlen=128)       # recently finished ids (late APPENDs are expected)
        self._ids = itertools.count(1)
        self._sequence = itertools.count()
        self._gain = 1.0
        self._ducked = False
        self._next_stamp: float | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f'tts-{robot.name}')
        self._configure_cloud_tts()
        if config.warm_up:
            self._warm_up()

    # --- set-up ------------------------------------------------------------------------------
    def _configure_cloud_tts(self) -> None:
        voices = {self.voice, self.config.fallback_voice or ''}
        if any(v.startswith('openai:') for v in voices):
            tts.register_engine(tts.OpenAiEngine(model=self.config.openai_model, api_key_env=self.config.api_key_env,
                                                 base_url=self.config.base_url))

    def _warm_up(self) -> None:
        """Load the voice now (piper loads a model on first use), so the first reply starts promptly."""
        if self.voice.startswith('openai:'):
            return            # a network voice has nothing to load and may cost money
        try:
            tts.check_voice(self.voice)
            tts.synthesize(self.voice, 'Hello.', self.sample_rate, self.config.level_dbfs,
                           cache_dir=self.config.cache_dir)
        except (tts.TtsError, OSError, ValueError, RuntimeError) as exc:
            self.stats['tts errors'] += 1
            self._logger.warning(f'speech[{self.robot}]: voice {self.voice!r} does not work here: {exc}')

    def inputs(self):
        return {'speech/command': self.on_command}

    def timers(self):
        return [(self.config.chunk_ms / 1000.0, self.tick)]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.sink is not None:
            try:
                self.sink.close()
            except Exception as exc:   # a broken device must not stop shutdown
                self.stats['playback errors'] += 1
                self._logger.warning(f'speech[{self.robot}]: closing the sink failed: {exc!r}')

    def diagnostics(self):
        values = super().diagnostics()
        if self.sink is not None:
            values.update({f'sink {k}': str(v) for k, v in sorted(self.sink.stats.items())})
        return values

    @property
    def speaking(self) -> bool:
        return self._act is not None and self._act.started is not None

    # --- commands ----------------------------------------------------------------------------
    def on_command(self, cmd) -> None:
        if not isinstance(cmd, m.SpeechCommand):
            return self.drop('bad command', type(cmd).__name__)
        try:
            action = m.SpeechAction(cmd.action)
            kind = m.SpeechKind(cmd.kind)
        except ValueError:
            return self.drop('bad command', f'action {cmd.action!r} kind {cmd.kind!r}')
        if not isinstance(cmd.text, str) or not isinstance(cmd.speech_id, str):
            return self.drop('bad command', 'text and speech_id must be strings')
        if action == m.SpeechAction.SAY:
            self._say(cmd, kind)
        elif action == m.SpeechAction.APPEND:
            self._append(cmd)
        elif action == m.SpeechAction.CANCEL:
            self._cancel(cmd.speech_id)
        else:
            self._duck(action == m.SpeechAction.DUCK)

    def _say(self, cmd: m.SpeechCommand, kind: m.SpeechKind) -> None:
        speech_id = cmd.speech_id or f'{self.robot}-say-{next(self._ids)}'
        if speech_id in self._known:
            return self.drop('duplicate speech_id', speech_id)
        if not _finite(cmd.reply_to_start, cmd.reply_to_end):
            return self.drop('bad command', 'reply_to times must be finite')
        voice = cmd.voice or self.voice
        act = Act(speech_id, kind, voice, cmd.in_reply_to, float(cmd.reply_to_start), float(cmd.reply_to_end))
        if kind == m.SpeechKind.REPLY:
            self._replace_unstarted_fillers()
        if self._act is not None and len(self._queue) >= self.config.max_queued_acts:
            return self.drop('speech queue full', speech_id)
        self._known[speech_id] = act
        self._add_text(act, cmd.text)
        act.final = bool(cmd.final)
        if self._act is None:
            self._act = act
        else:
            self._queue.append(act)
        self.stats['acts'] += 1

    def _replace_unstarted_fillers(self) -> None:
        for act in [a for a in self._queue if a.kind != m.SpeechKind.REPLY]:
            self._queue.remove(act)
            self._forget(act, 'fillers replaced')
        act = self._act
        if act is not None and act.kind != m.SpeechKind.REPLY and act.started is None:
            self._forget(act, 'fillers replaced')
            self._act = None
            self._start_next()

    def _append(self, cmd: m.SpeechCommand) -> None:
        act = self._known.get(cmd.speech_id)
        if act is None:
            reason = 'append to ended act' if cmd.speech_id in self._ended else 'append to unknown act'
            return self.drop(reason, cmd.speech_id)
        if act.final and cmd.text.strip():
            return self.drop('append after final', cmd.speech_id)
        self._add_text(act, cmd.text)
        act.final = act.final or bool(cmd.final)

    def _add_text(self, act: Act, text: str) -> None:
        for piece in segments(text, self.config.max_segment_chars):
            if act.segments_total >= self.config.max_sentences_per_act:
                self.drop('too many sentences', act.speech_id)
                return
            segment = Segment(piece, voice=act.voice, submitted=self.now())
            segment.future = self._submit(piece, act.voice)
            act.pending.append(segment)
            act.segments_total += 1

    def _submit(self, text: str, voice: str) -> Future:
        return self._executor.submit(self._synthesize, text, voice)

    def _synthesize(self, text: str, voice: str) -> np.ndarray:
        """Runs in the TTS thread: synthesise, falling back to another voice once if configured."""
        try:
            # No cache unless configured: a robot synthesises its replies fresh, so the time it takes is
            # part of every measured latency (the simulator caches the people's voices instead).
            return tts.synthesize(voice, text, self.sample_rate, self.config.level_dbfs,
                                  cache=self.config.cache_dir is not None, cache_dir=self.config.cache_dir)
        except Exception:
            fallback = self.config.fallback_voice
            if fallback and fallback != voice:
                self.stats['tts fallbacks'] += 1
                return tts.synthesize(fallback, text, self.sample_rate, self.config.level_dbfs,
                                      cache=self.config.cache_dir is not None, cache_dir=self.config.cache_dir)
            raise

    def _cancel(self, speech_id: str) -> None:
        act = self._act
        if speech_id == '':
            # "Stop talking": whatever plays and whatever waits behind it.
            targets = ([act] if act is not None else []) + list(self._queue)
        else:
            target = self._known.get(speech_id)
            if target is None:
                return self.drop('cancel of unknown act', speech_id)
            targets = [target]
        for target in targets:
            if target is self._act:
                self._act = None
                self._next_stamp = None
                if self.sink is not None and target.started is not None:
                    self._sink_call('flush')
            elif target in self._queue:
                self._queue.remove(target)
            self._finish(target, cancelled=True)
            self.stats['cancelled'] += 1

    def _duck(self, duck: bool) -> None:
        if duck == self._ducked:
            return
        self._ducked = duck
        act = self._act
        if act is not None and act.started is not None:
            self._publish_state(act, speaking=True)

    # --- playback ----------------------------------------------------------------------------
    def tick(self) -> None:
        self._wait_budget = self.config.chunk_ms / 1000.0     # seconds this tick may block on TTS
        act = self._act or self._start_next()
        while act is not None:
            samples = self._take(act, self.chunk_samples)
            now = self.now()
            if samples is not None:
                self._play(act, samples, now)
                return
            if act.pending or (act.current is not None and act.position < act.current.audio.size):
                return        # the next sentence is still being synthesised (non-blocking mode)
            if act.idle_since is None:
                act.idle_since = now
            if act.final or now - act.idle_since >= self.config.max_gap_s:
                if not act.final:
                    self.stats['acts ended waiting for text'] += 1
                self._act = None
                self._next_stamp = None
                self._finish(act, cancelled=False)
                act = self._start_next()
                continue
            if act.started is not None and now - act.last_progress >= self.config.progress_period_s - 1e-9:
                self._publish_state(act, speaking=True)   # still holding the turn while waiting
            return

    def _start_next(self) -> Act | None:
        if self._act is None and self._queue:
            self._act = self._queue.popleft()
        return self._act

    def _take(self, act: Act, n: int) -> np.ndarray | None:
        """Up to ``n`` samples of the act, crossing sentence boundaries when the next one is ready."""
        parts, have = [], 0
        while have < n:
            if act.current is None or act.position >= act.current.audio.size:
                if act.current is not None:
                    act.spoken.append(act.current.text)
                    act.current = None
                if not act.pending:
                    break
                if not self._ready(act.pending[0]):
                    break
                segment = act.pending.popleft()
                if segment.audio is None or segment.audio.size == 0:
                    continue
                act.current, act.position = segment, 0
            take = min(n - have, act.current.audio.size - act.position)
            parts.append(act.current.audio[act.position:act.position + take])
            act.position += take
            have += take
        if have == 0:
            return None
        samples = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if have < n:
            samples = np.concatenate([samples, np.zeros(n - have, dtype=np.float32)])
        return samples

    def _ready(self, segment: Segment) -> bool:
        """Whether the segment's audio (or its failure) is known; collects it."""
        future = segment.future
        if future is None:
            return True
        timeout = self.config.synthesis_timeout_s
        if not future.done():
            if self.synthesis_wait != 'full':
                if self.now() - segment.submitted > timeout:
                    return self._give_up(segment)
                if self.synthesis_wait == 'none' or self._wait_budget <= 0:
                    return False
                budget, self._wait_budget = self._wait_budget, 0.0     # one wait per tick
                try:
                    future.result(timeout=budget)
                except FutureTimeout:
                    pass
                except Exception:   # a failure is collected on the next tick
                    pass
                # Even when the audio is ready now, play it on the next tick: commands that arrived while
                # this tick waited (a CANCEL) must be handled before anything more is played.
                return False
        try:
            audio = future.result(timeout=timeout)
            segment.audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            if not np.all(np.isfinite(segment.audio)):
                segment.audio = np.nan_to_num(segment.audio, nan=0.0, posinf=0.0, neginf=0.0)
                self.stats['tts non-finite samples'] += 1
        except FutureTimeout:
            return self._give_up(segment)
        except CancelledError:
            segment.audio = None
        except Exception as exc:   # any engine failure: speak nothing for this sentence, keep going
            segment.audio = None
            self.stats['tts errors'] += 1
            self._logger.warning(f'speech[{self.robot}]: TTS failed for voice {segment.voice!r}: {exc}')
        segment.future = None
        return True

    def _give_up(self, segment: Segment) -> bool:
        segment.future.cancel()
        segment.future, segment.audio = None, None
        self.stats['tts timeouts'] += 1
        self._logger.warning(f'speech[{self.robot}]: synthesis of a sentence took longer than '
                             f'{self.config.synthesis_timeout_s} s; skipped')
        return True

    def _play(self, act: Act, samples: np.ndarray, now: float) -> None:
        # Continuous playback keeps consecutive stamps exactly one chunk apart; after a pause (or a late
        # tick) the next chunk plays now, never in the past, on the sample grid: then every later stamp
        # rounds to the sample it plays at, wherever it is stored (the echo reference, the simulator).
        on_grid = round(now * self.sample_rate) / self.sample_rate
        stamp = on_grid if self._next_stamp is None or self._next_stamp < now - 1e-9 else self._next_stamp
        if self._next_stamp is not None and self._next_stamp > now + self.config.chunk_ms / 1000.0:
            stamp = on_grid       # the clock jumped back (sim restart): do not drift ahead of it
        target = 10 ** (self.config.duck_gain_db / 20.0) if self._ducked else 1.0
        if target != self._gain:
            # Ramp over the chunk: an instant gain step clicks.
            samples = samples * np.linspace(self._gain, target, samples.size, dtype=np.float32)
            self._gain = target
        elif target != 1.0:
            samples = samples * np.float32(target)
        samples = np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
        chunk = m.AudioChunk(stamp=stamp, sample_rate=self.sample_rate, samples=samples.reshape(-1, 1),
                             source=self.robot, sequence=next(self._sequence))
        self._next_stamp = stamp + samples.size / self.sample_rate
        act.idle_since = None
        act.played_samples += samples.size
        first = act.started is None
        if first:
            act.started = stamp
        self.publish('speech/audio', chunk)
        if self.sink is not None:
            self._sink_call('write', samples, self.sample_rate)
        if first or now - act.last_progress >= self.config.progress_period_s - 1e-9:
            self._publish_state(act, speaking=True)

    def _sink_call(self, method: str, *args) -> None:
        try:
            getattr(self.sink, method)(*args)
        except Exception as exc:   # audio hardware must never stop the robot from working
            self.stats['playback errors'] += 1
            self._logger.warning(f'speech[{self.robot}]: playback {method} failed: {exc!r}')

    # --- states ------------------------------------------------------------------------------
    def _finish(self, act: Act, cancelled: bool) -> None:
        for segment in act.pending:
            if segment.future is not None:
                segment.future.cancel()
        if not cancelled and act.current is not None:
            act.spoken.append(act.current.text)
            act.current = None
        if act.started is None and not cancelled:
            self.stats['acts that spoke nothing'] += 1
        self._publish_state(act, speaking=False, cancelled=cancelled)
        self._forget(act, None)
        if self._act is None and not self._queue:
            self._ducked = False       # a new act starts at full volume
            self._gain = 1.0

    def _forget(self, act: Act, count: str | None) -> None:
        for segment in act.pending:
            if segment.future is not None:
                segment.future.cancel()
        self._known.pop(act.speech_id, None)
        self._ended.append(act.speech_id)
        if count:
            self.stats[count] += 1

    def _progress(self, act: Act) -> float:
        known = act.played_samples / self.sample_rate
        remaining = 0.0
        if act.current is not None and act.current.audio is not None:
            remaining += (act.current.audio.size - act.position) / self.sample_rate
        for segment in act.pending:
            if segment.audio is not None:
                remaining += segment.audio.size / self.sample_rate
            else:
                remaining += len(segment.text) * SECONDS_PER_CHAR
        total = known + remaining
        act.progress = max(act.progress, 1.0 if total <= 0 else min(1.0, known / total))
        return act.progress

    def _publish_state(self, act: Act, speaking: bool, cancelled: bool = False) -> None:
        now = self.now()
        act.last_progress = now
        progress = self._progress(act) if speaking else (1.0 if not cancelled else self._progress(act))
        self.publish('speech/state', m.SpeechState(
            robot=self.robot, speaking=speaking, speech_id=act.speech_id, kind=act.kind, text=act.spoken_text(),
            progress=float(progress), started=act.started if act.started is not None else 0.0,
            in_reply_to=act.in_reply_to, reply_to_start=act.reply_to_start, reply_to_end=act.reply_to_end,
            ducked=self._ducked if speaking else False, cancelled=cancelled, stamp=now))


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False
