"""The closed-loop simulator: plays a scenario's timeline in simulated time, frame by frame.

``Simulator.step()`` produces one frame of microphone-array audio for every robot plus the face
observations due in that frame. The system under test answers through ``add_robot_audio`` (its
speech as played) and ``on_speech_state``; robot speech is rendered through the room into every
array, and events that wait for a robot (``after: {robot_speech_of: ID}``) start when that speech is
actually heard. ``Simulator.truth`` is the ground truth for scoring; none of it reaches the system.

Rendering: human utterances are convolved whole with their room responses when they start and added
to a buffer of future audio; robot chunks are convolved as they arrive (overlap-add of the response
tail); point noise sources are rendered a block ahead; diffuse noise, microphone self-noise and
full-scale clipping are applied per frame. Which robot speech responds to which utterance is decided
by ``voice_robot.eval.matching``, the same rule the evaluator uses.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from voice_robot.acting.playback import seamless_start
from voice_robot.eval.matching import RESPONSE_WINDOW_S, attribute_speech, is_response
from voice_robot.messages import AudioChunk, FaceFrame, SpeechKind, SpeechState, Utterance
from voice_robot.sim.acoustics import (MIC_SELF_NOISE_DBFS, BlockConvolver, DiffuseNoise, FutureBuffer, PointNoise,
                                       array_power_gain, load_clip, mono_stream, normalise_speech, render_through,
                                       room_impulse_responses, substream)
from voice_robot.sim.camera import (FaceCamera, HeadMotion, LipActivity, default_facing, head_direction,
                                    robot_head_height)
from voice_robot.sim.scenario import AfterEvent, AfterRobotSpeech, ResponderOf, Scenario, UtteranceEvent, load_scenario
from voice_robot.sim.truth import (EventTruth, GroundTruth, HeadTargetTruth, RobotSpeechTruth, UtteranceTruth)

DEFAULT_TAIL_S = 6.0         # default duration: end of the last event + this
FILLER_GRACE_S = 3.0         # after a filler ends, how long the answer may take to follow it
STALL_S = 2.0                # a speech act without audio for this long has ended, whatever its state says
ORPHAN_GAP_S = 0.3           # audio without a speech state: a gap this long splits speech acts
STATE_LATE_S = 0.3           # a speech state may arrive this long after its first audio chunk
NOISE_CALIBRATION_S = 4.0
MAX_AHEAD_S = 60.0           # robot audio stamped further ahead than this is garbage, not a plan


class SimulationError(RuntimeError):
    """The scenario cannot be simulated (a voice that does not work here, an unreadable clip)."""


@dataclass
class StepOutput:
    audio: dict[str, AudioChunk]          # per robot: (samples, channels) float32, stamp = frame start
    faces: list[FaceFrame]                # camera frames stamped inside this frame
    started: list[str]                    # ids of the events that started in this frame


@dataclass
class _Event:
    index: int
    id: str
    spec: object
    start: Optional[float] = None         # wanted start (s), known once its reference resolves
    end: Optional[float] = None
    started: bool = False
    fallback: bool = False                # started because the robot speech it waited for never came
    dry: Optional[np.ndarray] = None

    @property
    def is_utterance(self) -> bool:
        return isinstance(self.spec, UtteranceEvent)


@dataclass
class _SpeechAct:
    robot: str
    speech_id: str
    kind: SpeechKind = SpeechKind.REPLY
    text: str = ''
    in_reply_to: str = ''
    reply_to_start: float = 0.0
    reply_to_end: float = 0.0
    cancelled: bool = False
    has_state: bool = False
    state_ended: bool = False
    state_end_stamp: Optional[float] = None
    first_sample: Optional[int] = None
    end_sample: Optional[int] = None
    start: float = math.inf               # seconds, as rendered (matching reads these)
    end: float = math.inf
    attributed_to: Optional[str] = None
    chunks: int = 0
    created_sample: int = 0


class Simulator:
    """Closed-loop simulation of one scenario; see the module docstring."""

    def __init__(self, scenario: Scenario | str | Path, sample_rate: int = 16000, frame_s: float = 0.02):
        if isinstance(scenario, (str, Path)):
            scenario = load_scenario(scenario)
        if not isinstance(sample_rate, int) or sample_rate < 8000:
            raise ValueError(f'sample_rate must be an integer >= 8000 Hz (got {sample_rate!r})')
        if not (isinstance(frame_s, (int, float)) and math.isfinite(frame_s) and frame_s > 0):
            raise ValueError(f'frame_s must be a positive number of seconds (got {frame_s!r})')
        self.scenario = scenario
        self.sample_rate = sample_rate
        self.frame_samples = int(round(frame_s * sample_rate))
        if self.frame_samples < 1:
            raise ValueError(f'frame_s {frame_s} is shorter than one sample')
        self.stats: Counter[str] = Counter()
        self._sample = 0
        self._frame_index = 0
        seed = scenario.seed
        self._robots = {r.name: r for r in scenario.robots}
        self._humans = {h.name: h for h in scenario.humans}

        self.rirs = room_impulse_responses(scenario, sample_rate)
        self.layout = self.rirs.layout
        self._slices = {name: self.layout.channel_slice(name) for name in self._robots}
        self._buffer = FutureBuffer(self.layout.channels)
        self._convolvers = {name: BlockConvolver(self.rirs.rir(f'robot:{name}')) for name in self._robots}

        self._events = [_Event(i, e.id or f'#{i}', e) for i, e in enumerate(scenario.events)]
        self._by_id = {e.id: e for e in self._events}
        for ev in self._events:
            if ev.spec.t is not None:
                ev.start = float(ev.spec.t)
            if ev.is_utterance:
                ev.dry = self._dry_audio(ev)

        self.speech_power = self._speech_reference_power()
        self._diffuse: dict[str, DiffuseNoise] = {}
        noise = scenario.room.noise
        if noise is not None:
            rms = math.sqrt(self.speech_power / 10 ** (noise.snr_db / 10))
            for robot in scenario.robots:
                self._diffuse[robot.name] = DiffuseNoise(robot.mic_positions_map(), noise.kind, rms, sample_rate,
                                                         substream(seed, 'diffuse', robot.name),
                                                         avoid_voices=self._participant_voices())
        self._point = [self._point_noise(i, n) for i, n in enumerate(scenario.room.noise_sources)]
        self._self_noise = substream(seed, 'self-noise')
        self._self_noise_rms = 10 ** (MIC_SELF_NOISE_DBFS / 20)

        self._truth = GroundTruth(scenario=scenario.name, seed=seed, sample_rate=sample_rate,
                                  speech_level_dbfs=10 * math.log10(max(self.speech_power, 1e-20)))
        self._heads: dict[str, HeadMotion] = {}
        for h in scenario.humans:
            if h.facing is None:
                yaw, pitch = default_facing(scenario, h)
                target = 'default'
            else:
                yaw, pitch = head_direction(scenario, h, h.facing, default_facing(scenario, h)[0])
                target = h.facing
            self._heads[h.name] = HeadMotion(yaw, pitch)
            self._truth.head_targets.append(HeadTargetTruth(0.0, h.name, target, yaw, pitch, 0.0, 'facing'))
        self._lips = LipActivity()
        self._cameras = {r.name: FaceCamera(scenario, r, self._heads, self._lips, substream(seed, 'camera', r.name))
                         for r in scenario.robots if r.camera is not None}
        self._fill_geometry_truth()

        self._acts: dict[str, list[_SpeechAct]] = {name: [] for name in self._robots}
        self._act_index: dict[tuple[str, str], _SpeechAct] = {}
        self._current: dict[str, Optional[_SpeechAct]] = {name: None for name in self._robots}
        self._orphan: dict[str, Optional[_SpeechAct]] = {name: None for name in self._robots}
        self._last_chunk: dict[str, tuple[int, int]] = {}      # robot -> (stamped end, rendered end) samples
        self._attribution_dirty = False

    # --- public API ----------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Simulated time: the end of the last frame produced."""
        return self._sample / self.sample_rate

    @property
    def duration(self) -> Optional[float]:
        """Scenario length; without ``duration_s`` it is known once every event has started."""
        if self.scenario.duration_s is not None:
            return float(self.scenario.duration_s)
        if not all(ev.started for ev in self._events):
            return None
        return max([ev.end for ev in self._events], default=0.0) + DEFAULT_TAIL_S

    @property
    def done(self) -> bool:
        duration = self.duration
        return duration is not None and self.t >= duration - 1e-9

    def step(self) -> StepOutput:
        n = self.frame_samples
        t0, t1 = self._sample, self._sample + n
        self._refresh_acts()
        started = self._start_due_events(t1)
        for source in self._point:
            while source.rendered_until < t1 + n:
                start, wet = source.render_next()
                self._buffer.add(start, wet)
        mix = self._buffer.pop(n)
        for name, noise in self._diffuse.items():
            mix[:, self._slices[name]] += noise.read(n)
        mix += self._self_noise.standard_normal(mix.shape) * self._self_noise_rms
        clipped = int(np.count_nonzero(np.abs(mix) > 1.0))
        if clipped:
            self.stats['clipped samples'] += clipped
            np.clip(mix, -1.0, 1.0, out=mix)
        stamp = t0 / self.sample_rate
        audio = {name: AudioChunk(stamp=stamp, sample_rate=self.sample_rate,
                                  samples=np.ascontiguousarray(mix[:, sl], dtype=np.float32), source=name,
                                  sequence=self._frame_index)
                 for name, sl in self._slices.items()}
        faces: list[FaceFrame] = []
        for camera in self._cameras.values():
            faces.extend(camera.frames_before(t1 / self.sample_rate))
        self._sample = t1
        self._frame_index += 1
        return StepOutput(audio=audio, faces=faces, started=started)

    def add_robot_audio(self, robot: str, chunk: AudioChunk) -> None:
        """Play a chunk of ``robot``'s speech (mono, stamped with its play time) into the room."""
        if robot not in self._robots:
            raise ValueError(f'unknown robot {robot!r}; robots: {", ".join(self._robots)}')
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f'robot audio must be {self.sample_rate} Hz (got {chunk.sample_rate} Hz)')
        samples = np.asarray(chunk.samples)
        if samples.ndim == 2 and samples.shape[1] == 1:
            samples = samples[:, 0]
        if samples.ndim != 1:
            raise ValueError(f'robot audio must be mono, shape (n,) or (n, 1) (got {samples.shape})')
        if samples.size == 0:
            return
        if not math.isfinite(chunk.stamp) or not np.all(np.isfinite(samples)):
            self.stats['dropped: non-finite robot audio'] += 1
            return
        if chunk.stamp - self.t > MAX_AHEAD_S:
            self.stats['dropped: robot audio stamped too far ahead'] += 1
            return
        n = samples.size
        wanted = int(round(chunk.stamp * self.sample_rate))
        start = seamless_start(wanted, self._last_chunk.get(robot))
        if start < self._sample:
            self.stats['late robot audio chunks'] += 1
            self.stats['late robot audio s'] += (self._sample - start) / self.sample_rate
            start = self._sample
        self._last_chunk[robot] = (wanted + n, start + n)
        act = self._act_for_chunk(robot, chunk, start)
        if act.first_sample is None:
            act.first_sample = start
            act.start = start / self.sample_rate
            self._attribution_dirty = True
        act.end_sample = max(act.end_sample or 0, start + n)
        act.end = act.end_sample / self.sample_rate
        act.chunks += 1
        self._buffer.add(start, self._convolvers[robot].convolve(samples))
        self.stats['robot audio chunks'] += 1

    def on_speech_state(self, state: SpeechState) -> None:
        """A robot's speech output state: onsets, ends and what each speech act replies to."""
        robot = state.robot
        if robot not in self._robots:
            raise ValueError(f'unknown robot {robot!r}; robots: {", ".join(self._robots)}')
        times = (state.stamp, state.started, state.reply_to_start, state.reply_to_end)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in times):
            self.stats['dropped: non-finite speech state'] += 1
            return
        if not state.speech_id:
            if not state.speaking and self._current[robot] is not None:
                self._current[robot].state_ended = True
            self.stats['speech states without speech_id'] += 1
            return
        act = self._act_index.get((robot, state.speech_id))
        if act is None:
            act = _SpeechAct(robot, state.speech_id, has_state=True, created_sample=self._sample)
            orphan = self._orphan[robot]
            if orphan is not None and orphan.first_sample is not None and \
                    self._sample - orphan.first_sample <= STATE_LATE_S * self.sample_rate + self.frame_samples and \
                    (state.started <= 0 or abs(state.started - orphan.start) <= STATE_LATE_S):
                self._adopt(orphan, act)
            self._acts[robot].append(act)
            self._act_index[(robot, state.speech_id)] = act
            previous = self._current[robot]
            if previous is not None and previous is not act:
                previous.state_ended = True
            self._current[robot] = act
        act.kind = state.kind
        act.text = state.text or act.text
        if (state.in_reply_to, state.reply_to_start, state.reply_to_end) != \
                (act.in_reply_to, act.reply_to_start, act.reply_to_end) and state.in_reply_to:
            act.in_reply_to, act.reply_to_start, act.reply_to_end = \
                state.in_reply_to, float(state.reply_to_start), float(state.reply_to_end)
            self._attribution_dirty = True
        act.cancelled = act.cancelled or bool(state.cancelled)
        if not state.speaking and not act.state_ended:
            act.state_ended = True
            act.state_end_stamp = float(state.stamp)

    def on_heard(self, u: Utterance) -> None:
        """A robot's hearing published an utterance: where it heard a final decides whose speech a reply
        to it answers when two people talked at once (voice_robot.eval.matching)."""
        if not u.is_final or u.withdrawn:
            return
        if u.robot not in self._robots:
            raise ValueError(f'unknown robot {u.robot!r}; robots: {", ".join(self._robots)}')
        if not (isinstance(u.azimuth, (int, float)) and math.isfinite(u.azimuth)):
            self.stats['dropped: non-finite utterance azimuth'] += 1
            return
        self._truth.heard_from[u.utterance_id] = [u.robot, float(u.azimuth)]
        self._attribution_dirty = True

    @property
    def truth(self) -> GroundTruth:
        """Ground truth so far (complete once ``done``)."""
        truth = self._truth
        truth.duration = self.duration
        truth.robot_speech = [self._speech_truth(a) for name in self._robots for a in self._acts[name]
                              if a.first_sample is not None]
        truth.robot_speech.sort(key=lambda s: (s.start, s.robot))
        truth.reattribute()
        responses = truth.responses() if truth.utterances else {}
        for u in truth.utterances:
            if u.responder_of:
                found = responses.get(u.responder_of, [])
                u.to = found[0].robot if found else 'robots'
            u.addressee_class = self._addressee_class(u.to)
        truth.face_tracks = [track for camera in self._cameras.values() for track in camera.tracks]
        truth.stats = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in sorted(self.stats.items())}
        return truth

    # --- set-up --------------------------------------------------------------------------------
    def _dry_audio(self, ev: _Event) -> np.ndarray:
        spec: UtteranceEvent = ev.spec
        human = self._humans[spec.speaker]
        if spec.clip:
            try:
                audio = normalise_speech(load_clip(self.scenario.resolve(spec.clip), self.sample_rate))
            except ValueError as exc:
                raise SimulationError(f'utterance {ev.id}: {exc}') from None
        else:
            from voice_robot.acting.tts import TtsError, synthesize
            try:
                audio = synthesize(human.voice, spec.say, self.sample_rate)
            except TtsError as exc:
                raise SimulationError(f'utterance {ev.id} ({human.name}, voice {human.voice}): {exc}') from None
        if audio.size == 0:
            raise SimulationError(f'utterance {ev.id}: the audio is empty')
        return np.asarray(audio, dtype=np.float32)

    def _speech_reference_power(self) -> float:
        """Mean power of human speech at the arrays: all utterances, all microphones, per second spoken."""
        energy, samples = 0.0, 0
        for ev in self._events:
            if ev.is_utterance:
                wet = render_through(self.rirs.rir(f'human:{ev.spec.speaker}'), ev.dry)
                energy += float(np.sum(wet ** 2))
                samples += len(ev.dry) * self.layout.channels
        if samples:
            return energy / samples
        # No utterance: what a human voice at the TTS level would give, white-spectrum estimate.
        gains = [float(np.mean(np.sum(self.rirs.rir(f'human:{h}') ** 2, axis=1))) for h in self._humans]
        return float(np.mean(gains)) * 10 ** (-23.0 / 10)

    def _point_noise(self, index: int, spec) -> PointNoise:
        seed = self.scenario.seed
        clip = None
        if spec.kind == 'clip':
            try:
                clip = load_clip(self.scenario.resolve(spec.clip), self.sample_rate)
            except ValueError as exc:
                raise SimulationError(f'noise source {spec.name}: {exc}') from None
        rirs = self.rirs.rir(f'noise:{index}')
        voices = self._participant_voices()
        calibration = mono_stream(spec.kind, substream(seed, 'noise-calibration', index, spec.name), self.sample_rate,
                                  clip, voices)
        sample = calibration.read(int(NOISE_CALIBRATION_S * self.sample_rate) if clip is None else len(clip))
        # the streams have unit power, so this gain puts the source's mean level at the arrays on target
        per_unit = array_power_gain(rirs, sample)
        target = self.speech_power * 10 ** (spec.level_db / 10)
        gain = math.sqrt(target / max(per_unit, 1e-20))
        stream = mono_stream(spec.kind, substream(seed, 'noise', index, spec.name), self.sample_rate, clip, voices)
        return PointNoise(spec.name, stream, rirs, gain, self.sample_rate)

    def _participant_voices(self) -> tuple[str, ...]:
        """Voices of the scenario's people and robots: background babble uses other voices."""
        voices = [h.voice for h in self.scenario.humans] + [r.voice for r in self.scenario.robots if r.voice]
        return tuple(sorted(set(voices)))

    def _fill_geometry_truth(self) -> None:
        t = self._truth
        for h in self.scenario.humans:
            t.human_positions[h.name] = [float(v) for v in h.position_m]
        for r in self.scenario.robots:
            t.robot_poses[r.name] = {'position_m': [float(v) for v in r.position_m], 'yaw_deg': float(r.yaw_deg),
                                     'array_centre_m': [float(v) for v in r.array_center_map()],
                                     'head_height_m': robot_head_height(r)}
            centre = r.mic_positions_base().mean(axis=0)
            t.azimuths[r.name], t.elevations[r.name], t.distances[r.name] = {}, {}, {}
            def relative(position_m, r=r, centre=centre):
                return r.map_to_base(np.asarray([position_m], dtype=float))[0] - centre
            for h in self.scenario.humans:
                rel = relative(h.position_m)
                t.azimuths[r.name][h.name] = math.atan2(rel[1], rel[0])
                t.elevations[r.name][h.name] = math.atan2(rel[2], math.hypot(rel[0], rel[1]))
                t.distances[r.name][h.name] = float(np.linalg.norm(rel))
            t.clip_azimuths[r.name] = {}
            for n in self.scenario.room.noise_sources:
                if n.kind == 'clip':
                    rel = relative(n.position_m)
                    t.clip_azimuths[r.name][n.name] = math.atan2(rel[1], rel[0])

    # --- timeline ------------------------------------------------------------------------------
    def _start_due_events(self, frame_end: int) -> list[str]:
        started: list[str] = []
        limit = self.scenario.duration_s
        progress = True
        while progress:
            progress = False
            for ev in self._events:
                if ev.started:
                    continue
                if ev.start is None:
                    self._resolve(ev)
                    if ev.start is None:
                        continue
                sample = max(int(round(ev.start * self.sample_rate)), self._sample)
                if sample >= frame_end:
                    continue
                if limit is not None and sample / self.sample_rate >= limit:
                    continue
                self._begin(ev, sample)
                started.append(ev.id)
                progress = True
        return started

    def _resolve(self, ev: _Event) -> None:
        after = ev.spec.after
        if isinstance(after, AfterEvent):
            ref = self._by_id[after.event]
            if ref.started:
                ev.start = ref.end + after.offset_s
            return
        ref_id = after.robot_speech_of if isinstance(after, AfterRobotSpeech) else after.robot_speech_end_of
        ref = self._by_id[ref_id]
        if not ref.started:
            return
        first = self._live_response(ref)
        if first is None:
            deadline = ref.end + RESPONSE_WINDOW_S
            if self._sample > deadline * self.sample_rate and not self._undecided_before(deadline):
                ev.start = deadline + after.offset_s
                ev.fallback = True
                self.stats['events started without the robot speech they wait for'] += 1
            return
        if isinstance(after, AfterRobotSpeech):
            ev.start = first.start + after.offset_s
            return
        end = self._response_end(ref, first)
        if end is not None:
            ev.start = end + after.offset_s

    def _begin(self, ev: _Event, sample: int) -> None:
        t = sample / self.sample_rate
        ev.started = True
        ev.start = t
        if ev.is_utterance:
            spec: UtteranceEvent = ev.spec
            ev.end = t + len(ev.dry) / self.sample_rate
            self._buffer.add(sample, render_through(self.rirs.rir(f'human:{spec.speaker}'), ev.dry))
            self._lips.add(spec.speaker, t, ev.dry, self.sample_rate)
            to, responder_of = self._resolve_to(spec.to)
            gaze = spec.gaze
            if gaze is None:
                if isinstance(to, list) and len(to) == 1:
                    gaze = to[0]
                elif isinstance(to, str) and (to in self._robots or to in self._humans):
                    gaze = to
            if gaze is not None:
                self._turn_head(spec.speaker, t, gaze, f'utterance:{ev.id}')
            to_spec = spec.to.model_dump() if isinstance(spec.to, ResponderOf) else spec.to
            self._truth.utterances.append(UtteranceTruth(
                id=ev.id, speaker=spec.speaker, text=spec.say or '', start=t, end=ev.end, to=to, to_spec=to_spec,
                responder_of=responder_of, gaze=gaze, interrupts=spec.interrupts, backchannel=spec.backchannel,
                clip=spec.clip or '', addressee_class=self._addressee_class(to)))
            self._attribution_dirty = True
        else:
            look = ev.spec.look
            ev.end = self._turn_head(look.who, t, look.at, f'look:{ev.id}')
        self._truth.events.append(EventTruth(ev.id, 'utterance' if ev.is_utterance else 'look', t, ev.end))

    def _resolve_to(self, to) -> tuple[object, str]:
        if isinstance(to, ResponderOf):
            ref = self._by_id[to.responder_of]
            first = self._live_response(ref) if ref.started else None
            return (first.robot if first is not None else 'robots'), to.responder_of
        if isinstance(to, list):
            return list(to), ''
        return to, ''

    def _addressee_class(self, to) -> str:
        if isinstance(to, str) and (to in self._robots or to == 'robots'):
            return to
        return 'others'

    def _turn_head(self, human: str, t: float, target, source: str) -> float:
        head = self._heads[human]
        yaw, pitch = head_direction(self.scenario, self._humans[human], target, head.pose(t)[0])
        arrive = head.turn_to(t, yaw, pitch)
        self._truth.head_targets.append(HeadTargetTruth(t, human, target, yaw, pitch, arrive, source))
        return arrive

    # --- robot speech ----------------------------------------------------------------------------
    def _act_for_chunk(self, robot: str, chunk: AudioChunk, start: int) -> _SpeechAct:
        if chunk.source:
            named = self._act_index.get((robot, chunk.source))
            if named is not None:
                return named
        current = self._current[robot]
        if current is not None:
            if not current.state_ended:
                return current
            # The end state overtook the act's last chunks (separate topics): they were played before
            # it was sent. A chunk stamped at or after the end is the next act's first (its state follows).
            if current.state_end_stamp is not None and current.end_sample is not None and \
                    chunk.stamp < current.state_end_stamp - 1e-6:
                return current
        orphan = self._orphan[robot]
        if orphan is not None and orphan.end_sample is not None and \
                start - orphan.end_sample <= ORPHAN_GAP_S * self.sample_rate:
            return orphan
        orphan = _SpeechAct(robot, '', created_sample=self._sample)
        self._acts[robot].append(orphan)
        self._orphan[robot] = orphan
        self.stats['robot audio without a speech state'] += 1
        return orphan

    def _adopt(self, orphan: _SpeechAct, act: _SpeechAct) -> None:
        """A speech state arrived just after its first audio: the audio belongs to that act."""
        act.first_sample, act.end_sample = orphan.first_sample, orphan.end_sample
        act.start, act.end, act.chunks = orphan.start, orphan.end, orphan.chunks
        self._acts[orphan.robot].remove(orphan)
        self._orphan[orphan.robot] = None
        self.stats['robot audio without a speech state'] -= 1
        self._attribution_dirty = True

    def _decided(self, act: _SpeechAct) -> bool:
        """Attribution is final once the act's state is known (or cannot arrive any more)."""
        if act.first_sample is None:
            return False
        return act.has_state or self._sample - act.first_sample > STATE_LATE_S * self.sample_rate + self.frame_samples

    def _refresh_acts(self) -> None:
        for name, orphan in self._orphan.items():
            if orphan is not None and orphan.end_sample is not None and \
                    self._sample - orphan.end_sample > ORPHAN_GAP_S * self.sample_rate:
                self._orphan[name] = None
        if self._attribution_dirty:
            spans, heard = self._truth.utterances, self._truth.heard()
            for acts in self._acts.values():
                for act in acts:
                    if act.first_sample is not None:
                        act.attributed_to = attribute_speech(act, spans, heard, self._truth.azimuths)
            self._attribution_dirty = False

    def _live_response(self, ref: _Event) -> Optional[_SpeechAct]:
        self._refresh_acts()
        best = None
        for acts in self._acts.values():
            for act in acts:
                if act.attributed_to == ref.id and self._decided(act) and is_response(act.start, ref.end):
                    if best is None or act.start < best.start:
                        best = act
        return best

    def _undecided_before(self, t: float) -> bool:
        return any(a.first_sample is not None and a.start <= t and not self._decided(a)
                   for acts in self._acts.values() for a in acts)

    def _finished(self, act: _SpeechAct) -> bool:
        if act.end_sample is None:
            return False
        silent = self._sample - act.end_sample
        if act.has_state:
            return (act.state_ended and silent >= 0) or silent > STALL_S * self.sample_rate
        return silent > ORPHAN_GAP_S * self.sample_rate

    def _response_end(self, ref: _Event, first: _SpeechAct) -> Optional[float]:
        """End of the responding robot's answer, once it is over (a filler is followed by the answer)."""
        acts = [a for a in self._acts[first.robot]
                if a.attributed_to == ref.id and a.first_sample is not None and a.start >= first.start]
        last = max(acts, key=lambda a: a.start)
        if not self._finished(last):
            return None
        if last.kind in (SpeechKind.FILLER, SpeechKind.HOLD) and \
                self._sample - last.end_sample < FILLER_GRACE_S * self.sample_rate:
            return None
        return last.end

    def _speech_truth(self, act: _SpeechAct) -> RobotSpeechTruth:
        return RobotSpeechTruth(robot=act.robot, speech_id=act.speech_id, start=act.start, end=act.end,
                                kind=SpeechKind(act.kind).name.lower(), text=act.text, in_reply_to=act.in_reply_to,
                                reply_to_start=act.reply_to_start, reply_to_end=act.reply_to_end,
                                cancelled=act.cancelled, attributed_to=act.attributed_to)
