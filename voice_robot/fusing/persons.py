"""Persons in ``map`` from the faces and voices of all robots, with ids the robots agree on.

Evidence and how it is used:

* faces of this robot (``faces/attention``): bearing, elevation and distance give a map position,
  fused into the person that already holds that face id, else the nearest person within
  ``person_merge_m``, else a new person. Mouth opening and looked_at are kept per person.
* utterances of this robot (``hearing/utterances``): a voice id already linked to a person marks that
  person as speaking; otherwise the voice direction is compared with each person's bearing from this
  robot (gate ``voice_face_gate_deg``) and weighted by how much that person's mouth moved during the
  turn, and the voice is linked to the best person. A voice nobody can be matched with becomes a
  person of its own: triangulated when other robots heard the same voice id within
  ``peer_voice_window_s`` (their bearings come from their ``/persons``), else placed
  ``default_distance_m`` along the direction.
* other robots' ``/persons``: their persons are matched to ours (same id, same voice, or close
  position) and fill in what we cannot see (a robot without a camera gets everything from them);
  their speaking persons give bearings for triangulation.

Ids are ``person_<n>`` with n derived from what created the person (robot, face or voice id, time), so
they do not collide between robots; when two robots' persons turn out to be one, both keep the smaller
id (and remember the other as an alias), so every robot converges on the same id.

``PersonTable`` is the plain-Python core (times passed in); ``PersonManager`` is the Stage, which also
answers ``person_for_utterance`` and ``attention_during`` for the addressee estimator.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.fusing.config import FusingConfig
from voice_robot.fusing.voices import VoiceAliases, follow_aliases
from voice_robot.fusing.geometry import angle_diff, bearing_from, point_along_bearing, triangulate_bearings
from voice_robot.pipeline import Stage
from voice_robot.seeing.attention import PERSON_PREFIX, face_position_map

PROCESS_NOISE_M2_PER_S = 0.05     # a person drifts ~0.2 m/s at most while talking
VOICE_ONLY_STD_M = 1.0            # one robot's direction, no range
FACE_LINK_S = 2.0                 # a face id seen this recently still names its person
PEER_STALE_S = 2.0                # a peer's view older than this is not used
GAZE_HOLD_S = 0.5                 # one looked_at sample stands for at most this long
MOUTH_SAMPLES = 200
GAZE_SAMPLES = 900
UTTERANCE_CACHE = 256
ALIAS_CACHE = 512
MIN_SPEAKER_SCORE = 0.05          # direction fit x mouth evidence below this: nobody we know spoke
NEUTRAL_MOUTH = 0.4               # mouth evidence of a person whose face was not seen during the turn


def _finite(values: Iterable[float]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _id_key(person_id: str) -> tuple:
    """Total order on ids used by the merge rule (smaller wins on every robot)."""
    head, _, tail = person_id.rpartition('_')
    return (0, int(tail), person_id) if tail.isdigit() else (1, 0, person_id)


@dataclass
class TrackedPerson:
    person_id: str
    position: np.ndarray                    # map (x, y, z), z at the face / mouth
    variance: float                         # horizontal position variance, m^2
    created: float
    last_seen: float
    last_update: float
    faces: dict[str, float] = field(default_factory=dict)          # '<robot>/<face_id>' -> last seen
    face_confidence: float = 0.0
    last_own_face: float = -math.inf
    voice_id: str = ''
    voice_confidence: float = 0.0
    looked_at: str = ''
    looked_at_probability: float = 0.0
    looked_at_t: float = -math.inf
    speaking_until: float = -math.inf
    mouth: deque = field(default_factory=lambda: deque(maxlen=MOUTH_SAMPLES))   # (t, mouth_open)
    gaze: deque = field(default_factory=lambda: deque(maxlen=GAZE_SAMPLES))     # (t, target, prob)
    observed_by: set = field(default_factory=set)                   # robots whose own sensors saw them

    def predict(self, t: float) -> None:
        if t > self.last_update:
            self.variance += PROCESS_NOISE_M2_PER_S * (t - self.last_update)
            self.last_update = t

    def fuse(self, point, variance: float, t: float, z_weight: float = 0.5) -> None:
        """One-dimensional Kalman update of the position with an observation of given variance."""
        self.predict(t)
        p = np.asarray(point, dtype=float)
        gain = self.variance / (self.variance + max(variance, 1e-6))
        self.position[:2] = self.position[:2] + gain * (p[:2] - self.position[:2])
        self.position[2] = self.position[2] + min(1.0, gain + z_weight * (1 - gain)) * (p[2] - self.position[2])
        self.variance = (1 - gain) * self.variance
        self.last_seen = max(self.last_seen, t)

    def mouth_activity(self, t0: float, t1: float) -> list[float]:
        return [v for t, v in self.mouth if t0 <= t <= t1]

    def has_face(self, t: float, within: float = FACE_LINK_S) -> bool:
        return any(t - seen <= within for seen in self.faces.values())


class PersonTable:
    """Everyone this robot knows about, fused from faces, voices and the other robots' views."""

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], config: FusingConfig | None = None):
        self.spec = robot
        self.robot = robot.name
        self.robots = {r.name: r for r in robots}
        self.robots.setdefault(robot.name, robot)
        self.config = config or FusingConfig()
        self.persons: dict[str, TrackedPerson] = {}
        self.aliases: OrderedDict[str, str] = OrderedDict()           # old id -> id it was merged into
        self.peer_links: OrderedDict[tuple[str, str], str] = OrderedDict()   # (robot, their id) -> our id
        self.voice_bearings: dict[tuple[str, str], tuple[float, float, float]] = {}   # (robot, voice) -> (t, az, std)
        self.utterance_person: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.counters: dict[str, int] = {}

    # --- ids ---------------------------------------------------------------------------------
    def resolve(self, person_id: str) -> str:
        """The current id of a person id that may have been merged away."""
        return follow_aliases(self.aliases, person_id)

    def get(self, person_id: str) -> TrackedPerson | None:
        return self.persons.get(self.resolve(person_id))

    def _new_id(self, seed: str) -> str:
        for salt in range(1000):
            digest = hashlib.sha1(f'{seed}#{salt}'.encode()).hexdigest()
            pid = f'person_{int(digest[:8], 16) % 1_000_000}'
            if pid not in self.persons and pid not in self.aliases:
                return pid
        raise RuntimeError('no free person id')      # a million ids taken: cannot happen with max_persons

    def _create(self, point, variance: float, t: float, seed: str, person_id: str | None = None) -> TrackedPerson:
        if len(self.persons) >= self.config.max_persons:
            oldest = min(self.persons.values(), key=lambda p: p.last_seen)
            self._remove(oldest.person_id)
            self._count('persons evicted (table full)')
        pid = person_id if person_id and person_id not in self.persons else self._new_id(seed)
        self.aliases.pop(pid, None)
        person = TrackedPerson(pid, np.asarray(point, dtype=float).copy(), variance, t, t, t)
        self.persons[pid] = person
        self._count('persons created')
        return person

    def _remove(self, person_id: str) -> None:
        self.persons.pop(person_id, None)
        for key in [k for k, v in self.peer_links.items() if v == person_id]:
            del self.peer_links[key]

    def _alias(self, old: str, new: str) -> None:
        self.aliases[old] = new
        self.aliases.move_to_end(old)
        while len(self.aliases) > ALIAS_CACHE:
            self.aliases.popitem(last=False)

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def merge(self, keep_id: str, gone_id: str) -> TrackedPerson:
        """Fold person ``gone_id`` into ``keep_id``; the smaller id survives whatever the order given."""
        a, b = self.persons[keep_id], self.persons[gone_id]
        if _id_key(b.person_id) < _id_key(a.person_id):
            a, b = b, a
        t = max(a.last_update, b.last_update)
        a.predict(t)
        b.predict(t)
        w = b.variance / (a.variance + b.variance)
        a.position = w * a.position + (1 - w) * b.position
        a.variance = a.variance * b.variance / (a.variance + b.variance)
        for key, seen in b.faces.items():
            a.faces[key] = max(seen, a.faces.get(key, -math.inf))
        a.face_confidence = max(a.face_confidence, b.face_confidence)
        a.last_own_face = max(a.last_own_face, b.last_own_face)
        if b.voice_id and (not a.voice_id or b.voice_confidence > a.voice_confidence):
            a.voice_id, a.voice_confidence = b.voice_id, b.voice_confidence
        if b.looked_at_t > a.looked_at_t:
            a.looked_at, a.looked_at_probability, a.looked_at_t = b.looked_at, b.looked_at_probability, b.looked_at_t
        a.speaking_until = max(a.speaking_until, b.speaking_until)
        a.mouth = deque(sorted(list(a.mouth) + list(b.mouth)), maxlen=MOUTH_SAMPLES)
        a.gaze = deque(sorted(list(a.gaze) + list(b.gaze), key=lambda s: s[0]), maxlen=GAZE_SAMPLES)
        a.observed_by |= b.observed_by
        a.created = min(a.created, b.created)
        a.last_seen = max(a.last_seen, b.last_seen)
        self.persons.pop(b.person_id, None)
        self._alias(b.person_id, a.person_id)
        for key, v in list(self.peer_links.items()):
            if v == b.person_id:
                self.peer_links[key] = a.person_id
        self._count('persons merged')
        return a

    def rename(self, person_id: str, new_id: str) -> TrackedPerson:
        """Adopt ``new_id`` (a peer's smaller id for the same person)."""
        person = self.persons.pop(person_id)
        person.person_id = new_id
        self.persons[new_id] = person
        self.aliases.pop(new_id, None)
        self._alias(person_id, new_id)
        for key, v in list(self.peer_links.items()):
            if v == person_id:
                self.peer_links[key] = new_id
        return person

    # --- faces -------------------------------------------------------------------------------
    def face_variance(self, distance: float) -> float:
        return (0.05 + 0.07 * distance) ** 2

    def observe_faces(self, frame: m.FaceFrame, observer: RobotSpec | None = None) -> list[tuple[str, str]]:
        """Fuse one frame of faces; returns (face id, person id) pairs."""
        observer = observer or self.robots.get(frame.robot) or self.spec
        t = float(frame.stamp)
        faces = []
        for face in frame.faces:
            try:
                ok = _finite((face.bearing, face.distance, face.elevation, face.mouth_open, face.confidence)) \
                    and face.distance > 0 and isinstance(face.face_id, str) and face.face_id
                pos = face_position_map(observer, face) if ok else None
            except (AttributeError, TypeError, ValueError):
                ok, pos = False, None
            if not ok or pos is None or not _finite(pos):
                self._count('faces rejected (bad values)')
                continue
            faces.append((face, pos, f'{observer.name}/{face.face_id}'))
        for p in self.persons.values():
            p.predict(t)
        assigned: dict[int, TrackedPerson] = {}
        taken: set[str] = set()
        for i, (_, _, key) in enumerate(faces):
            owner = next((p for p in self.persons.values()
                          if key in p.faces and t - p.faces[key] <= FACE_LINK_S and p.person_id not in taken), None)
            if owner is not None:
                assigned[i] = owner
                taken.add(owner.person_id)
        rest = [i for i in range(len(faces)) if i not in assigned]
        # A person showing another face of this robot right now is someone else.
        busy = {p.person_id for p in self.persons.values()
                if any(k.startswith(observer.name + '/') and t - s <= 0.3 and k not in [f[2] for f in faces]
                       for k, s in p.faces.items())}
        candidates = [p for p in self.persons.values() if p.person_id not in taken and p.person_id not in busy]
        if rest and candidates:
            gate = self.config.person_merge_m
            cost = np.full((len(rest), len(candidates)), 1e6)
            for r, i in enumerate(rest):
                pos = faces[i][1]
                for c, p in enumerate(candidates):
                    # Voice-only persons sit at a guessed range: gate them by bearing, not distance.
                    if not p.has_face(t, self.config.forget_after_s) and p.variance > 0.25:
                        err = angle_diff(bearing_from(observer, pos), bearing_from(observer, p.position))
                        if err < math.radians(self.config.voice_face_gate_deg):
                            cost[r, c] = gate * err / math.radians(self.config.voice_face_gate_deg)
                        continue
                    d = float(np.linalg.norm(p.position[:2] - pos[:2]))
                    if d < gate:
                        cost[r, c] = d
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < 1e5:
                    assigned[rest[r]] = candidates[c]
        pairs = []
        for i, (face, pos, key) in enumerate(faces):
            person = assigned.get(i)
            var = self.face_variance(float(face.distance))
            if person is None:
                person = self._create(pos, var, t, seed=f'{key}@{t:.3f}')
            elif not person.has_face(t, self.config.forget_after_s) and person.variance > 0.25:
                person.position = pos.copy()      # a voice placed at a guessed range: the face knows better
                person.variance = var
            else:
                person.fuse(pos, var, t, z_weight=1.0)
            person.faces[key] = t
            person.last_own_face = t if observer.name == self.robot else person.last_own_face
            person.observed_by.add(observer.name)
            person.face_confidence = float(np.clip(face.confidence, 0.0, 1.0))
            person.last_seen = max(person.last_seen, t)
            person.mouth.append((t, float(np.clip(face.mouth_open, 0.0, 1.0))))
            if isinstance(face.looked_at, str) and face.looked_at and _finite((face.looked_at_probability,)):
                target = self._our_target(face.looked_at, observer.name, frame)
                person.looked_at, person.looked_at_probability, person.looked_at_t = \
                    target, float(face.looked_at_probability), t
                self._add_gaze(person, t, target, float(face.looked_at_probability))
            pairs.append((face.face_id, person.person_id))
        return pairs

    def _our_target(self, label: str, observer: str, frame: m.FaceFrame | None = None) -> str:
        """A looked_at label in our ids: 'person:<face id>' or a peer's person id -> our person id."""
        if not label.startswith(PERSON_PREFIX):
            return label
        ref = label[len(PERSON_PREFIX):]
        key = f'{observer}/{ref}'
        for p in self.persons.values():
            if key in p.faces:
                return PERSON_PREFIX + p.person_id
        if (observer, ref) in self.peer_links:
            return PERSON_PREFIX + self.peer_links[(observer, ref)]
        return PERSON_PREFIX + self.resolve(ref)

    def _add_gaze(self, person: TrackedPerson, t: float, target: str, prob: float) -> None:
        if person.gaze and t < person.gaze[-1][0]:
            return          # late sample from a slower source: history stays in time order
        person.gaze.append((t, target, prob))
        horizon = t - self.config.gaze_history_s
        while person.gaze and person.gaze[0][0] < horizon:
            person.gaze.popleft()

    # --- voices ------------------------------------------------------------------------------
    def mouth_score(self, person: TrackedPerson, t0: float, t1: float) -> float:
        """0.05..1: how much this person's mouth moved during [t0, t1]; NEUTRAL_MOUTH if unseen."""
        values = person.mouth_activity(t0 - 0.1, t1 + 0.1)
        if len(values) < 2:
            return NEUTRAL_MOUTH
        level = float(np.percentile(values, 90))
        x = (level - self.config.mouth_open_speaking) / 0.04
        return float(0.05 + 0.95 / (1.0 + math.exp(-max(-50.0, min(50.0, x)))))

    def observe_utterance(self, utt: m.Utterance, observer: RobotSpec | None = None) -> tuple[str, float] | None:
        """Attribute an utterance to a person: (person id, confidence).

        An unknown voice id becomes a person of its own; an utterance without a voice id from a
        direction where nobody is gives None (it may be a radio, a TV, an echo).
        """
        observer = observer or self.robots.get(utt.robot) or self.spec
        cfg = self.config
        t = float(max(utt.end, utt.stamp)) if _finite((utt.stamp,)) else float(utt.end)
        std = float(utt.azimuth_std) if utt.azimuth_std and utt.azimuth_std > 0 else math.radians(5.0)
        if utt.voice_id:
            self.voice_bearings[(observer.name, utt.voice_id)] = (t, float(utt.azimuth), std)
        for p in self.persons.values():
            p.predict(t)
        person, confidence = self._speaker_of(utt, observer, std)
        seed = f'{observer.name}/{utt.voice_id or utt.utterance_id}@{utt.start:.3f}'
        located = self._triangulate_voice(utt, observer, t)
        if person is None and not utt.voice_id:
            self._count('utterances with no voice id and nobody in their direction')
            return None
        if person is None:
            if located is not None:
                point, radius = located
                near = [p for p in self.persons.values()
                        if float(np.linalg.norm(p.position[:2] - point[:2])) < max(cfg.person_merge_m, 2 * radius)]
                person = min(near, key=lambda p: float(np.linalg.norm(p.position[:2] - point[:2])), default=None)
                if person is None:
                    person = self._create(point, radius ** 2, t, seed=seed)
                confidence = 0.6
            else:
                point = point_along_bearing(observer, float(utt.azimuth), cfg.default_distance_m, cfg.default_height_m)
                person = self._create(point, VOICE_ONLY_STD_M ** 2, t, seed=seed)
                confidence = 0.5
        elif located is not None and not person.has_face(t, cfg.forget_after_s):
            point, radius = located
            person.fuse(point, radius ** 2, t)
        if utt.voice_id:
            self._link_voice(person, utt.voice_id, confidence, strengthen=utt.is_final)
            person = self.persons.get(self.resolve(person.person_id), person)
        person.last_seen = max(person.last_seen, t)
        end = utt.end if utt.is_final else t + 1.0
        person.speaking_until = max(person.speaking_until, end + cfg.speaking_hold_s)
        self.utterance_person[utt.utterance_id] = (person.person_id, confidence)
        self.utterance_person.move_to_end(utt.utterance_id)
        while len(self.utterance_person) > UTTERANCE_CACHE:
            self.utterance_person.popitem(last=False)
        return person.person_id, confidence

    def _speaker_of(self, utt: m.Utterance, observer: RobotSpec, std: float) -> tuple[TrackedPerson | None, float]:
        cfg = self.config
        gate = math.radians(cfg.voice_face_gate_deg) + 2 * std
        linked = next((p for p in self.persons.values() if utt.voice_id and p.voice_id == utt.voice_id), None)
        if linked is not None:
            err = angle_diff(bearing_from(observer, linked.position), float(utt.azimuth))
            if err <= gate or linked.variance > 0.25:
                return linked, max(linked.voice_confidence, 0.5)
            # The linked person is elsewhere: the link may be wrong; look at who is in that direction.
            linked.voice_confidence *= 0.7
            self._count('voice links contradicted by direction')
        scores = []
        sigma = math.radians(cfg.voice_face_gate_deg) / 2 + std
        for p in self.persons.values():
            err = angle_diff(bearing_from(observer, p.position), float(utt.azimuth))
            if err > gate:
                continue
            direction = math.exp(-0.5 * (err / sigma) ** 2)
            mouth = self.mouth_score(p, float(utt.start), float(utt.end if utt.is_final else max(utt.end, utt.stamp)))
            # Someone else's voice should not grab a person firmly linked to another voice.
            taken = 0.3 if (p.voice_id and p.voice_id != utt.voice_id and p.voice_confidence >= 0.5) else 1.0
            scores.append((direction * mouth * taken, p))
        if not scores:
            if linked is not None and linked.voice_confidence >= 0.3:
                return linked, linked.voice_confidence
            return None, 0.0
        scores.sort(key=lambda s: -s[0])
        best, person = scores[0]
        if best < MIN_SPEAKER_SCORE:
            if linked is not None and linked.voice_confidence >= 0.3:
                return linked, linked.voice_confidence
            return None, 0.0
        total = sum(s for s, _ in scores)
        confidence = float(np.clip(best / total * min(1.0, best / 0.3), 0.05, 0.99)) if total > 0 else 0.05
        if linked is not None and linked is not person and linked.voice_confidence >= confidence:
            return linked, linked.voice_confidence
        return person, confidence

    def rename_voice(self, old: str, new: str) -> None:
        """Hearing merged voice id ``old`` into ``new``: follow it everywhere."""
        for p in self.persons.values():
            if p.voice_id == old:
                p.voice_id = new
        for key in [k for k in self.voice_bearings if k[1] == old]:
            self.voice_bearings[(key[0], new)] = self.voice_bearings.pop(key)

    def _link_voice(self, person: TrackedPerson, voice_id: str, confidence: float, strengthen: bool = True) -> None:
        for other in list(self.persons.values()):
            if other is person or other.voice_id != voice_id:
                continue
            if not other.has_face(person.last_seen, self.config.forget_after_s):
                # The voice's own placeholder person: it was this person all along.
                merged = self.merge(person.person_id, other.person_id)
                if merged is not person:
                    person = merged
                continue
            other.voice_id, other.voice_confidence = '', 0.0
            self._count('voice links moved')
        if person.voice_id == voice_id:
            if not strengthen:        # partial results of one turn are not independent evidence
                person.voice_confidence = max(person.voice_confidence, confidence)
                return
            gain = 0.3 * confidence * (1 - person.voice_confidence) + 0.1 * confidence
            person.voice_confidence = min(0.99, person.voice_confidence + gain)
        elif not person.voice_id or confidence > person.voice_confidence:
            person.voice_id, person.voice_confidence = voice_id, confidence

    def _triangulate_voice(self, utt: m.Utterance, observer: RobotSpec, t: float) -> tuple[np.ndarray, float] | None:
        if not utt.voice_id:
            return None
        rows = []
        for (robot, voice), (seen, az, std) in self.voice_bearings.items():
            if voice == utt.voice_id and abs(seen - t) <= self.config.peer_voice_window_s and robot in self.robots:
                rows.append((self.robots[robot], az, std))
        if len({r[0].name for r in rows}) < 2:
            return None
        try:
            point, radius = triangulate_bearings([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        except ValueError:
            self._count('triangulations failed')
            return None
        self._count('voices triangulated')
        return np.array([point[0], point[1], self.config.default_height_m]), radius

    # --- other robots ------------------------------------------------------------------------
    def observe_peer(self, view: m.Persons) -> None:
        """Fuse another robot's view of everyone (each of their persons matches at most one of ours)."""
        peer = self.robots.get(view.robot)
        t = float(view.stamp)
        entries = []
        for q in view.persons:
            if not _valid_person(q):
                self._count('peer persons rejected (bad values)')
                continue
            pos = np.asarray(q.position, dtype=float)
            own_face = peer is not None and any(k.startswith(peer.name + '/') for k in q.face_ids)
            if q.voice_id and q.is_speaking and peer is not None:
                std = math.radians(3.0) if own_face else math.radians(8.0)
                self.voice_bearings[(peer.name, q.voice_id)] = (t, bearing_from(peer, pos), std)
            entries.append((q, pos, own_face))
        matches = self._match_peer_view(view.robot, entries, t)
        for (q, pos, own_face), person in zip(entries, matches):
            var = max(float(q.position_std), 0.05) ** 2 * 2.0    # shared evidence: count it less
            if person is None:
                person = self._create(pos, var, t, seed=f'{view.robot}/{q.person_id}', person_id=q.person_id)
            else:
                if _id_key(q.person_id) < _id_key(person.person_id):
                    holder = self.persons.get(q.person_id)
                    if holder is None:
                        person = self.rename(person.person_id, q.person_id)
                    elif holder is not person and not _seen_together(holder, person, t):
                        person = self.merge(holder.person_id, person.person_id)
                person.predict(t)
                if own_face and t - person.last_own_face > 0.5:
                    person.fuse(pos, var, t)           # they see the face and we do not (right now)
                elif not own_face and var < 0.25 * person.variance:
                    person.fuse(pos, var, t)           # e.g. their triangulated voice beats our single direction
            self.peer_links[(view.robot, q.person_id)] = person.person_id
            self.peer_links.move_to_end((view.robot, q.person_id))
            while len(self.peer_links) > ALIAS_CACHE:
                self.peer_links.popitem(last=False)
            if own_face or q.is_speaking:
                # Only what the peer itself perceives keeps a person alive: views echoing each other must not.
                person.last_seen = max(person.last_seen, t)
            if own_face:
                person.observed_by.add(view.robot)
                for key in q.face_ids:
                    if key.startswith(view.robot + '/'):
                        person.faces[key] = max(person.faces.get(key, -math.inf), t)
            if q.voice_id and (not person.voice_id or (person.voice_id != q.voice_id
                                                        and q.voice_confidence > person.voice_confidence + 0.2)):
                person.voice_id, person.voice_confidence = q.voice_id, 0.9 * float(q.voice_confidence)
            if q.is_speaking:
                person.speaking_until = max(person.speaking_until, t + self.config.speaking_hold_s)
            if isinstance(q.looked_at, str) and q.looked_at and t - person.looked_at_t > 0.5 \
                    and t >= person.looked_at_t and _finite((q.looked_at_probability,)):
                target = self._our_target(q.looked_at, view.robot)
                person.looked_at, person.looked_at_probability, person.looked_at_t = \
                    target, float(q.looked_at_probability), t
                self._add_gaze(person, t, target, float(q.looked_at_probability))

    def _match_peer_view(self, robot: str, entries, t: float) -> list[TrackedPerson | None]:
        """Our person for each of a peer's persons: by earlier link, same id, same voice, then position."""
        matches: list[TrackedPerson | None] = [None] * len(entries)
        taken: set[str] = set()

        def free(p: TrackedPerson | None) -> bool:
            return p is not None and p.person_id not in taken

        for i, (q, pos, _) in enumerate(entries):
            link = self.peer_links.get((robot, q.person_id))
            found = self.persons.get(self.resolve(link)) if link is not None else None
            if not free(found):
                same = self.get(q.person_id)
                gate = max(1.5, 3 * math.sqrt(same.variance)) if same is not None else 0.0
                if free(same) and float(np.linalg.norm(same.position[:2] - pos[:2])) < gate:
                    found = same
            if not free(found) and q.voice_id:
                found = next((p for p in self.persons.values() if p.voice_id == q.voice_id and free(p)), None)
            if free(found) and not self._conflicting_faces(found, q, robot, t):
                matches[i] = found
                taken.add(found.person_id)
        rest = [i for i in range(len(entries)) if matches[i] is None]
        candidates = [p for p in self.persons.values() if p.person_id not in taken]
        if rest and candidates:
            gate = self.config.person_merge_m
            cost = np.full((len(rest), len(candidates)), 1e6)
            for r, i in enumerate(rest):
                q, pos, _ = entries[i]
                for c, p in enumerate(candidates):
                    d = float(np.linalg.norm(p.position[:2] - pos[:2]))
                    if d < gate and not self._conflicting_faces(p, q, robot, t):
                        cost[r, c] = d
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < 1e5:
                    matches[rest[r]] = candidates[c]
        return matches

    @staticmethod
    def _conflicting_faces(person: TrackedPerson, q: m.Person, robot: str, t: float) -> bool:
        """The peer currently sees our person under another face id: they are two people."""
        theirs = {k for k in q.face_ids if k.startswith(robot + '/')}
        ours = {k for k, seen in person.faces.items() if k.startswith(robot + '/') and t - seen <= FACE_LINK_S}
        return bool(theirs and ours and not theirs & ours)

    # --- housekeeping and output -------------------------------------------------------------
    def merge_duplicates(self, t: float) -> None:
        """Merge persons closer than person_merge_m unless this robot sees both faces at once."""
        ids = sorted(self.persons, key=_id_key)
        for i, a_id in enumerate(ids):
            for b_id in ids[i + 1:]:
                a, b = self.persons.get(a_id), self.persons.get(b_id)
                if a is None or b is None:
                    continue
                if max(a.variance, b.variance) > 0.25:
                    continue       # a voice placed at a guessed range is merged by its voice, not its position
                if float(np.linalg.norm(a.position[:2] - b.position[:2])) >= self.config.person_merge_m:
                    continue
                if a.voice_id and b.voice_id and a.voice_id != b.voice_id:
                    continue
                if _seen_together(a, b, t):
                    continue
                self.merge(a_id, b_id)

    def forget(self, t: float) -> None:
        for pid in [p.person_id for p in self.persons.values() if t - p.last_seen > self.config.forget_after_s]:
            self._remove(pid)
            self._count('persons forgotten')
        for key in [k for k, v in self.voice_bearings.items() if t - v[0] > self.config.forget_after_s]:
            del self.voice_bearings[key]
        for p in self.persons.values():
            p.faces = {k: s for k, s in p.faces.items() if t - s <= self.config.forget_after_s}

    def snapshot(self, t: float) -> list[m.Person]:
        out = []
        for p in sorted(self.persons.values(), key=lambda p: _id_key(p.person_id)):
            var = p.variance + PROCESS_NOISE_M2_PER_S * max(0.0, t - p.last_update)
            std = math.sqrt(var)
            recent = [k for k, s in sorted(p.faces.items(), key=lambda kv: -kv[1]) if t - s <= FACE_LINK_S]
            looked = p.looked_at if t - p.looked_at_t <= 1.0 else ''
            out.append(m.Person(
                person_id=p.person_id, position=tuple(float(v) for v in p.position), position_std=float(std),
                location_confidence=float(1.0 / (1.0 + var / 0.05)), voice_id=p.voice_id,
                voice_confidence=float(p.voice_confidence), face_ids=recent,
                face_confidence=float(p.face_confidence if recent else 0.0), looked_at=looked,
                looked_at_probability=float(p.looked_at_probability if looked else 0.0),
                is_speaking=bool(t < p.speaking_until)))
        return out

    def attention_during(self, person_id: str, t0: float, t1: float) -> dict[str, float]:
        """Share of the observed part of [t0, t1] the person looked at each target."""
        person = self.get(person_id)
        if person is None or not person.gaze or not (t1 >= t0):
            return {}
        samples = list(person.gaze)
        shares: dict[str, float] = {}
        for i, (ts, target, _) in enumerate(samples):
            until = samples[i + 1][0] if i + 1 < len(samples) else ts + GAZE_HOLD_S
            until = min(until, ts + GAZE_HOLD_S)
            lo, hi = max(ts, t0), min(until, t1)
            if hi > lo:
                shares[target] = shares.get(target, 0.0) + (hi - lo)
        total = sum(shares.values())
        return {k: v / total for k, v in shares.items()} if total > 0 else {}


def _valid_person(q) -> bool:
    """A peer's Person with usable values (anything else is counted and skipped)."""
    try:
        return (isinstance(q.person_id, str) and bool(q.person_id) and len(q.position) == 3
                and _finite(q.position) and _finite((q.position_std, q.voice_confidence, q.looked_at_probability))
                and isinstance(q.voice_id, str) and isinstance(q.looked_at, str)
                and all(isinstance(k, str) for k in q.face_ids))
    except (AttributeError, TypeError):
        return False


def _seen_together(a: TrackedPerson, b: TrackedPerson, t: float) -> bool:
    """Two faces of one robot seen at (nearly) the same time are two people."""
    for ka, sa in a.faces.items():
        ra = ka.split('/', 1)[0]
        for kb, sb in b.faces.items():
            if kb.split('/', 1)[0] == ra and ka != kb and abs(sa - sb) <= 0.3 and t - max(sa, sb) <= FACE_LINK_S:
                return True
    return False


def person_for_utterance_in(persons: Iterable[m.Person], utt: m.Utterance, observer: RobotSpec,
                            gate_deg: float = 15.0) -> tuple[m.Person | None, float]:
    """Which of ``persons`` (e.g. a /persons message) spoke ``utt``: by voice id, else by direction.

    Confidence: the voice link's confidence, or for a direction match how well the bearing fits and
    how clearly it beats the next person in that direction.
    """
    persons = list(persons)
    if utt.voice_id:
        linked = [p for p in persons if p.voice_id == utt.voice_id]
        if linked:
            best = max(linked, key=lambda p: p.voice_confidence)
            return best, float(max(best.voice_confidence, 0.05))
    if not _finite((utt.azimuth,)):
        return None, 0.0
    std = float(utt.azimuth_std) if utt.azimuth_std and utt.azimuth_std > 0 else math.radians(5.0)
    sigma = math.radians(gate_deg) / 2 + std
    gate = math.radians(gate_deg) + 2 * std
    scored = []
    for p in persons:
        if not _finite(p.position):
            continue
        err = angle_diff(bearing_from(observer, p.position), float(utt.azimuth))
        if err <= gate:
            scored.append((math.exp(-0.5 * (err / sigma) ** 2), p))
    if not scored:
        return None, 0.0
    scored.sort(key=lambda s: -s[0])
    best, person = scored[0]
    total = sum(s for s, _ in scored)
    return person, float(np.clip(best * best / total, 0.0, 0.95))


class PersonManager(Stage):
    """Stage 'person_manager': faces/attention + hearing/utterances + /persons (peers) -> /persons."""

    name = 'person_manager'
    outputs = ('/persons',)

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], config: FusingConfig | None = None):
        super().__init__(robot.name)
        self.spec = robot
        self.config = config or FusingConfig()
        self.table = PersonTable(robot, robots, self.config)
        self.voices = VoiceAliases()
        self._last_face_stamp = -math.inf
        self._peer_stamps: dict[str, float] = {}

    def inputs(self):
        return {'faces/attention': self.on_faces, 'hearing/utterances': self.on_utterance,
                '/persons': self.on_persons, '/voices/identities': self.on_voice}

    def on_voice(self, identity: m.VoiceIdentity) -> None:
        if self.voices.on_identity(identity):
            self.table.rename_voice(identity.voice_id, self.voices.canonical(identity.voice_id))

    def timers(self):
        return [(self.config.publish_period_s, self.tick)]

    # --- inputs ----------------------------------------------------------------------------------
    def on_faces(self, frame: m.FaceFrame) -> None:
        if not isinstance(frame, m.FaceFrame) or not _finite((frame.stamp,)):
            return self.drop('bad face frame', type(frame).__name__)
        if frame.robot and frame.robot not in self.table.robots:
            return self.drop('faces from unknown robot', frame.robot)
        if frame.stamp < self._last_face_stamp:
            return self.drop('out of order faces', f'{frame.stamp:.3f} < {self._last_face_stamp:.3f}')
        self._last_face_stamp = float(frame.stamp)
        before = self.table.counters.get('faces rejected (bad values)', 0)
        self.table.observe_faces(frame, self.table.robots.get(frame.robot or self.robot))
        for _ in range(self.table.counters.get('faces rejected (bad values)', 0) - before):
            self.drop('bad face values')

    def on_utterance(self, utt: m.Utterance) -> None:
        if not isinstance(utt, m.Utterance):
            return self.drop('bad utterance', type(utt).__name__)
        if not _finite((utt.start, utt.end, utt.azimuth)) or utt.end < utt.start:
            return self.drop('bad utterance', f'{utt.utterance_id}: times or direction not usable')
        observer = self.table.robots.get(utt.robot or self.robot)
        if observer is None:
            return self.drop('utterance from unknown robot', utt.robot)
        if utt.voice_id:
            utt = replace(utt, voice_id=self.voices.canonical(utt.voice_id))
        self.table.observe_utterance(utt, observer)

    def on_persons(self, view: m.Persons) -> None:
        if not isinstance(view, m.Persons) or not _finite((view.stamp,)):
            return self.drop('bad persons', type(view).__name__)
        if view.robot == self.robot:
            return           # our own output coming back
        if view.robot not in self.table.robots:
            return self.drop('persons from unknown robot', view.robot)
        if view.stamp < self._peer_stamps.get(view.robot, -math.inf):
            return self.drop('out of order persons', view.robot)
        if self.now() - view.stamp > PEER_STALE_S * 5:
            return self.drop('stale persons', f'{view.robot} {self.now() - view.stamp:.1f} s old')
        self._peer_stamps[view.robot] = float(view.stamp)
        canon = self.voices.canonical
        view = replace(view, persons=[replace(q, voice_id=canon(q.voice_id))
                                      if isinstance(q, m.Person) and isinstance(q.voice_id, str) and q.voice_id else q
                                      for q in view.persons])
        self.table.observe_peer(view)

    def tick(self) -> None:
        now = self.now()
        self.table.merge_duplicates(now)
        self.table.forget(now)
        self.publish('/persons', m.Persons(stamp=now, robot=self.robot, persons=self.table.snapshot(now)))

    # --- queries for the addressee estimator -----------------------------------------------------
    def persons(self) -> list[m.Person]:
        return self.table.snapshot(self.now())

    def person_for_utterance(self, utt: m.Utterance) -> tuple[m.Person | None, float]:
        """Which person spoke ``utt`` (by voice id if linked, else by direction) and how sure."""
        now = self.now()
        cached = self.table.utterance_person.get(utt.utterance_id)
        snapshot = {p.person_id: p for p in self.table.snapshot(now)}
        if cached is not None:
            person = snapshot.get(self.table.resolve(cached[0]))
            if person is not None:
                return person, cached[1]
        observer = self.table.robots.get(utt.robot or self.robot, self.spec)
        return person_for_utterance_in(snapshot.values(), utt, observer, self.config.voice_face_gate_deg)

    def attention_during(self, person_id: str, t0: float, t1: float) -> dict[str, float]:
        """Share of [t0, t1] (observed time only) the person looked at each target."""
        return self.table.attention_during(person_id, t0, t1)

    def diagnostics(self) -> dict[str, str]:
        out = super().diagnostics()
        out.update({k: str(v) for k, v in sorted(self.table.counters.items())})
        out['persons'] = str(len(self.table.persons))
        return out
