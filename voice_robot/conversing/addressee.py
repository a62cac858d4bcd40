"""Whom is an utterance for: one robot, the robots as a group, or others (a person, or nobody)?

A conditional-logit model (McFadden's choice model): every candidate c gets a score
``w_kind(c) . f(c)`` from interpretable cues and P(c) = softmax(score). Robot candidates share one weight
vector, so the model works for any number of robots. Cues:

* words: vocative ("Ada, ...", "hey Ada", "..., Ada?") vs third-person mention ("Ada got it wrong",
  "ask him"), group words ("one of you", "anyone"), requests, thinking aloud ("hmm, where did I ...");
* gaze: the share of the turn the speaker looked at each robot, at a person, or at nothing, and where
  the head was at the end;
* conversation: the robot this person was just talking with (and whether it asked a question), a
  person-to-person exchange in progress;
* geometry: the nearest robot; whether a robot is speaking (barge-in to it).

Weights are fitted by ``voice-robot fit-addressee`` on the project's own scenario library (never on the
public scenarios) and ship in ``voice_robot/conversing/data/addressee_weights.yaml``. Every estimate
carries the per-cue evidence (value and contribution in log-odds).

Each robot estimates from its own perception, publishes the local estimate, then fuses the estimates
every robot published for the same turn (mean of log-probabilities) so that all robots reach the same
decision. Unsure decisions degrade to "others": staying silent beats answering for the wrong robot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.config import AddresseeConfig, TurnConfig
from voice_robot.conversing.context import ConversationContext
from voice_robot.conversing.cues import text_cues
from voice_robot.conversing.turn import Turn, TurnTracker
from voice_robot.pipeline import Stage

GROUP, OTHERS = m.GROUP, m.OTHERS
NEAREST_TIE_M = 0.25
WEIGHTS_FORMAT = 'voice_robot/addressee_weights@1'
DEFAULT_WEIGHTS_FILE = Path(__file__).with_name('data') / 'addressee_weights.yaml'

ROBOT_FEATURES = ('bias', 'vocative', 'mention', 'other_vocative', 'gaze', 'gaze_end', 'partner', 'question',
                  'nearest', 'you_gaze', 'speaking')
GROUP_FEATURES = ('bias', 'group_words', 'gaze_none', 'request_unaddressed', 'gaze_split')
OTHERS_FEATURES = ('gaze_person', 'mention_any', 'pronoun', 'musing', 'side_talk', 'no_request',
                   'backchannel', 'no_speaker', 'fragment')
KINDS = {'robot': ROBOT_FEATURES, GROUP: GROUP_FEATURES, OTHERS: OTHERS_FEATURES}

# Priors used before any fit (and as the starting point of the fit): signs and rough sizes from the
# addressee-detection literature; the fitted file replaces them.
PRIOR_WEIGHTS = {
    'robot': {'bias': -0.5, 'vocative': 5.0, 'mention': -2.0, 'other_vocative': -3.0, 'gaze': 3.0,
              'gaze_end': 1.0, 'partner': 1.5, 'question': 1.5, 'nearest': 0.3, 'you_gaze': 1.0, 'speaking': 0.5},
    GROUP: {'bias': -1.5, 'group_words': 5.0, 'gaze_none': 0.8, 'request_unaddressed': 1.5, 'gaze_split': 1.0},
    OTHERS: {'gaze_person': 3.0, 'mention_any': 1.5, 'pronoun': 1.5, 'musing': 2.5, 'side_talk': 1.5,
             'no_request': 0.8, 'backchannel': 4.0, 'no_speaker': 0.5, 'fragment': 1.5},
}


@dataclass
class Weights:
    values: dict[str, dict[str, float]]
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> 'Weights':
        path = Path(path) if path else DEFAULT_WEIGHTS_FILE
        if not path.exists():
            if path == DEFAULT_WEIGHTS_FILE:
                return cls({k: dict(v) for k, v in PRIOR_WEIGHTS.items()}, {'source': 'priors'})
            from voice_robot.config.errors import ConfigError
            raise ConfigError(path, '<file>', 'an addressee weights file (not found)')
        data = yaml.safe_load(path.read_text()) or {}
        from voice_robot.config.errors import ConfigError
        if data.get('format') != WEIGHTS_FORMAT:
            raise ConfigError(path, 'format', f'{WEIGHTS_FORMAT!r}')
        values = {k: dict(v) for k, v in PRIOR_WEIGHTS.items()}
        for kind, feats in (data.get('weights') or {}).items():
            if kind not in KINDS:
                raise ConfigError(path, f'weights.{kind}', f'one of {", ".join(KINDS)}')
            for name, w in feats.items():
                if name not in KINDS[kind] or not isinstance(w, (int, float)) or not math.isfinite(w):
                    raise ConfigError(path, f'weights.{kind}.{name}', f'a number for one of {", ".join(KINDS[kind])}')
                values[kind][name] = float(w)
        return cls(values, {k: v for k, v in data.items() if k != 'weights'})

    def save(self, path: str | Path, meta: dict | None = None) -> None:
        doc = {'format': WEIGHTS_FORMAT, **(meta or self.meta),
               'weights': {k: {n: round(float(w), 4) for n, w in v.items()} for k, v in self.values.items()}}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))

    def vector(self) -> np.ndarray:
        return np.array([self.values[k][n] for k in KINDS for n in KINDS[k]])

    @classmethod
    def from_vector(cls, vec, meta=None) -> 'Weights':
        values, i = {}, 0
        for kind, names in KINDS.items():
            values[kind] = {}
            for n in names:
                values[kind][n] = float(vec[i])
                i += 1
        return cls(values, meta or {})


def kind_of(candidate: str) -> str:
    return candidate if candidate in (GROUP, OTHERS) else 'robot'


# --- features -------------------------------------------------------------------------------------

@dataclass
class TurnInput:
    """What the estimator knows about one turn (all of it from this robot's perception)."""
    utterance_id: str
    start: float
    end: float
    text: str
    voice_id: str
    azimuth: float | None
    backchannel_probability: float = 0.0


def turn_features(turn: TurnInput, me: RobotSpec, ctx: ConversationContext, now: float) -> dict[str, dict[str, float]]:
    robots = list(ctx.robots)
    names = {name: spec.names() for name, spec in ctx.robots.items()}
    cues = text_cues(turn.text, names)
    person = ctx.person_for(turn.voice_id, turn.azimuth, me)
    gaze = ctx.attention(person.person_id, turn.start, turn.end) if person else {}
    gaze_end = ctx.attention(person.person_id, max(turn.start, turn.end - 0.6), turn.end) if person else {}
    partner, age, asked = ctx.last_robot_partner(turn.voice_id, person.person_id if person else '', now)
    distances = ctx.robot_distances(person.position) if person else {}
    # Robots about as near as the nearest all count as nearest: centimetres (or the person position's
    # noise) must not decide who answers a request to the group, or who is more likely addressed.
    closest = min(distances.values(), default=math.inf)
    nearest = {r for r, d in distances.items() if d <= closest + NEAREST_TIE_M}
    speaking = set(ctx.robot_speaking(now))
    vocatives = {r: cues.names[r].vocative for r in robots}
    robot_gaze_total = sum(gaze.get(r, 0.0) for r in robots)
    looked_robots = sum(1 for r in robots if gaze.get(r, 0.0) > 0.2)

    feats: dict[str, dict[str, float]] = {}
    for r in robots:
        feats[r] = {
            'bias': 1.0,
            'vocative': vocatives[r],
            'mention': cues.names[r].mention,
            'other_vocative': max([v for o, v in vocatives.items() if o != r], default=0.0),
            'gaze': gaze.get(r, 0.0),
            'gaze_end': gaze_end.get(r, 0.0),
            'partner': math.exp(-age / 15.0) if partner == r and age is not None else 0.0,
            'question': 1.0 if partner == r and asked and age is not None and age < 10.0 else 0.0,
            'nearest': 1.0 if r in nearest else 0.0,
            'you_gaze': cues.second_person * gaze.get(r, 0.0),
            'speaking': 1.0 if r in speaking else 0.0,
        }
    any_vocative = max(vocatives.values(), default=0.0)
    feats[GROUP] = {
        'bias': 1.0,
        'group_words': cues.group,
        'gaze_none': gaze.get('none', 0.0),
        'request_unaddressed': cues.request * (1 - any_vocative) * (1 - robot_gaze_total) * (1 - gaze.get('person', 0.0)),
        'gaze_split': 1.0 if looked_robots >= 2 else 0.0,
    }
    feats[OTHERS] = {
        'gaze_person': gaze.get('person', 0.0),
        'mention_any': max([cues.names[r].mention for r in robots], default=0.0),
        'pronoun': cues.third_person_pronoun,
        'musing': cues.musing,
        'side_talk': ctx.recent_human_exchange(turn.voice_id, now),
        'no_request': 1.0 - cues.request,
        # The transcript decides here: the acoustic backchannel guess is for barge-in, and a request cut
        # short by a segmentation error sounds just as short.
        'backchannel': cues.backchannel_like,
        'no_speaker': 1.0 if person is None else 0.0,
        # One word that is neither a name nor a listener response: usually a scrap of speech, not a turn.
        'fragment': 1.0 if cues.words <= 1 and any_vocative < 0.5 and not cues.backchannel_like else 0.0,
    }
    return feats


def scores(feats: dict[str, dict[str, float]], weights: Weights) -> dict[str, float]:
    out = {}
    for cand, f in feats.items():
        w = weights.values[kind_of(cand)]
        out[cand] = sum(w[n] * v for n, v in f.items())
    return out


def softmax(values: dict[str, float]) -> dict[str, float]:
    mx = max(values.values())
    ex = {k: math.exp(v - mx) for k, v in values.items()}
    z = sum(ex.values())
    return {k: v / z for k, v in ex.items()}


def decide(probs: dict[str, float], min_probability: float) -> str:
    best = max(probs, key=probs.get)
    if best != OTHERS and probs[best] < min_probability:
        return OTHERS
    return best


class AddresseeModel:
    def __init__(self, robots: list[str], weights: Weights, min_probability: float = 0.5):
        self.robots = robots
        self.weights = weights
        self.min_probability = min_probability

    @property
    def candidates(self) -> list[str]:
        return list(self.robots) + [GROUP, OTHERS]

    def estimate(self, turn: TurnInput, feats: dict[str, dict[str, float]], robot: str, now: float) -> m.AddresseeEstimate:
        probs = softmax(scores(feats, self.weights))
        evidence = []
        for cand in self.candidates:
            w = self.weights.values[kind_of(cand)]
            for name, value in feats[cand].items():
                if value:
                    evidence.append(m.CueEvidence(name, cand, float(value), float(w[name] * value)))
        cands = self.candidates
        return m.AddresseeEstimate(
            utterance_id=turn.utterance_id, robot=robot, candidates=cands,
            probabilities=[float(probs[c]) for c in cands], decision=decide(probs, self.min_probability),
            utterance_start=turn.start, utterance_end=turn.end, voice_id=turn.voice_id, transcript=turn.text,
            evidence=evidence, fused=False, stamp=now)


def fuse(estimates: list[m.AddresseeEstimate], robot: str, min_probability: float, now: float) -> m.AddresseeEstimate:
    """Combine every robot's local estimate of one turn: mean log-probability, renormalised.

    Deterministic in the set of estimates, so robots that received the same estimates agree.
    """
    estimates = sorted(estimates, key=lambda e: e.robot)
    cands = list(estimates[0].candidates)
    logp = {c: 0.0 for c in cands}
    for e in estimates:
        for c in cands:
            logp[c] += math.log(max(e.probability(c), 1e-6))
    probs = softmax({c: v / len(estimates) for c, v in logp.items()})
    # The transcript and span of the longest-heard version of the turn.
    ref = max(estimates, key=lambda e: (len(e.transcript), e.utterance_end - e.utterance_start))
    evidence = [m.CueEvidence(f'{e.robot}:{ev.cue}', ev.candidate, ev.value, ev.contribution / len(estimates))
                for e in estimates for ev in e.evidence]
    own = next((e for e in estimates if e.robot == robot), ref)
    return m.AddresseeEstimate(
        utterance_id=own.utterance_id, robot=robot, candidates=cands, probabilities=[probs[c] for c in cands],
        decision=decide(probs, min_probability), utterance_start=min(e.utterance_start for e in estimates),
        utterance_end=max(e.utterance_end for e in estimates), voice_id=own.voice_id or ref.voice_id,
        transcript=ref.transcript, evidence=evidence, fused=True, stamp=now)


def mostly_within(start: float, end: float, other_start: float, other_end: float) -> bool:
    """Half or more of [start, end] lies within [other_start, other_end]."""
    return min(end, other_end) - max(start, other_start) >= 0.5 * max(end - start, 0.05)


def same_turn(a: m.AddresseeEstimate, b: m.AddresseeEstimate) -> bool:
    """Two robots' estimates describe the same human turn when their spans overlap most of the shorter."""
    shorter, longer = sorted((a, b), key=lambda e: e.utterance_end - e.utterance_start)
    return mostly_within(shorter.utterance_start, shorter.utterance_end, longer.utterance_start, longer.utterance_end)


def _decided_already(decided: m.AddresseeEstimate, est: m.AddresseeEstimate) -> bool:
    """A late estimate adds nothing to a decision on mostly its own span. One that is mostly beyond it
    (the decision was on a fragment another robot heard at the start of this turn) still needs its own."""
    return mostly_within(est.utterance_start, est.utterance_end, decided.utterance_start, decided.utterance_end)


def _another_utterance(estimates: list[m.AddresseeEstimate], est: m.AddresseeEstimate) -> bool:
    """The same robot's hearing already gave this span another utterance: two segments heard at once
    (two talkers, or a fragment beside a real turn) are two turns, however much they overlap."""
    return any(e.robot == est.robot and e.utterance_id != est.utterance_id for e in estimates)


@dataclass
class _Pending:
    first_seen: float
    estimates: list[m.AddresseeEstimate]


class AddresseeStage(Stage):
    """Turns from this robot's hearing -> local estimate -> fused estimate on /conversation/addressee."""
    name = 'addressee'
    outputs = ('/conversation/addressee',)

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], config: AddresseeConfig, turn_config: TurnConfig,
                 weights: Weights | None = None):
        super().__init__(robot.name)
        self.me = robot
        self.config = config
        self.context = ConversationContext(robot.name, robots)
        self.turns = TurnTracker(turn_config, {r.name: r.names() for r in robots})
        self.model = AddresseeModel([r.name for r in robots],
                                    weights or Weights.load(config.weights_file), config.min_probability)
        self.pending: list[_Pending] = []
        # Recent fused decisions, each with the estimates it was fused from (bounded).
        self.fused: list[tuple[m.AddresseeEstimate, list[m.AddresseeEstimate]]] = []
        self.features_log: list[dict] = []             # for fitting; bounded
        self.robot_names = [r.name for r in robots]
        # Audio time hearing has processed: silence not yet heard cannot end a turn (hearing may lag
        # behind the clock while it decodes speech).
        self.heard_until = -math.inf

    def inputs(self):
        handlers = {
            'audio/sources': self.on_sources,
            'hearing/utterances': self.on_utterance,
            '/conversation/addressee': self.on_estimate,
            '/persons': self.on_persons,
            '/conversation/turns': lambda t: self.context.on_turn(t),
            '/voices/identities': self.context.voices.on_identity,
        }
        for name in self.robot_names:
            handlers[f'/{name}/speech/state'] = self.context.on_speech_state
        return handlers

    def timers(self):
        return [(0.02, self.tick)]

    def on_sources(self, sources: m.SoundSources) -> None:
        if math.isfinite(sources.stamp):
            self.heard_until = max(self.heard_until, sources.stamp)

    def on_persons(self, persons: m.Persons) -> None:
        self.context.on_persons(persons, self.now())

    def on_utterance(self, u: m.Utterance) -> None:
        if u.end < u.start or not math.isfinite(u.azimuth):
            return self.drop('bad utterance', u.utterance_id)
        self.turns.on_utterance(u)

    def tick(self) -> None:
        now = self.now()
        horizon = now if self.heard_until == -math.inf else min(now, self.heard_until)
        for turn in self.turns.due(horizon):
            self.estimate_turn(turn, now)
        self._close_windows(now)

    def estimate_turn(self, turn: Turn, now: float) -> None:
        t = TurnInput(turn.utterance_id, turn.start, turn.end, turn.text, turn.voice_id, turn.azimuth,
                      turn.backchannel_probability)
        feats = turn_features(t, self.me, self.context, now)
        est = self.model.estimate(t, feats, self.robot, now)
        # Peers fuse our estimate as the topic carries it (float32 probabilities, nanosecond times);
        # fusing the same numbers here keeps every robot's fused decision the same.
        est.probabilities = [m.as_float32(p) for p in est.probabilities]
        est.utterance_start, est.utterance_end = m.as_stamped(est.utterance_start), m.as_stamped(est.utterance_end)
        if len(self.features_log) < 2000:
            self.features_log.append({'turn': t, 'features': feats, 'estimate': est})
        self.publish('/conversation/addressee', est)
        self.on_estimate(est)

    def on_estimate(self, est: m.AddresseeEstimate) -> None:
        if est.fused:
            if est.robot != self.robot:
                return
            self.context.on_decision(est)
            return
        if any(e.robot == est.robot and e.utterance_id == est.utterance_id for p in self.pending for e in p.estimates):
            return   # our own estimate comes back over the bus
        if set(est.candidates) != set(self.model.candidates):
            return self.drop('estimate with other candidates', est.robot)
        for p in self.pending:
            if any(same_turn(e, est) for e in p.estimates) and not _another_utterance(p.estimates, est):
                p.estimates = [e for e in p.estimates if e.robot != est.robot] + [est]
                return
        if any(_decided_already(f, est) and not _another_utterance(members, est) for f, members in self.fused[-20:]):
            self.stats['late peer estimates'] += 1   # the window closed; decision already taken
            return
        self.pending.append(_Pending(self.now(), [est]))
        if len(self.pending) > 32:
            self.pending.pop(0)
            self.stats['dropped: pending overflow'] += 1

    def _close_windows(self, now: float) -> None:
        everyone = len(self.robot_names)
        ready = [p for p in self.pending
                 if now - p.first_seen >= self.config.fuse_window_s or len({e.robot for e in p.estimates}) >= everyone]
        for p in ready:
            self.pending.remove(p)
            fused = fuse(p.estimates, self.robot, self.config.min_probability, now)
            self.fused.append((fused, p.estimates))
            self.fused = self.fused[-50:]
            self.context.on_decision(fused)
            self.publish('/conversation/addressee', fused)
