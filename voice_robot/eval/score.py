"""Scores a scenario run with the metrics of ``voice_robot/eval@1`` (docs/scenario-format.md).

Conventions where the spec leaves room, all documented in docs/scenario-format.md (Evaluator):
* A robot "responds" to an utterance when one of its speech acts is attributed to it (matching rules in
  ``voice_robot.eval.matching``: time overlap and speaker, the speaker being the direction the robot's
  hearing published with the named final) and starts after the utterance ends and within 6 s; fillers
  count.
* Counts are per utterance: an utterance answered by two robots is one double response.
* ``false_yields``: a backchannel that starts while a robot speaks, and that robot's act ends cancelled
  between the backchannel's onset and 1 s after its end (a natural end of the act is not a yield).
* ``speaker_attribution_accuracy`` covers every human utterance, backchannels included; the system's
  voice id for an utterance is the id with the most overlapping speech over all robots.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from voice_robot.eval.matching import RESPONSE_WINDOW_S, HeardFrom, attribute_speech
from voice_robot.eval.records import OTHERS, ROBOTS, ScenarioRecord, SystemDecision, TruthUtterance

EVAL_FORMAT = 'voice_robot/eval@1'
YIELD_CAP_MS = 2000.0
FALSE_YIELD_WINDOW_S = 1.0


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def percentiles(values: list[float]) -> dict:
    if not values:
        return {'p50': None, 'p95': None, 'n': 0}
    arr = np.asarray(values, dtype=float)
    return {'p50': round(float(np.percentile(arr, 50)), 1), 'p95': round(float(np.percentile(arr, 95)), 1),
            'n': int(arr.size)}


def angle_error_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a - b), math.cos(a - b))))


def heard_directions(record: ScenarioRecord) -> dict[str, HeardFrom]:
    """System utterance id -> where its robot heard it (the speaker a reply to it answers)."""
    return {su.utterance_id: HeardFrom(su.robot, su.azimuth) for su in record.system_utterances
            if su.azimuth is not None}


def attributed(speech, record: ScenarioRecord, heard: dict[str, HeardFrom] | None = None) -> str | None:
    """The scenario utterance a speech act replies to (voice_robot.eval.matching.attribute_speech)."""
    return attribute_speech(speech, record.utterances, heard_directions(record) if heard is None else heard)


def responders_by_utterance(record: ScenarioRecord) -> dict[str, dict[str, float]]:
    """utterance id -> {robot: onset of its first attributed speech} (valid responses only)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    heard = heard_directions(record)
    for speech in record.speech:
        uid = attributed(speech, record, heard)
        if uid is None:
            continue
        utt = next(u for u in record.utterances if u.id == uid)
        if not (utt.end <= speech.start <= utt.end + RESPONSE_WINDOW_S):
            continue
        prev = out[uid].get(speech.robot)
        if prev is None or speech.start < prev:
            out[uid][speech.robot] = speech.start
    return out


def expected_class(utt: TruthUtterance, robots: list[str], responders: dict[str, dict[str, float]]) -> str:
    """Ground-truth addressee class: a robot name, 'robots', or 'others'."""
    to = utt.to
    if isinstance(to, dict) and 'responder_of' in to:
        answered = responders.get(to['responder_of'], {})
        if len(answered) >= 1:
            return min(answered, key=answered.get)   # the (first) robot that responded
        return ROBOTS
    if isinstance(to, str):
        if to in robots:
            return to
        if to == ROBOTS:
            return ROBOTS
    return OTHERS


def decision_for(utt: TruthUtterance, decisions: list[SystemDecision]) -> SystemDecision | None:
    """The system decision whose utterance overlaps this one most (None: never detected)."""
    best, best_ov = None, 0.0
    for d in decisions:
        ov = overlap(utt.start, utt.end, d.start, d.end)
        if ov > best_ov:
            best, best_ov = d, ov
    return best


def decision_class(decision: str, robots: list[str]) -> str:
    if decision in robots or decision == ROBOTS:
        return decision
    return OTHERS


def coarse(cls: str) -> str:
    return cls if cls in (ROBOTS, OTHERS) else 'robot'


def speaking_intervals(record: ScenarioRecord) -> dict[str, list[tuple[float, float, object]]]:
    by_robot: dict[str, list] = defaultdict(list)
    for s in record.speech:
        by_robot[s.robot].append((s.start, s.end, s))
    return by_robot


