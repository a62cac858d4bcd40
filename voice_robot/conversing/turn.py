"""End of turn: when has a person finished speaking?

Not a fixed long silence. Hearing closes a segment after a short VAD silence and rates how finished it
sounds (``end_of_turn_probability``: a complete question or sentence, falling pitch, ...). A turn is
the run of one talker's segments; it ends once the silence since the last segment reaches

    min_silence_s + (1 - p_end_of_turn) * (max_silence_s - min_silence_s)

so "Ada, what time is it?" is answered after a short pause while "I was wondering, um, and" waits.
New speech from the same talker before that keeps the turn open.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from voice_robot import messages as m
from voice_robot.conversing.config import TurnConfig
from voice_robot.conversing.cues import VOCATIVE_PREFIX, find_names, tokenize

SAME_TALKER_RAD = math.radians(20)
MAX_OPEN_TURNS = 16


@dataclass
class Turn:
    segments: list[m.Utterance] = field(default_factory=list)
    open_partial: str = ''          # id of a partial of the same talker still being spoken
    deadline: float = math.inf

    @property
    def utterance_id(self) -> str:
        return self.segments[-1].utterance_id

    @property
    def start(self) -> float:
        return self.segments[0].start

    @property
    def end(self) -> float:
        return self.segments[-1].end

    @property
    def text(self) -> str:
        return ' '.join(s.transcript.strip() for s in self.segments if s.transcript.strip())

    @property
    def voice_id(self) -> str:
        for s in reversed(self.segments):
            if s.voice_id:
                return s.voice_id
        return ''

    @property
    def azimuth(self) -> float:
        return math.atan2(sum(math.sin(s.azimuth) for s in self.segments),
                          sum(math.cos(s.azimuth) for s in self.segments))

    @property
    def end_of_turn_probability(self) -> float:
        return self.segments[-1].end_of_turn_probability

    @property
    def backchannel_probability(self) -> float:
        return max(s.backchannel_probability for s in self.segments)


def withdrawn(u: m.Utterance) -> bool:
    """Hearing takes back a final it cannot stand by (see ``Utterance.withdrawn``)."""
    return u.withdrawn


def same_talker(a: m.Utterance, b: m.Utterance) -> bool:
    if a.voice_id and b.voice_id:
        return a.voice_id == b.voice_id
    d = math.atan2(math.sin(a.azimuth - b.azimuth), math.cos(a.azimuth - b.azimuth))
    return abs(d) < SAME_TALKER_RAD


def unfinished(text: str, names: dict[str, list[str]]) -> bool:
    """Text that cannot be a whole turn: only a name ("Luna.", "Hey Dex"), or a trailing comma."""
    stripped = text.strip()
    if stripped.endswith(','):
        return True
    tokens = [t for t in tokenize(stripped) if t[0].isalpha()]
    if not tokens or len(tokens) > 3:
        return False
    found = find_names(tokens, names)
    named = sum(len(hits) for hits in found.values())
    rest = [t for t in tokens if t not in VOCATIVE_PREFIX]
    return named > 0 and len(rest) <= named


class TurnTracker:
    """Groups one robot's final utterances into turns and says when each turn is over."""

    def __init__(self, config: TurnConfig, names: dict[str, list[str]] | None = None):
        self.config = config
        self.names = names or {}
        self.open: list[Turn] = []
        self.dropped = 0

    def required_silence(self, p_end: float) -> float:
        p = min(max(p_end, 0.0), 1.0)
        c = self.config
        return c.min_silence_s + (1.0 - p) * (c.max_silence_s - c.min_silence_s)

    def on_utterance(self, u: m.Utterance) -> None:
        if withdrawn(u):
            for t in self.open:
                if t.open_partial == u.utterance_id:
                    t.open_partial = ''
            return
        turn = next((t for t in self.open if same_talker(t.segments[-1], u)), None)
        if not u.is_final:
            if turn is not None and u.utterance_id != turn.utterance_id:
                turn.open_partial = u.utterance_id     # the talker goes on: hold the turn open
            return
        if turn is None:
            if len(self.open) >= MAX_OPEN_TURNS:
                self.open.pop(0)
                self.dropped += 1
            turn = Turn()
            self.open.append(turn)
        if any(s.utterance_id == u.utterance_id for s in turn.segments):
            return   # duplicate final
        turn.segments.append(u)
        if turn.open_partial == u.utterance_id:
            turn.open_partial = ''
        p_end = u.end_of_turn_probability
        if self.names and unfinished(u.transcript, self.names):
            p_end = 0.0     # "Luna." then a pause: the request follows
        turn.deadline = u.end + self.required_silence(p_end)

    def due(self, now: float) -> list[Turn]:
        """Turns that are over at ``now`` (removed from the tracker)."""
        done = [t for t in self.open if not t.open_partial and t.deadline <= now]
        # A partial that never got its final (the talker went quiet) must not hold a turn for ever.
        stale = [t for t in self.open if t.open_partial and now - t.end > 3 * self.config.max_silence_s]
        for t in stale:
            t.open_partial = ''
        self.open = [t for t in self.open if t not in done]
        return sorted(done, key=lambda t: t.end)
