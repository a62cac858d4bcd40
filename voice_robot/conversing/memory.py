"""Shared memory of the group conversation: who said what to whom, for the dialogue prompt.

Human turns come from fused addressee estimates (every robot fuses and publishes its own, so the same
human utterance arrives several times under different utterance ids: they are merged by time
overlap). Robot turns come from the DialogueTurns robots publish when a reply ends, with the words
actually spoken. The memory keeps the newest ``max_turns`` turns in time order and renders them as
chat messages: the robot's own words as ``assistant``, everyone else's as ``user`` lines tagged
"[speaker to addressee]" (robots by name, people by voice id).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from voice_robot.conversing.llm import format_line
from voice_robot.messages import OTHERS, AddresseeEstimate, DialogueTurn

# Two reports of human speech are the same utterance when they overlap this much of the shorter one.
SAME_UTTERANCE_OVERLAP = 0.5


@dataclass
class MemoryTurn:
    speaker: str
    addressee: str
    text: str
    start: float
    end: float
    is_robot: bool = False
    ids: set[str] = field(default_factory=set)    # utterance / speech ids reported for this turn

    def overlap(self, start: float, end: float) -> float:
        """Overlap with [start, end] as a share of the shorter span (0 when either is empty)."""
        shorter = min(self.end - self.start, end - start)
        if shorter <= 0:
            return 1.0 if (self.start == start and self.end == end) else 0.0
        return max(0.0, min(self.end, end) - max(self.start, start)) / shorter


def _words(text: str) -> set[str]:
    return {w.strip('.,!?;:"\'').lower() for w in text.split()} - {''}


class ConversationMemory:
    """The newest turns of the group conversation, deduplicated, in time order."""

    def __init__(self, max_turns: int = 20):
        if max_turns < 1:
            raise ValueError('max_turns must be at least 1')
        self.max_turns = int(max_turns)
        self._turns: list[MemoryTurn] = []

    def __len__(self) -> int:
        return len(self._turns)

    @property
    def turns(self) -> list[MemoryTurn]:
        return list(self._turns)

    def add_estimate(self, estimate: AddresseeEstimate) -> bool:
        """Remember a human utterance from a fused estimate; returns whether memory changed."""
        text = ' '.join((estimate.transcript or '').split())
        start, end = float(estimate.utterance_start), float(estimate.utterance_end)
        if not text or not (math.isfinite(start) and math.isfinite(end)) or end < start:
            return False
        speaker = estimate.voice_id or 'someone'
        addressee = estimate.decision or OTHERS
        uid = estimate.utterance_id
        for turn in self._turns:
            if turn.is_robot:
                continue
            same_id = bool(uid) and uid in turn.ids
            if same_id or (turn.overlap(start, end) >= SAME_UTTERANCE_OVERLAP and self._same_voice(turn, speaker, text)):
                # A later or longer report of the same words (partial -> final, another robot's ears).
                if same_id or len(text) > len(turn.text):
                    turn.text = text
                turn.start, turn.end = min(turn.start, start), max(turn.end, end)
                if turn.speaker == 'someone' and speaker != 'someone':
                    turn.speaker = speaker
                if same_id:
                    turn.addressee = addressee
                if uid:
                    turn.ids.add(uid)
                self._sort()
                return True
        self._insert(MemoryTurn(speaker, addressee, text, start, end, False, {uid} if uid else set()))
        return True

    def add_turn(self, turn: DialogueTurn) -> bool:
        """Remember a robot's reply (or any published turn); a repeat of the same turn is ignored."""
        text = ' '.join((turn.text or '').split())
        start, end = float(turn.start), float(turn.end)
        if not text or not turn.speaker or not (math.isfinite(start) and math.isfinite(end)):
            return False
        end = max(end, start)
        for known in self._turns:
            if known.speaker != turn.speaker:
                continue
            if (turn.utterance_id and turn.utterance_id in known.ids) or \
                    (abs(known.start - start) < 1e-3 and known.text == text):
                known.text, known.end = text, max(known.end, end)
                return False
        self._insert(MemoryTurn(turn.speaker, turn.addressee or OTHERS, text, start, end, True,
                                {turn.utterance_id} if turn.utterance_id else set()))
        return True

    def render(self, me: str, exclude: tuple[float, float] | None = None) -> list[dict]:
        """Chat messages for robot ``me``; turns overlapping ``exclude`` (the turn being answered) left out."""
        messages = []
        for turn in self._turns:
            if exclude is not None and not turn.is_robot and turn.overlap(*exclude) >= SAME_UTTERANCE_OVERLAP:
                continue
            if turn.speaker == me:
                messages.append({'role': 'assistant', 'content': turn.text})
            else:
                messages.append({'role': 'user', 'content': format_line(turn.speaker, turn.addressee, turn.text)})
        return messages

    def lines(self) -> list[str]:
        return [format_line(t.speaker, t.addressee, t.text) for t in self._turns]

    # --- internals ---------------------------------------------------------------------------
    @staticmethod
    def _same_voice(turn: MemoryTurn, speaker: str, text: str) -> bool:
        if turn.speaker == speaker or 'someone' in (turn.speaker, speaker):
            return True
        # Robots may give one voice different local ids: similar words still mean the same utterance.
        a, b = _words(turn.text), _words(text)
        return bool(a and b) and len(a & b) / len(a | b) >= 0.3

    def _insert(self, turn: MemoryTurn) -> None:
        self._turns.append(turn)
        self._sort()
        if len(self._turns) > self.max_turns:
            del self._turns[:len(self._turns) - self.max_turns]

    def _sort(self) -> None:
        self._turns.sort(key=lambda t: (t.start, t.end))