def overlap_total(record: ScenarioRecord) -> float:
    """Total time during which two or more robots speak."""
    events = []
    for s in record.speech:
        if s.end > s.start:
            events.append((s.start, 1, s.robot))
            events.append((s.end, -1, s.robot))
    events.sort(key=lambda e: (e[0], e[1]))
    active: Counter = Counter()
    total, last = 0.0, None
    for t, delta, robot in events:
        if last is not None and sum(1 for v in active.values() if v > 0) >= 2:
            total += t - last
        active[robot] += delta
        last = t
    return total


def score_scenario(record: ScenarioRecord) -> dict:
    robots = record.robots
    responders = responders_by_utterance(record)
    rows = []
    counts = Counter()
    latencies, yields = [], []
    addressee_right = response_right = scored = 0
    confusion: dict[str, Counter] = defaultdict(Counter)

    for utt in record.utterances:
        answered = responders.get(utt.id, {})
        decision = decision_for(utt, record.decisions)
        row = {'id': utt.id, 'speaker': utt.speaker, 'start': round(utt.start, 3), 'end': round(utt.end, 3),
               'text': utt.text, 'to': utt.to, 'backchannel': utt.backchannel, 'interrupts': utt.interrupts,
               'responders': sorted(answered), 'detected': decision is not None}
        if decision is not None:
            row.update(decision=decision.decision, system_utterance=decision.utterance_id,
                       transcript=decision.transcript,
                       probabilities=dict(zip(decision.candidates, [round(p, 3) for p in decision.probabilities])),
                       evidence=decision.evidence)
        if not utt.backchannel:
            scored += 1
            expected = expected_class(utt, robots, responders)
            got = decision_class(decision.decision, robots) if decision is not None else 'undetected'
            ok_addressee = got == expected
            addressee_right += ok_addressee
            confusion[coarse(expected)][coarse(got) if got != 'undetected' else 'undetected'] += 1
            if expected == OTHERS:
                ok_response = not answered
                if answered:
                    counts['spurious_responses'] += 1
            elif expected == ROBOTS:
                ok_response = len(answered) == 1
                if not answered:
                    counts['missed_responses'] += 1
            else:
                ok_response = set(answered) == {expected}
                if not answered:
                    counts['missed_responses'] += 1
                elif set(answered) - {expected}:
                    counts['wrong_robot_responses'] += 1
            if len(answered) >= 2:
                counts['double_responses'] += 1
            response_right += ok_response
            if ok_response and answered:
                latency = (min(answered.values()) - utt.end) * 1000.0
                latencies.append(latency)
                row['latency_ms'] = round(latency, 1)
            row.update(expected=expected, addressee_correct=ok_addressee, response_correct=ok_response)
        elif answered:
            counts['backchannel_replies'] += 1
        rows.append(row)

    # Barge-in and backchannels against whoever was speaking at their onset.
    speaking = speaking_intervals(record)
    for utt in record.utterances:
        if not (utt.interrupts or utt.backchannel):
            continue
        ongoing = [(robot, s) for robot, acts in speaking.items() for (t0, t1, s) in acts if t0 < utt.start < t1]
        if utt.interrupts:
            if not ongoing:
                counts['yields_not_measured'] += 1
                continue
            for robot, s in ongoing:
                lat = min((s.end - utt.start) * 1000.0, YIELD_CAP_MS)
                yields.append(lat)
                next(r for r in rows if r['id'] == utt.id).setdefault('yield_latency_ms', {})[robot] = round(lat, 1)
        else:
            for robot, s in ongoing:
                if s.cancelled and utt.start <= s.end <= utt.end + FALSE_YIELD_WINDOW_S:
                    counts['false_yields'] += 1
                    next(r for r in rows if r['id'] == utt.id)['false_yield'] = robot

    attribution = speaker_attribution(record)
    doa_errors = doa_errors_deg(record)
    gaze_right, gaze_total = gaze_targets_right(record)
    duration = max(record.duration_s, 1e-9)
    metrics = {
        'addressee_accuracy': round(addressee_right / scored, 4) if scored else None,
        'response_accuracy': round(response_right / scored, 4) if scored else None,
        'missed_responses': counts['missed_responses'],
        'wrong_robot_responses': counts['wrong_robot_responses'],
        'double_responses': counts['double_responses'],
        'spurious_responses': counts['spurious_responses'],
        'robot_overlap_s': round(overlap_total(record), 3),
        'response_latency_ms': percentiles(latencies),
        'yield_latency_ms': percentiles(yields),
        'yields_not_measured': counts['yields_not_measured'],
        'false_yields': counts['false_yields'],
        'speaker_attribution_accuracy': attribution['accuracy'],
        'doa_error_deg': round(float(np.median(doa_errors)), 2) if doa_errors else None,
        'gaze_target_accuracy': round(gaze_right / gaze_total, 4) if gaze_total else None,
        'realtime_factor': round(record.wall_time_s / duration, 3),
        'backchannel_replies': counts['backchannel_replies'],
        'utterances_scored': scored,
        'utterances_detected': sum(1 for r in rows if r['detected']),
        'doa_pairs': len(doa_errors),
        'robot_speech_as_human': robot_speech_as_human(record),
        'clip_speech_as_human': clip_speech_as_human(record),
        'addressee_confusion': {k: dict(v) for k, v in sorted(confusion.items())},
    }
    for row in rows:
        vid = attribution['by_utterance'].get(row['id'])
        row['system_voice_id'] = vid
        row['attributed_to'] = attribution['mapping'].get(vid) if vid else None
    internals = {'addressee_right': addressee_right, 'response_right': response_right, 'scored': scored,
                 'latencies': latencies, 'yields': yields, 'doa_errors': doa_errors,
                 'attribution_correct': attribution['correct'], 'attribution_total': attribution['total'],
                 'gaze_right': gaze_right, 'gaze_total': gaze_total,
                 'confusion': confusion, 'wall': record.wall_time_s, 'duration': record.duration_s}
    return {'name': record.name, 'metrics': metrics, 'utterances': rows, '_internals': internals}


