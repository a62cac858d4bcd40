"""What a robot knows about the conversation so far, kept from topics every robot can hear.

* who is where and looking at what (from ``/persons``, a bounded gaze history per person);
* who talked to whom recently (fused addressee decisions for people, DialogueTurns for robots);
* which robots are speaking now (speech states of all robots).

Everything is bounded in time and size; nothing here needs the simulator's ground truth.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.fusing.voices import VoiceAliases

GAZE_HISTORY_S = 30.0
EXCHANGE_HISTORY = 40


@dataclass
class Exchange:
    """One turn of the conversation: who spoke to whom, when."""
    start: float
    end: float
    speaker: str          # robot name or voice id
    addressee: str        # robot name, 'robots', 'others', or a voice id
    text: str = ''
    speaker_is_robot: bool = False


class ConversationContext:
    def __init__(self, robot: str, robots: list[RobotSpec], max_persons: int = 32):
        self.robot = robot
        self.robots = {r.name: r for r in robots}
        self.persons: dict[str, m.Person] = {}
        self._person_seen: dict[str, float] = {}
        self._gaze: dict[str, deque] = {}
        self.exchanges: deque[Exchange] = deque(maxlen=EXCHANGE_HISTORY)
        self.speaking: dict[str, m.SpeechState] = {}
        self.max_persons = max_persons
        self.voices = VoiceAliases()

    # --- updates ------------------------------------------------------------------------------
    def on_persons(self, persons: m.Persons, now: float) -> None:
        for p in persons.persons:
            if not all(math.isfinite(v) for v in p.position):
                continue
            if p.person_id not in self.persons and len(self.persons) >= self.max_persons:
                oldest = min(self._person_seen, key=self._person_seen.get)
                self.persons.pop(oldest, None)
                self._person_seen.pop(oldest, None)
                self._gaze.pop(oldest, None)
            self.persons[p.person_id] = p
            self._person_seen[p.person_id] = now
            if p.looked_at:
                hist = self._gaze.setdefault(p.person_id, deque(maxlen=600))
                hist.append((persons.stamp, p.looked_at, p.looked_at_probability))
                while hist and hist[0][0] < now - GAZE_HISTORY_S:
                    hist.popleft()

    def on_speech_state(self, state: m.SpeechState) -> None:
        prev = self.speaking.get(state.robot)
        self.speaking[state.robot] = state
        if prev is not None and prev.speaking and not state.speaking and prev.text:
            self.exchanges.append(Exchange(prev.started, state.stamp, state.robot,
                                           _voice_of_reply(prev, self.exchanges), prev.text, True))

    def on_turn(self, turn: m.DialogueTurn) -> None:
        if turn.speaker in self.robots:
            # Robot turns already come from speech states; keep the addressee the dialogue names.
            for ex in reversed(self.exchanges):
                if ex.speaker == turn.speaker and abs(ex.start - turn.start) < 1.0:
                    ex.addressee = turn.addressee or ex.addressee
                    return
        self.exchanges.append(Exchange(turn.start, turn.end, turn.speaker, turn.addressee, turn.text,
                                       turn.speaker in self.robots))

    def on_decision(self, est: m.AddresseeEstimate) -> None:
        """A fused decision about a human turn (dedupe: robots publish the same turn)."""
        for ex in self.exchanges:
            if not ex.speaker_is_robot and _overlap(ex.start, ex.end, est.utterance_start, est.utterance_end) > 0:
                ex.addressee = est.decision
                return
        self.exchanges.append(Exchange(est.utterance_start, est.utterance_end, est.voice_id or '?',
                                       est.decision, est.transcript, False))

    # --- queries -----------------------------------------------------------------------------
    def robot_speaking(self, now: float) -> list[str]:
        return [r for r, s in self.speaking.items() if s.speaking]

    def person_for(self, voice_id: str, azimuth: float | None, robot: RobotSpec,
                   gate_rad: float = math.radians(25)) -> m.Person | None:
        """The person who spoke: linked by voice id, else the person in the utterance direction
        (a person the person manager marks as speaking counts as 10 degrees closer)."""
        if voice_id:
            for p in self.persons.values():
                if self.voices.same(p.voice_id, voice_id):
                    return p
        if azimuth is None:
            return None
        best, best_err = None, gate_rad
        for p in self.persons.values():
            bearing = robot.bearing_to(p.position)
            err = abs(math.atan2(math.sin(bearing - azimuth), math.cos(bearing - azimuth)))
            if p.is_speaking:
                err -= math.radians(10)
            if err < best_err:
                best, best_err = p, err
        return best

    def attention(self, person_id: str, t0: float, t1: float) -> dict[str, float]:
        """Share of [t0, t1] the person looked at each target (robot name, 'person', 'none')."""
        hist = self._gaze.get(person_id)
        if not hist:
            return {}
        samples = [(t, target, prob) for t, target, prob in hist if t0 - 0.2 <= t <= t1 + 0.1]
        if not samples:
            # Nothing inside the turn: the latest sample before it still tells where the head was.
            before = [s for s in hist if s[0] < t0]
            samples = before[-1:]
        if not samples:
            return {}
        shares: dict[str, float] = {}
        for _, target, prob in samples:
            key = 'person' if target.startswith('person:') else target
            shares[key] = shares.get(key, 0.0) + max(prob, 0.05)
        total = sum(shares.values())
        return {k: v / total for k, v in shares.items()}

    def last_robot_partner(self, voice_id: str, person_id: str, now: float, horizon_s: float = 30.0):
        """(robot, age_s, ended_with_question) of the robot this speaker last talked with."""
        for ex in reversed(self.exchanges):
            if now - ex.end > horizon_s:
                break
            if ex.speaker_is_robot and ex.addressee and (self.voices.same(ex.addressee, voice_id)
                                                         or ex.addressee == person_id):
                return ex.speaker, now - ex.end, ex.text.strip().endswith('?')
            if not ex.speaker_is_robot and self.voices.same(ex.speaker, voice_id) and ex.addressee in self.robots:
                return ex.addressee, now - ex.end, False
        return None, None, False

    def recent_human_exchange(self, voice_id: str, now: float, horizon_s: float = 8.0) -> float:
        """1 if this speaker was just in a person-to-person exchange (side talk), decaying with time."""
        for ex in reversed(self.exchanges):
            if now - ex.end > horizon_s:
                break
            if ex.speaker_is_robot:
                if self.voices.same(ex.addressee, voice_id):
                    return 0.0
                continue
            if ex.addressee == 'others':
                return float(np.exp(-(now - ex.end) / horizon_s))
            if self.voices.same(ex.speaker, voice_id) and ex.addressee in self.robots:
                return 0.0
        return 0.0

    def robot_distances(self, position) -> dict[str, float]:
        p = np.asarray(position[:2], dtype=float)
        return {name: float(np.linalg.norm(p - np.asarray(r.position_m, dtype=float))) for name, r in self.robots.items()}


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _voice_of_reply(state: m.SpeechState, exchanges) -> str:
    """Whom a robot's reply was for: the speaker of the human turn it replied to."""
    for ex in reversed(exchanges):
        if not ex.speaker_is_robot and _overlap(ex.start, ex.end, state.reply_to_start, state.reply_to_end) > 0:
            return ex.speaker
    return ''
