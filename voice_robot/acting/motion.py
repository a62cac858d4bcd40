"""Motion: where the robot looks and which gestures it makes, always within its mechanical limits.

The robot looks at whoever is speaking (the person the utterance is attributed to, or the person in
the utterance's direction, or a point along that direction at head height) and, while it speaks
itself, at the person it answers. Gestures (nod, wave, ...) come from 'motion/request' (the dialogue's
validated tool calls) and are passed on as named actions. Every command on 'motion/command' is clamped
to ``MotionConfig.limits`` (head yaw and pitch relative to the base, duration, amplitude); unknown
gestures are refused and counted. Look-at commands are sent only when the gaze changes noticeably and
at most ``look_at_max_rate_hz``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from voice_robot import messages as m
from voice_robot.acting.config import MotionConfig
from voice_robot.config.robots import RobotSpec
from voice_robot.pipeline import Stage

MAX_REMEMBERED = 128
DEFAULT_GESTURE_S = 1.0
DEFAULT_AMPLITUDE = 0.5
MAX_LOOK_HOLD_S = 10.0        # an explicit look-at wins over following speakers for at most this long


@dataclass
class Gaze:
    """A look-at target as the head sees it."""
    target: tuple[float, float, float]   # map, after clamping
    yaw: float                           # rad, relative to the base
    pitch: float
    reason: str


class MotionStage(Stage):
    name = 'motion'
    outputs = ('motion/command',)

    def __init__(self, robot: RobotSpec, config: MotionConfig):
        super().__init__(robot.name)
        self.spec = robot
        self.config = config
        limits = config.limits
        self.yaw_limits = tuple(sorted(math.radians(v) for v in limits.head_yaw_deg))
        self.pitch_limits = tuple(sorted(math.radians(v) for v in limits.head_pitch_deg))
        if config.head_base_height_m is not None:
            self.head_height = float(config.head_base_height_m)
        else:
            self.head_height = float(robot.camera.height_m) if robot.camera is not None else 1.1
        self.gestures = set(config.gestures)
        self._persons: dict[str, tuple[float, list[m.Person]]] = {}
        self._utterances: OrderedDict[str, m.Utterance] = OrderedDict()
        self._speech: m.SpeechState | None = None
        self._last_heard: m.Utterance | None = None
        self._override: tuple[float, Gaze] | None = None      # an explicit LOOK_AT request, until a time
        self._sent: Gaze | None = None
        self._sent_at = -math.inf
        self._pending: Gaze | None = None

    def inputs(self):
        return {'motion/request': self.on_request,
                '/persons': self.on_persons,
                'hearing/utterances': self.on_utterance,
                'speech/state': self.on_speech_state}

    def timers(self):
        return [(0.5 / self.config.look_at_max_rate_hz, self.tick)]

    # --- inputs ------------------------------------------------------------------------------
    def on_persons(self, msg) -> None:
        if not isinstance(msg, m.Persons) or not isinstance(msg.persons, list):
            return self.drop('bad persons', type(msg).__name__)
        persons = []
        for person in msg.persons:
            if isinstance(person, m.Person) and _finite_point(person.position):
                persons.append(person)
            else:
                self.drop('bad person', getattr(person, 'person_id', '?'))
        # Each robot publishes its full view; keep the newest view per robot.
        previous = self._persons.get(msg.robot)
        if previous is not None and _finite(msg.stamp) and msg.stamp < previous[0]:
            return self.drop('old persons', msg.robot)
        self._persons[msg.robot] = (msg.stamp if _finite(msg.stamp) else 0.0, persons)
        if len(self._persons) > MAX_REMEMBERED:
            self._persons.pop(next(iter(self._persons)))
        self._update()

    def on_utterance(self, msg) -> None:
        if not isinstance(msg, m.Utterance) or not msg.utterance_id:
            return self.drop('bad utterance', type(msg).__name__)
        if not _finite(msg.start, msg.end, msg.azimuth):
            return self.drop('bad utterance', 'non-finite times or azimuth')
        self._utterances[msg.utterance_id] = msg
        self._utterances.move_to_end(msg.utterance_id)
        while len(self._utterances) > MAX_REMEMBERED:
            self._utterances.popitem(last=False)
        if self._last_heard is None or msg.end >= self._last_heard.end or \
                msg.utterance_id == self._last_heard.utterance_id:
            self._last_heard = msg
        self._update()

    def on_speech_state(self, msg) -> None:
        if not isinstance(msg, m.SpeechState):
            return self.drop('bad speech state', type(msg).__name__)
        if msg.robot and msg.robot != self.robot:
            return self.drop('speech state of another robot', msg.robot)
        self._speech = msg
        self._update()

    def on_request(self, msg) -> None:
        if not isinstance(msg, m.MotionCommand):
            return self.drop('bad request', type(msg).__name__)
        if msg.robot and msg.robot != self.robot:
            return self.drop('request for another robot', msg.robot)
        try:
            action = m.MotionAction(msg.action)
        except ValueError:
            return self.drop('bad request', f'action {msg.action!r}')
        if action == m.MotionAction.GESTURE:
            return self._gesture(msg)
        if not _finite_point(msg.target):
            return self.drop('bad look-at target', str(msg.target))
        gaze = self.gaze_at(msg.target, 'request')
        hold = msg.duration_s if _finite(msg.duration_s) and msg.duration_s > 0 else self.config.look_at_speaker_s
        self._override = (self.now() + min(hold, MAX_LOOK_HOLD_S), gaze)
        self._propose(gaze, force=True)

    def tick(self) -> None:
        self._update()

    # --- gestures ----------------------------------------------------------------------------
    def _gesture(self, msg: m.MotionCommand) -> None:
        name = msg.gesture if isinstance(msg.gesture, str) else ''
        if name not in self.gestures:
            self.stats['gestures refused'] += 1
            return self.drop('unknown gesture', repr(name)[:40])
        limits = self.config.limits
        duration = msg.duration_s if _finite(msg.duration_s) and msg.duration_s > 0 else DEFAULT_GESTURE_S
        amplitude = msg.amplitude if _finite(msg.amplitude) and msg.amplitude > 0 else DEFAULT_AMPLITUDE
        duration = min(float(duration), limits.max_duration_s)
        amplitude = min(float(amplitude), limits.max_amplitude)
        target = msg.target if _finite_point(msg.target) else (0.0, 0.0, 0.0)
        if target != (0.0, 0.0, 0.0):
            target = self.gaze_at(target, 'gesture').target      # e.g. where to point, within reach
        self.stats['gestures'] += 1
        self.publish('motion/command', m.MotionCommand(robot=self.robot, action=m.MotionAction.GESTURE,
                                                       target=tuple(float(v) for v in target), gesture=name,
                                                       duration_s=duration, amplitude=amplitude, stamp=self.now()))

    # --- looking -----------------------------------------------------------------------------
    def gaze_at(self, point, reason: str) -> Gaze:
        """Head angles for a map point, clamped to the limits; the target moves with the clamp."""
        base = self.spec.map_to_base(np.asarray([point], dtype=float))[0]
        dx, dy, dz = base[0], base[1], base[2] - self.head_height
        horizontal = math.hypot(dx, dy)
        yaw = math.atan2(dy, dx) if horizontal > 1e-6 else 0.0
        pitch = math.atan2(dz, horizontal) if horizontal > 1e-6 or abs(dz) > 1e-6 else 0.0
        clamped_yaw = min(max(yaw, self.yaw_limits[0]), self.yaw_limits[1])
        clamped_pitch = min(max(pitch, self.pitch_limits[0]), self.pitch_limits[1])
        if (clamped_yaw, clamped_pitch) != (yaw, pitch):
            self.stats['look-at clamped'] += 1
            distance = max(horizontal, 0.5)
            base = np.array([distance * math.cos(clamped_yaw), distance * math.sin(clamped_yaw),
                             self.head_height + distance * math.tan(clamped_pitch)])
        target = self.spec.base_to_map(np.asarray([base], dtype=float))[0]
        return Gaze((float(target[0]), float(target[1]), float(target[2])), clamped_yaw, clamped_pitch, reason)

    def _update(self) -> None:
        if not self.config.look_at_speaker:
            return
        now = self.now()
        gaze = None
        if self._override is not None:
            until, override = self._override
            if now < until:
                gaze = override
            else:
                self._override = None
        if gaze is None:
            gaze = self._choose(now)
        if gaze is not None:
            self._propose(gaze)
        self._send_pending(now)

    def _choose(self, now: float) -> Gaze | None:
        speech = self._speech
        if speech is not None and speech.speaking:
            utterance = self._answered(speech)
            if utterance is not None:
                point = self._speaker_point(utterance)
                if point is not None:
                    return self.gaze_at(point, 'addressee')
        heard = self._last_heard
        if heard is not None and (not heard.is_final or now - heard.end <= self.config.look_at_speaker_s):
            point = self._speaker_point(heard)
            if point is not None:
                return self.gaze_at(point, 'speaker')
        return None

    def _answered(self, speech: m.SpeechState) -> m.Utterance | None:
        if speech.in_reply_to in self._utterances:
            return self._utterances[speech.in_reply_to]
        best, best_overlap = None, 0.0
        for u in self._utterances.values():
            overlap = min(u.end, speech.reply_to_end) - max(u.start, speech.reply_to_start)
            if overlap > best_overlap:
                best, best_overlap = u, overlap
        return best

    def _all_persons(self) -> list[m.Person]:
        return [p for _, persons in self._persons.values() for p in persons]

    def _speaker_point(self, u: m.Utterance) -> tuple[float, float, float] | None:
        persons = self._all_persons()
        person = None
        if u.person_id:
            person = next((p for p in persons if p.person_id == u.person_id), None)
        if person is None and u.voice_id:
            person = next((p for p in persons if p.voice_id == u.voice_id), None)
        if person is None and persons:
            # Nobody is attributed: the person closest to the direction the voice came from.
            best, best_error = None, math.radians(self.config.speaker_match_deg)
            for p in persons:
                error = abs(_wrap(self.spec.bearing_to(p.position) - u.azimuth))
                if error < best_error:
                    best, best_error = p, error
            person = best
        if person is not None:
            x, y, z = person.position
            return (float(x), float(y), float(z) if z > 0.3 else self.config.head_height_m)
        centre = self.spec.mic_positions_base().mean(axis=0)
        d = self.config.default_distance_m
        base = np.array([[centre[0] + d * math.cos(u.azimuth), centre[1] + d * math.sin(u.azimuth),
                          self.config.head_height_m]])
        point = self.spec.base_to_map(base)[0]
        return (float(point[0]), float(point[1]), float(point[2]))

    def _propose(self, gaze: Gaze, force: bool = False) -> None:
        sent = self._sent
        threshold = math.radians(self.config.look_at_min_change_deg)
        if not force and sent is not None and abs(_wrap(gaze.yaw - sent.yaw)) < threshold \
                and abs(gaze.pitch - sent.pitch) < threshold:
            self._pending = None
            return
        self._pending = gaze

    def _send_pending(self, now: float) -> None:
        gaze = self._pending
        if gaze is None:
            return
        if now - self._sent_at < 1.0 / self.config.look_at_max_rate_hz - 1e-9:
            return        # too soon after the last one: the timer sends it when allowed
        self._pending = None
        self._sent, self._sent_at = gaze, now
        self.stats['look-at'] += 1
        self.publish('motion/command', m.MotionCommand(robot=self.robot, action=m.MotionAction.LOOK_AT,
                                                       target=gaze.target, stamp=now))


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _finite_point(point) -> bool:
    try:
        return len(point) == 3 and _finite(*point)
    except TypeError:
        return False