def gaze_targets_right(record: ScenarioRecord) -> tuple[int, int]:
    """(right, scored) over the system's faces/attention samples: a sample is scored once its face's
    human has turned to where they look (truth), and is right when it names that robot, a person
    (any: which one needs a person mapping), or 'none' for looking away, down or at a bearing."""
    by_human: dict[str, list] = defaultdict(list)
    for h in sorted(record.head_targets, key=lambda h: h.t):
        by_human[h.human].append(h)
    starts = {human: [h.t for h in turns] for human, turns in by_human.items()}
    robots, humans = set(record.robots), set(record.humans)
    right = total = 0
    for g in record.gaze:
        human = record.face_humans.get(f'{g.robot}/{g.face_id}')
        i = bisect.bisect_right(starts.get(human, []), g.t)
        if i == 0 or g.t < by_human[human][i - 1].arrive:
            continue
        target = by_human[human][i - 1].target
        truth = target if target in robots else 'person' if target in humans else 'none'
        said = 'person' if g.looked_at.startswith('person:') else g.looked_at
        total += 1
        right += said == truth
    return right, total


def speaker_attribution(record: ScenarioRecord) -> dict:
    """Best one-to-one mapping of system voice ids to humans (Hungarian), then the share right."""
    by_utt: dict[str, str] = {}
    for utt in record.utterances:
        weights: Counter = Counter()
        for su in record.system_utterances:
            if su.voice_id:
                weights[su.voice_id] += overlap(utt.start, utt.end, su.start, su.end)
        weights = Counter({k: v for k, v in weights.items() if v > 0})
        if weights:
            by_utt[utt.id] = weights.most_common(1)[0][0]
    total = len(record.utterances)
    voices = sorted(set(by_utt.values()))
    humans = sorted({u.speaker for u in record.utterances})
    mapping: dict[str, str] = {}
    correct = 0
    if voices and humans:
        table = np.zeros((len(voices), len(humans)))
        for utt in record.utterances:
            vid = by_utt.get(utt.id)
            if vid:
                table[voices.index(vid), humans.index(utt.speaker)] += 1
        rows, cols = linear_sum_assignment(-table)
        for r, c in zip(rows, cols):
            mapping[voices[r]] = humans[c]
            correct += int(table[r, c])
    return {'accuracy': round(correct / total, 4) if total else None, 'mapping': mapping,
            'by_utterance': by_utt, 'correct': correct, 'total': total}


def doa_errors_deg(record: ScenarioRecord) -> list[float]:
    """Per robot and utterance: the direction of the robot's most-overlapping system utterance."""
    errors = []
    for utt in record.utterances:
        for robot, truth in utt.azimuth_by_robot.items():
            best, best_ov = None, 0.0
            for su in record.system_utterances:
                if su.robot != robot:
                    continue
                ov = overlap(utt.start, utt.end, su.start, su.end)
                if ov > best_ov:
                    best, best_ov = su, ov
            if best is not None:
                errors.append(angle_error_deg(best.azimuth, truth))
    return errors


