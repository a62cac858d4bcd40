"""Visual focus of attention: what each seen face is looking at.

For one face, the candidate targets are every robot (its camera, or a head just above its microphone
array), every other person (from ``/persons`` or the other faces of the same frame) and ``none``. The
gaze ray is compared with the direction from the eyes to each target; its angular error follows a
von Mises-Fisher distribution with ``gaze_std_deg`` (kappa = 1 / std^2), and ``none`` is a uniform
direction, so a ray far from every target means ``none``. A target whose position is uncertain beyond
a head's size (a person placed only by their voice) widens its lobe by that uncertainty's angle, so a
person guessed to stand somewhere near the line of sight does not outweigh a robot the ray points at.
A target hidden behind another person's head (seen from this face) counts ``occluded_factor`` times
less; only a head whose position is known to within ``occluder_radius_m`` hides anything. Looking down (gaze pitch below
``look_down_pitch_deg``) makes ``none`` much more likely unless a target is down there too.
Over time each face's posterior is smoothed by an exponential filter with time constant
``smoothing_s``, which absorbs the ~5 degree frame-to-frame noise of head pose estimates and
one-frame glitches.

``focus_of_attention`` is the single-frame computation, for anyone who has a head position and a gaze
ray in ``map``; ``AttentionStage`` is the stage ('faces/observations' + '/persons' -> 'faces/attention').
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.pipeline import Stage
from voice_robot.seeing.config import AttentionConfig
from voice_robot.seeing.geometry import azimuth_elevation

NONE = 'none'
PERSON_PREFIX = 'person:'
EYES_ABOVE_FACE_CENTRE_M = 0.03
MAX_FACE_STATES = 64


def robot_look_point(robot: RobotSpec, head_above_array_m: float = 0.2) -> np.ndarray:
    """Where people look when they look at ``robot``: its camera, or a head above its array."""
    height = robot.camera.height_m if robot.camera is not None else robot.mic_array.height_m + head_above_array_m
    return np.array([robot.position_m[0], robot.position_m[1], height], dtype=float)


def face_position_map(robot: RobotSpec, face: m.FaceObservation, camera_height_m: float | None = None) -> np.ndarray:
    """Map position of a face centre seen by ``robot`` (bearing, elevation, distance from its camera)."""
    h = camera_height_m if camera_height_m is not None else (
        robot.camera.height_m if robot.camera is not None else robot.mic_array.height_m)
    d, b, e = float(face.distance), float(face.bearing), float(face.elevation)
    base = np.array([d * math.cos(e) * math.cos(b), d * math.cos(e) * math.sin(b), h + d * math.sin(e)])
    return robot.base_to_map(base[None])[0]


def gaze_map(robot: RobotSpec, face: m.FaceObservation) -> np.ndarray:
    """The face's gaze as a unit vector in map.

    Uses ``gaze_direction``; falls back to the head pose when the gaze is missing or is the message
    default (1, 0, 0) while the head pose says otherwise (a producer that only estimates head pose).
    """
    g = np.asarray(face.gaze_direction, dtype=float).reshape(-1)
    n = float(np.linalg.norm(g)) if g.shape == (3,) and np.all(np.isfinite(g)) else 0.0
    default = n > 0 and tuple(g) == (1.0, 0.0, 0.0) and abs(math.remainder(face.head_yaw, 2 * math.pi)) > 1e-6
    if n < 1e-6 or default:
        c = math.cos(face.head_pitch)
        g = np.array([c * math.cos(face.head_yaw), c * math.sin(face.head_yaw), math.sin(face.head_pitch)])
        n = 1.0
    g = g / n
    c, s = math.cos(robot.yaw), math.sin(robot.yaw)
    return np.array([c * g[0] - s * g[1], s * g[0] + c * g[1], g[2]])


def _vmf_density(cos_angle: np.ndarray, kappa: float) -> np.ndarray:
    """von Mises-Fisher density on the sphere at the given cosines (numerically safe for large kappa)."""
    norm = kappa / (2 * math.pi * (1 - math.exp(-2 * kappa)))
    return norm * np.exp(kappa * (cos_angle - 1.0))


def _blocks(eyes: np.ndarray, direction: np.ndarray, dist: float, other: np.ndarray, radius: float) -> bool:
    """Whether a head at ``other`` stands between the eyes and a target ``dist`` away along ``direction``."""
    rel = other - eyes
    along = float(rel @ direction) / dist
    if along <= 0.3 or along >= dist - 0.3:
        return False
    return float(np.linalg.norm(rel - along * direction / dist)) < radius


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def focus_likelihoods(head_pos_map, gaze_dir_map, targets: Mapping[str, object],
                      config: AttentionConfig | None = None,
                      position_std: Mapping[str, float] | None = None) -> dict[str, float]:
    """Likelihood of the gaze ray under each target and under 'none' (not normalised).

    ``position_std``: per target, the standard deviation (m) of its position; targets not in it are
    where they are said to be (robots, faces seen in this frame)."""
    cfg = config or AttentionConfig()
    head = np.asarray(head_pos_map, dtype=float).reshape(3)
    gaze = np.asarray(gaze_dir_map, dtype=float).reshape(3)
    if not (np.all(np.isfinite(head)) and np.all(np.isfinite(gaze))) or np.linalg.norm(gaze) < 1e-9:
        raise ValueError('head position and gaze direction must be finite 3-vectors, gaze non-zero')
    gaze = gaze / np.linalg.norm(gaze)
    kappa = 1.0 / math.radians(cfg.gaze_std_deg) ** 2
    _, gaze_pitch = azimuth_elevation(gaze)

    def looking_down(pitch: float) -> float:
        s = _sigmoid((math.radians(cfg.look_down_pitch_deg) - pitch) / math.radians(cfg.look_down_width_deg))
        return 1.0 + (cfg.look_down_none_factor - 1.0) * s

    down = looking_down(gaze_pitch)
    points = {name: np.asarray(point, dtype=float).reshape(3) for name, point in targets.items()}
    spread = {name: _metres(s) for name, s in (position_std or {}).items()}
    # People stand in the way: a target behind another person's head, seen from here, is hardly visible.
    people = [p for name, p in points.items() if name.startswith(PERSON_PREFIX)
              and spread.get(name, 0.0) <= cfg.occluder_radius_m]
    out: dict[str, float] = {}
    for name, p in points.items():
        d = p - head
        dist = float(np.linalg.norm(d))
        if not np.isfinite(dist) or dist < 1e-3:
            continue
        if any(_blocks(head, d, dist, other, cfg.occluder_radius_m) for other in people if other is not p):
            out[name] = cfg.occluded_factor
        else:
            out[name] = 1.0
        cos = float(np.clip(d @ gaze / dist, -1.0, 1.0))
        # The target's own position error beyond a head's size (which the gaze noise already covers),
        # seen from here, adds to the gaze's angular noise.
        excess = math.sqrt(max(0.0, spread.get(name, 0.0) ** 2 - cfg.occluder_radius_m ** 2))
        spread_rad = math.atan2(excess, dist)
        kappa_here = 1.0 / (math.radians(cfg.gaze_std_deg) ** 2 + spread_rad ** 2)
        like = float(_vmf_density(np.array([cos]), kappa_here)[0])
        # A target that is itself far below eye level is not penalised by the looking-down prior (and
        # gains nothing over other targets when the gaze is level: the prior only ever penalises).
        _, target_pitch = azimuth_elevation(d)
        like *= min(looking_down(target_pitch), down) / down
        out[name] *= like
    out[NONE] = 1.0 / (4 * math.pi)
    return out


def priors(target_names, none_prior: float) -> dict[str, float]:
    names = [n for n in target_names if n != NONE]
    if not names:
        return {NONE: 1.0}
    each = (1.0 - none_prior) / len(names)
    out = {n: each for n in names}
    out[NONE] = none_prior
    return out


def focus_of_attention(head_pos_map, gaze_dir_map, targets: Mapping[str, object],
                       config: AttentionConfig | None = None,
                       position_std: Mapping[str, float] | None = None) -> dict[str, float]:
    """Probability that a person at ``head_pos_map`` (eyes, map) gazing along ``gaze_dir_map`` looks at
    each of ``targets`` (name -> map point) or at 'none'. Single frame, no smoothing; sums to 1."""
    cfg = config or AttentionConfig()
    like = focus_likelihoods(head_pos_map, gaze_dir_map, targets, cfg, position_std)
    prior = priors(like, cfg.none_prior)
    post = {k: like[k] * prior[k] for k in like}
    total = sum(post.values())
    return {k: v / total for k, v in post.items()}


def _usable_person(p) -> bool:
    try:
        return isinstance(p.person_id, str) and len(p.position) == 3 and \
            all(math.isfinite(float(c)) for c in p.position) and isinstance(p.face_ids, (list, tuple))
    except (AttributeError, TypeError, ValueError):
        return False


def _metres(value) -> float:
    """A position std as given (any type, from any producer): a finite positive float, else 0."""
    try:
        std = float(value)
    except (TypeError, ValueError):
        return 0.0
    return std if math.isfinite(std) and std > 0 else 0.0


class AttentionFilter:
    """Per-face exponential filter of the single-frame posteriors with time constant ``smoothing_s``.

    A one-frame glitch (a blink, a bad landmark fit) moves the output by 1 - exp(-dt / smoothing_s) at
    most; a real gaze shift wins after about smoothing_s. Targets that appear start at zero, targets
    that disappear fade out.
    """

    def __init__(self, config: AttentionConfig):
        self.config = config
        self.posterior: dict[str, float] = {}
        self.last_t: float | None = None

    def update(self, t: float, likelihoods: Mapping[str, float]) -> dict[str, float]:
        cfg = self.config
        prior = priors(likelihoods, cfg.none_prior)
        frame = {k: likelihoods[k] * prior[k] for k in likelihoods}
        total = sum(frame.values())
        frame = {k: v / total for k, v in frame.items()} if total > 0 else dict(prior)
        if self.last_t is None or not self.posterior:
            keep = 0.0
        else:
            dt = max(0.0, t - self.last_t)
            keep = math.exp(-dt / cfg.smoothing_s) if cfg.smoothing_s > 0 else 0.0
        post = {k: keep * self.posterior.get(k, 0.0) + (1 - keep) * v for k, v in frame.items()}
        total = sum(post.values())
        self.posterior = {k: v / total for k, v in post.items()} if total > 0 else frame
        self.last_t = t if self.last_t is None else max(t, self.last_t)
        return self.posterior


class AttentionStage(Stage):
    """Stage 'attention': faces/observations + /persons -> faces/attention (looked_at filled)."""

    name = 'attention'
    outputs = ('faces/attention',)

    def __init__(self, robot: RobotSpec, robots: list[RobotSpec], config: AttentionConfig | None = None):
        super().__init__(robot.name)
        self.spec = robot
        self.robots = {r.name: r for r in robots}
        self.robots.setdefault(robot.name, robot)
        self.config = config or AttentionConfig()
        self._filters: dict[str, AttentionFilter] = {}
        self._face_seen: dict[str, float] = {}
        self._persons: dict[str, m.Persons] = {}       # latest view per publishing robot

    def inputs(self):
        return {'faces/observations': self.on_faces, '/persons': self.on_persons}

    # --- inputs ----------------------------------------------------------------------------------
    def on_persons(self, msg: m.Persons) -> None:
        if not isinstance(msg, m.Persons) or not isinstance(msg.stamp, (int, float)) or not math.isfinite(msg.stamp):
            return self.drop('bad persons', type(msg).__name__)
        if msg.robot not in self.robots and len(self._persons) >= 2 * len(self.robots) + 4:
            return self.drop('persons from unknown robot', msg.robot)
        prev = self._persons.get(msg.robot)
        if prev is not None and msg.stamp < prev.stamp:
            return self.drop('out of order persons')
        self._persons[msg.robot] = msg

    def on_faces(self, frame: m.FaceFrame) -> None:
        if not isinstance(frame, m.FaceFrame) or not isinstance(frame.stamp, (int, float)) \
                or not math.isfinite(frame.stamp):
            return self.drop('bad face frame', type(frame).__name__)
        observer = self.robots.get(frame.robot or self.robot)
        if observer is None:
            return self.drop('unknown robot', frame.robot)
        t = float(frame.stamp)
        faces, positions = [], []
        for face in frame.faces:
            try:
                pos = face_position_map(observer, face)
                gaze = gaze_map(observer, face)
            except (AttributeError, TypeError, ValueError) as exc:
                self.drop('bad face', f'{getattr(face, "face_id", "?")}: {exc}')
                continue
            if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(gaze))) or not face.distance > 0:
                self.drop('bad face', f'{face.face_id}: non-finite or non-positive values')
                continue
            faces.append((face, pos, gaze))
            positions.append(pos)
        persons = self._fresh_persons(t)
        labelled = self._label_faces(observer, faces, persons)
        out = []
        for (face, pos, gaze), (label, linked_person) in zip(faces, labelled):
            targets, spread = self._targets(label, linked_person, faces, labelled, persons)
            eyes = pos + np.array([0.0, 0.0, EYES_ABOVE_FACE_CENTRE_M])
            like = focus_likelihoods(eyes, gaze, targets, self.config, spread)
            filt = self._filters.get(face.face_id)
            if filt is None:
                filt = self._filters[face.face_id] = AttentionFilter(self.config)
            post = filt.update(t, like)
            self._face_seen[face.face_id] = t
            best = max(post, key=post.get)
            out.append(dataclasses.replace(face, looked_at=best, looked_at_probability=float(post[best])))
        self._forget(t)
        self.publish('faces/attention', m.FaceFrame(stamp=frame.stamp, robot=frame.robot or self.robot, faces=out))

    # --- helpers ---------------------------------------------------------------------------------
    def _fresh_persons(self, t: float) -> list[m.Person]:
        """Persons of this robot's own view if fresh, else of the freshest other view."""
        views = [v for v in self._persons.values() if t - v.stamp <= self.config.persons_timeout_s]
        if not views:
            return []
        own = [v for v in views if v.robot == self.robot]
        view = own[0] if own else max(views, key=lambda v: v.stamp)
        return [p for p in view.persons if _usable_person(p)]

    def _label_faces(self, observer: RobotSpec, faces, persons: list[m.Person]):
        """(target label, person) for each face: the person it belongs to, else the face itself."""
        out = []
        used: set[str] = set()
        for face, pos, _ in faces:
            key = f'{observer.name}/{face.face_id}'
            person = next((p for p in persons if key in p.face_ids and p.person_id not in used), None)
            if person is None:
                near = [(float(np.linalg.norm(np.asarray(p.position[:2]) - pos[:2])), p) for p in persons
                        if p.person_id not in used]
                near = [x for x in near if x[0] < self.config.same_person_m]
                if near:
                    person = min(near, key=lambda x: x[0])[1]
            if person is not None:
                used.add(person.person_id)
                out.append((PERSON_PREFIX + person.person_id, person))
            else:
                out.append((PERSON_PREFIX + face.face_id, None))
        return out

    def _targets(self, own_label: str, own_person, faces, labelled, persons) \
            -> tuple[dict[str, np.ndarray], dict[str, object]]:
        """Target points, and the position std of those known only from /persons."""
        targets = {name: robot_look_point(r, self.config.head_above_array_m) for name, r in self.robots.items()}
        spread: dict[str, float] = {}
        for (face, pos, _), (label, _) in zip(faces, labelled):
            if label != own_label:
                targets[label] = pos                 # the face seen now is more current than /persons
        for p in persons:
            label = PERSON_PREFIX + p.person_id
            if label == own_label or label in targets:
                continue
            if own_person is None and own_label.startswith(PERSON_PREFIX):
                # Unlinked face: skip the person standing where the face is (it is the face itself).
                own_pos = next(pos for (f, pos, _), (lab, _) in zip(faces, labelled) if lab == own_label)
                if float(np.linalg.norm(np.asarray(p.position[:2]) - own_pos[:2])) < self.config.same_person_m:
                    continue
            targets[label] = np.asarray(p.position, dtype=float)
            spread[label] = getattr(p, 'position_std', 0.0)
        return targets, spread

    def _forget(self, t: float) -> None:
        stale = [k for k, seen in self._face_seen.items() if t - seen > self.config.forget_face_s]
        if len(self._face_seen) - len(stale) > MAX_FACE_STATES:
            keep = sorted(self._face_seen, key=self._face_seen.get)[-MAX_FACE_STATES:]
            stale = [k for k in self._face_seen if k not in keep]
        for k in stale:
            self._face_seen.pop(k, None)
            self._filters.pop(k, None)
