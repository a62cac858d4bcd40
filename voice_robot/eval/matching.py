"""Which robot speech responds to which human utterance: one rule for the simulator and the evaluator.

The simulator needs it to start events that wait for a robot's response (``after: {robot_speech_of:
ID}``), the evaluator to score responses; both call these functions so they can never disagree.

Rules (scenario format, "Expected behaviour"):

* A speech act that names the utterance it replies to (``in_reply_to`` with the span
  ``reply_to_start``..``reply_to_end`` of the system's own utterance) is attributed to the scenario
  utterance whose time span overlaps that span most; ties go to the latest utterance. A named span
  that overlaps no scenario utterance attributes the speech to nothing (it answers something no
  human said, e.g. the robot's own echo). A zero-length span counts for the utterances containing it.
* A speech act that names nothing (empty ``in_reply_to``, or a name without a span) is attributed to
  the latest human utterance that ended before the speech started.
* A speech act responds to the utterance it is attributed to only if it starts after the utterance
  ends and at most ``RESPONSE_WINDOW_S`` later. A robot's response starts with its first such act
  (a filler or "one moment" counts as the onset).

Inputs are duck-typed: utterances need ``id``, ``start``, ``end`` (and ``speaker`` or
``azimuth_by_robot`` for the speaker rule); speech acts need ``robot``,
``start``, ``end``, ``in_reply_to``, ``reply_to_start``, ``reply_to_end`` (and optionally
``speech_id``, ``kind``). ``voice_robot.sim.truth`` records have these fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple, Protocol, Sequence

RESPONSE_WINDOW_S = 6.0
# A person this close to the direction a robot heard an utterance from is its speaker. People who talk
# at once around a table are 40 degrees or more apart; a robot's DOA in a noisy, reverberant room errs
# by up to about 20.
SPEAKER_DIRECTION_DEG = 30.0


class HeardFrom(NamedTuple):
    """Where a robot's hearing heard one of its final utterances (array frame, rad)."""
    robot: str
    azimuth: float


class UtteranceSpan(Protocol):
    id: str
    start: float
    end: float


class SpeechSpan(Protocol):
    robot: str
    start: float
    end: float
    in_reply_to: str
    reply_to_start: float
    reply_to_end: float


def names_span(speech) -> bool:
    """True when the speech act says which utterance it replies to, with a usable time span."""
    if not getattr(speech, 'in_reply_to', ''):
        return False
    s, e = float(speech.reply_to_start), float(speech.reply_to_end)
    return math.isfinite(s) and math.isfinite(e) and e >= s and (s > 0 or e > 0)


def overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return min(a_end, b_end) - max(a_start, b_start)


def _speaker_bearing(u, robot: str, bearings: Mapping[str, Mapping[str, float]] | None) -> float | None:
    if bearings is not None:
        return bearings.get(robot, {}).get(getattr(u, 'speaker', ''))
    return getattr(u, 'azimuth_by_robot', {}).get(robot)


def _from_heard_direction(u, heard_from: HeardFrom | None,
                          bearings: Mapping[str, Mapping[str, float]] | None) -> bool:
    if heard_from is None or not math.isfinite(heard_from.azimuth):
        return False
    bearing = _speaker_bearing(u, heard_from.robot, bearings)
    if bearing is None:
        return False
    d = math.atan2(math.sin(bearing - heard_from.azimuth), math.cos(bearing - heard_from.azimuth))
    return abs(math.degrees(d)) <= SPEAKER_DIRECTION_DEG


def attribute_speech(speech, utterances: Iterable, heard: Mapping[str, HeardFrom] | None = None,
                     bearings: Mapping[str, Mapping[str, float]] | None = None) -> str | None:
    """Id of the scenario utterance ``speech`` replies to, or None.

    ``heard``: system utterance id -> where a robot heard it; ``bearings``: robot -> person -> azimuth
    (without it, utterances carry their speaker's azimuth per robot in ``azimuth_by_robot``).
    """
    utterances = list(utterances)
    if names_span(speech):
        s, e = float(speech.reply_to_start), float(speech.reply_to_end)
        heard_from = (heard or {}).get(speech.in_reply_to)
        best, best_key = None, None
        for u in utterances:
            if e > s:
                amount = overlap(s, e, u.start, u.end)
                if amount <= 0:
                    continue
            else:
                if not (u.start <= s <= u.end):
                    continue
                amount = 0.0
            key = (_from_heard_direction(u, heard_from, bearings), amount, u.start, u.end)
            if best_key is None or key >= best_key:
                best, best_key = u, key
        return best.id if best is not None else None
    ended = [u for u in utterances if u.end <= speech.start]
    if not ended:
        return None
    return max(ended, key=lambda u: (u.end, u.start)).id


def is_response(speech_start: float, utterance_end: float, window_s: float = RESPONSE_WINDOW_S) -> bool:
    """A speech act responds only if it starts after the utterance ends and within the window."""
    return utterance_end < speech_start <= utterance_end + window_s


@dataclass
class Response:
    """One robot's response to one utterance: its first speech act sets the onset."""
    utterance_id: str
    robot: str
    onset: float
    end: float
    speech_ids: list[str] = field(default_factory=list)


def find_responses(utterances: Sequence, speeches: Iterable, window_s: float = RESPONSE_WINDOW_S,
                   heard: Mapping[str, HeardFrom] | None = None,
                   bearings: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, list[Response]]:
    """For every utterance id, the robots that responded, earliest onset first.

    ``end`` is the end of the robot's last speech act attributed to the utterance that started
    after it (a filler followed by the answer ends with the answer).
    """
    by_id = {u.id: u for u in utterances}
    acts: dict[tuple[str, str], list] = {}
    for speech in speeches:
        target = attribute_speech(speech, utterances, heard, bearings)
        if target is None:
            continue
        if speech.start <= by_id[target].end:
            continue
        acts.setdefault((target, speech.robot), []).append(speech)
    out: dict[str, list[Response]] = {u.id: [] for u in utterances}
    for (target, robot), items in acts.items():
        items.sort(key=lambda s: s.start)
        first = items[0]
        if not is_response(first.start, by_id[target].end, window_s):
            continue
        out[target].append(Response(target, robot, first.start, max(s.end for s in items),
                                    [getattr(s, 'speech_id', '') for s in items]))
    for responses in out.values():
        responses.sort(key=lambda r: (r.onset, r.robot))
    return out


def first_response(utterance_id: str, utterances: Sequence, speeches: Iterable,
                   window_s: float = RESPONSE_WINDOW_S) -> Response | None:
    responses = find_responses(utterances, speeches, window_s).get(utterance_id, [])
    return responses[0] if responses else None