CLIP_DIRECTION_DEG = 15.0    # a system utterance this close to a played clip's bearing is that clip


def _no_human(record: ScenarioRecord, su) -> bool:
    return sum(overlap(su.start, su.end, u.start, u.end) for u in record.utterances) < 0.1 * (su.end - su.start)


def _from_clip(record: ScenarioRecord, su) -> bool:
    """Does the utterance point at a recording played in the room (a radio, a TV)?"""
    return su.azimuth is not None and any(
        angle_error_deg(su.azimuth, az) <= CLIP_DIRECTION_DEG for az in record.clip_azimuths.get(su.robot, {}).values())


def robot_speech_as_human(record: ScenarioRecord) -> int:
    """System utterances that overlap robot speech but no human speech: robot voices taken for people.
    One that points at a recording played in the room is that recording (``clip_speech_as_human``)."""
    count = 0
    for su in record.system_utterances:
        robot = sum(overlap(su.start, su.end, s.start, s.end) for s in record.speech)
        if _no_human(record, su) and robot > 0.5 * (su.end - su.start) and not _from_clip(record, su):
            count += 1
    return count


def clip_speech_as_human(record: ScenarioRecord) -> int:
    """System utterances of no person that point at a recording played in the room (radio or TV speech)."""
    return sum(1 for su in record.system_utterances if _no_human(record, su) and _from_clip(record, su))


def aggregate(scored: list[dict]) -> dict:
    """Metrics over all utterances of all scenarios (counts summed, shares and percentiles pooled)."""
    if not scored:
        return {}
    ints = [s['_internals'] for s in scored]
    total = sum(i['scored'] for i in ints)
    sums = {k: sum(s['metrics'][k] for s in scored) for k in (
        'missed_responses', 'wrong_robot_responses', 'double_responses', 'spurious_responses',
        'yields_not_measured', 'false_yields', 'backchannel_replies', 'utterances_scored', 'utterances_detected',
        'doa_pairs', 'robot_speech_as_human', 'clip_speech_as_human')}
    doa = [e for i in ints for e in i['doa_errors']]
    gaze_total = sum(i['gaze_total'] for i in ints)
    attr_total = sum(i['attribution_total'] for i in ints)
    confusion: dict[str, Counter] = defaultdict(Counter)
    for i in ints:
        for k, v in i['confusion'].items():
            confusion[k].update(v)
    duration = sum(i['duration'] for i in ints)
    return {
        'addressee_accuracy': round(sum(i['addressee_right'] for i in ints) / total, 4) if total else None,
        'response_accuracy': round(sum(i['response_right'] for i in ints) / total, 4) if total else None,
        **{k: sums[k] for k in ('missed_responses', 'wrong_robot_responses', 'double_responses', 'spurious_responses')},
        'robot_overlap_s': round(sum(s['metrics']['robot_overlap_s'] for s in scored), 3),
        'response_latency_ms': percentiles([x for i in ints for x in i['latencies']]),
        'yield_latency_ms': percentiles([x for i in ints for x in i['yields']]),
        'yields_not_measured': sums['yields_not_measured'],
        'false_yields': sums['false_yields'],
        'speaker_attribution_accuracy': round(sum(i['attribution_correct'] for i in ints) / attr_total, 4)
        if attr_total else None,
        'doa_error_deg': round(float(np.median(doa)), 2) if doa else None,
        'gaze_target_accuracy': round(sum(i['gaze_right'] for i in ints) / gaze_total, 4) if gaze_total else None,
        'realtime_factor': round(sum(i['wall'] for i in ints) / duration, 3) if duration else None,
        'backchannel_replies': sums['backchannel_replies'],
        'utterances_scored': sums['utterances_scored'],
        'utterances_detected': sums['utterances_detected'],
        'doa_pairs': sums['doa_pairs'],
        'robot_speech_as_human': sums['robot_speech_as_human'],
        'clip_speech_as_human': sums['clip_speech_as_human'],
        'addressee_confusion': {k: dict(v) for k, v in sorted(confusion.items())},
        'scenarios': len(scored),
    }


def report(scored: list[dict], extra: dict | None = None) -> dict:
    """The voice_robot/eval@1 document."""
    doc = {'format': EVAL_FORMAT,
           'scenarios': [{k: v for k, v in s.items() if not k.startswith('_')} for s in scored],
           'aggregate': aggregate(scored)}
    if extra:
        doc.update(extra)
    return doc
