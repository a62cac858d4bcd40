"""Simulated face observations: where each human's head points over time and what each robot's camera sees.

The simulator does not render images: it produces what a face tracker plus head-pose and gaze
estimation would publish (``FaceFrame``), with the errors such a pipeline has: noisy bearing and
distance, correlated head-pose and eye-gaze errors, missed detections for faces turned away, and
tracker ids that change when a face is lost for more than a second. ``looked_at`` is always left
empty: deciding what a face looks at is the system's job (the attention stage).

Head motion: each human has a head target over time (``facing``, utterance ``gaze``, ``look`` events);
the head turns to each new target with a minimum-jerk profile lasting 0.25-0.4 s.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from voice_robot.messages import FaceFrame, FaceObservation
from voice_robot.sim.truth import FaceTrack

EYE_ABOVE_MOUTH_M = 0.07          # eyes are where gaze starts
FACE_CENTRE_ABOVE_MOUTH_M = 0.04  # what a face detector's box centre corresponds to
LOOK_DOWN_PITCH = math.radians(-35.0)
TRACK_LOST_S = 1.0                # a face unseen for longer comes back with a new id


def wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s ** 3 * (10 - 15 * s + 6 * s * s)


def turn_duration(angle: float) -> float:
    """People turn their head in ~0.25 s for small shifts and ~0.4 s for 90 degrees or more."""
    return 0.25 + 0.15 * min(1.0, abs(angle) / (math.pi / 2))


def robot_head_height(robot) -> float:
    """Where people look when they look at a robot: its camera, or a head just above its array."""
    return robot.camera.height_m if robot.camera is not None else robot.mic_array.height_m + 0.2


def eye_position(human) -> np.ndarray:
    return np.asarray(human.position_m, dtype=float) + np.array([0.0, 0.0, EYE_ABOVE_MOUTH_M])


def face_position(human) -> np.ndarray:
    return np.asarray(human.position_m, dtype=float) + np.array([0.0, 0.0, FACE_CENTRE_ABOVE_MOUTH_M])


def direction_to(src: np.ndarray, dst: np.ndarray) -> tuple[float, float]:
    d = np.asarray(dst, dtype=float) - np.asarray(src, dtype=float)
    return math.atan2(d[1], d[0]), math.atan2(d[2], math.hypot(d[0], d[1]))


def unit_vector(yaw: float, pitch: float) -> np.ndarray:
    return np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])


def target_point(scenario, target: str) -> np.ndarray | None:
    """Map point of a named target (robot head or human mouth), None for 'none' or unknown names."""
    for robot in scenario.robots:
        if robot.name == target:
            return np.array([robot.position_m[0], robot.position_m[1], robot_head_height(robot)])
    for human in scenario.humans:
        if human.name == target:
            return np.asarray(human.position_m, dtype=float)
    return None


def head_direction(scenario, human, target, current_yaw: float) -> tuple[float, float]:
    """(yaw, pitch) in map of ``human``'s head looking at ``target`` (name, 'none' or yaw in degrees)."""
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return wrap(math.radians(float(target))), 0.0
    if target == 'none':
        return current_yaw, LOOK_DOWN_PITCH
    point = target_point(scenario, target)
    if point is None:
        raise ValueError(f'unknown head target {target!r} for {human.name}')
    return direction_to(eye_position(human), point)


def default_facing(scenario, human) -> tuple[float, float]:
    """Without ``facing``: towards the middle of everyone else in the room, level."""
    others = [np.array([r.position_m[0], r.position_m[1]]) for r in scenario.robots]
    others += [np.asarray(h.position_m[:2], dtype=float) for h in scenario.humans if h.name != human.name]
    centre = np.mean(others, axis=0)
    d = centre - np.asarray(human.position_m[:2], dtype=float)
    if np.hypot(*d) < 1e-6:
        return 0.0, 0.0
    return math.atan2(d[1], d[0]), 0.0


@dataclass
class _Turn:
    t0: float
    start: tuple[float, float]
    end: tuple[float, float]
    duration: float


class HeadMotion:
    """One human's head orientation (map yaw, pitch) over time."""

    def __init__(self, yaw: float, pitch: float):
        self._turns = [_Turn(0.0, (yaw, pitch), (yaw, pitch), 0.0)]
        self._starts = [0.0]

    def pose(self, t: float) -> tuple[float, float]:
        turn = self._turns[max(0, bisect.bisect_right(self._starts, t) - 1)]
        if turn.duration <= 0 or t >= turn.t0 + turn.duration:
            return turn.end
        s = min_jerk((t - turn.t0) / turn.duration)
        yaw = turn.start[0] + s * wrap(turn.end[0] - turn.start[0])
        pitch = turn.start[1] + s * (turn.end[1] - turn.start[1])
        return wrap(yaw), pitch

    def turn_to(self, t: float, yaw: float, pitch: float) -> float:
        """Start turning at ``t`` towards (yaw, pitch); returns when the head arrives."""
        t = max(t, self._starts[-1])
        start = self.pose(t)
        angle = math.hypot(wrap(yaw - start[0]), pitch - start[1])
        duration = turn_duration(angle) if angle > 1e-6 else 0.0
        self._turns.append(_Turn(t, start, (wrap(yaw), pitch), duration))
        self._starts.append(t)
        return t + duration

    @property
    def yaw(self) -> float:
        return self._turns[-1].end[0]


class LipActivity:
    """How open each human's mouth is while speaking, from the loudness envelope of their speech."""

    HOP_S = 0.01

    def __init__(self):
        self._segments: dict[str, list[tuple[float, float, np.ndarray]]] = {}

    def add(self, human: str, start: float, audio: np.ndarray, sample_rate: int) -> None:
        hop = max(1, int(self.HOP_S * sample_rate))
        audio = np.asarray(audio, dtype=np.float64)
        n = max(1, len(audio) // hop)
        frames = audio[:n * hop].reshape(n, hop) if len(audio) >= hop else np.zeros((1, hop))
        env = np.sqrt(np.mean(frames ** 2, axis=1))
        # lips lag and smooth the sound a little (~30 ms)
        kernel = np.ones(3) / 3
        env = np.convolve(env, kernel, mode='same')
        ref = np.percentile(env, 95) if env.size else 0.0
        env = np.clip(env / ref, 0.0, 1.0) if ref > 1e-9 else np.zeros_like(env)
        self._segments.setdefault(human, []).append((start, start + len(audio) / sample_rate, env))

    def drive(self, human: str, t: float) -> float | None:
        """0..1 while ``human`` speaks at ``t``, None when silent."""
        for start, end, env in reversed(self._segments.get(human, ())):
            if start <= t < end:
                return float(env[min(len(env) - 1, int((t - start) / self.HOP_S))])
        return None


class _Ar1:
    """Slowly varying estimation error (first-order autoregressive), one value per key."""

    def __init__(self, rng: np.random.Generator, std: float, tau_s: float):
        self.rng, self.std, self.tau = rng, std, tau_s
        self.state: dict = {}
        self.last: dict = {}

    def sample(self, key, t: float) -> float:
        if key not in self.state:
            self.state[key] = self.rng.normal(0.0, self.std)
        else:
            a = math.exp(-max(0.0, t - self.last[key]) / self.tau)
            self.state[key] = a * self.state[key] + math.sqrt(1 - a * a) * self.rng.normal(0.0, self.std)
        self.last[key] = t
        return self.state[key]


class FaceCamera:
    """One robot's camera as a face-tracking pipeline would report it."""

    BEARING_STD = math.radians(1.5)
    ELEVATION_STD = math.radians(1.5)
    DISTANCE_STD = 0.05               # relative: half a per-track bias (face size), half jitter
    HEAD_STD = math.radians(5.0)
    EYE_STD = math.radians(3.0)
    DETECT_FULL_DEG = 75.0            # faces turned further away are missed more and more often
    DETECT_NONE_DEG = 100.0           # beyond this only the back of the head is visible
    MISS_RATE = 0.01
    MIN_DISTANCE_M = 0.2

    def __init__(self, scenario, robot, heads: dict[str, HeadMotion], lips: LipActivity,
                 rng: np.random.Generator):
        if robot.camera is None:
            raise ValueError(f'robot {robot.name} has no camera')
        self.scenario, self.robot, self.spec = scenario, robot, robot.camera
        self.heads, self.lips, self.rng = heads, lips, rng
        self.half_hfov = math.radians(self.spec.hfov_deg) / 2
        self.half_vfov = math.atan(math.tan(self.half_hfov) * self.spec.height / self.spec.width)
        self.camera_map = np.array([robot.position_m[0], robot.position_m[1], self.spec.height_m])
        self._next_frame = 0
        self._head_yaw_err = _Ar1(rng, self.HEAD_STD * 0.8, 0.4)
        self._head_pitch_err = _Ar1(rng, self.HEAD_STD * 0.8, 0.4)
        self._eye_yaw = _Ar1(rng, self.EYE_STD, 0.5)
        self._eye_pitch = _Ar1(rng, self.EYE_STD, 0.5)
        self._distance_bias: dict[str, float] = {}
        self._tracks: dict[str, tuple[str, float]] = {}     # human -> (face id, last seen)
        self._ids = 0
        self.tracks: list[FaceTrack] = []      # ground truth of the ids, never published
        self._track_truth: dict[str, FaceTrack] = {}

    def frames_before(self, t_end: float) -> list[FaceFrame]:
        """Every frame stamped before ``t_end`` not produced yet (frames at k / fps)."""
        out = []
        while self._next_frame / self.spec.fps < t_end - 1e-9:
            out.append(self.frame(self._next_frame / self.spec.fps))
            self._next_frame += 1
        return out

    def skip_before(self, t_end: float) -> None:
        while self._next_frame / self.spec.fps < t_end - 1e-9:
            self._next_frame += 1

    def frame(self, t: float) -> FaceFrame:
        faces = []
        for human in self.scenario.humans:
            obs = self._observe(human, t)
            if obs is not None:
                faces.append(obs)
        return FaceFrame(stamp=t, robot=self.robot.name, faces=faces)

    def _observe(self, human, t: float) -> FaceObservation | None:
        rng = self.rng
        face = face_position(human)
        rel = self.robot.map_to_base(face[None])[0] - np.array([0.0, 0.0, self.spec.height_m])
        distance = float(np.linalg.norm(rel))
        bearing = math.atan2(rel[1], rel[0])
        elevation = math.atan2(rel[2], math.hypot(rel[0], rel[1]))
        if distance > self.spec.max_range_m or distance < self.MIN_DISTANCE_M:
            return None
        if abs(bearing) > self.half_hfov or abs(elevation - math.radians(self.spec.pitch_deg)) > self.half_vfov:
            return None
        yaw, pitch = self.heads[human.name].pose(t)
        facing = unit_vector(yaw, pitch)
        to_camera = (self.camera_map - face) / max(distance, 1e-9)
        off = math.degrees(math.acos(float(np.clip(facing @ to_camera, -1.0, 1.0))))
        p_detect = 1.0 - self.MISS_RATE
        if off > self.DETECT_FULL_DEG:
            p_detect *= max(0.0, (self.DETECT_NONE_DEG - off) / (self.DETECT_NONE_DEG - self.DETECT_FULL_DEG))
        if rng.random() >= p_detect:
            return None
        face_id = self._track(human.name, t)
        bias = self._distance_bias.setdefault(face_id, rng.normal(0.0, self.DISTANCE_STD * 0.8))
        key = human.name
        head_yaw_map = yaw + self._head_yaw_err.sample(key, t) + rng.normal(0.0, self.HEAD_STD * 0.6)
        head_pitch = pitch + self._head_pitch_err.sample(key, t) + rng.normal(0.0, self.HEAD_STD * 0.6)
        gaze_yaw = head_yaw_map + self._eye_yaw.sample(key, t)
        gaze_pitch = head_pitch + self._eye_pitch.sample(key, t)
        gaze_map = unit_vector(gaze_yaw, gaze_pitch)
        c, s = math.cos(self.robot.yaw), math.sin(self.robot.yaw)
        gaze_base = (c * gaze_map[0] + s * gaze_map[1], -s * gaze_map[0] + c * gaze_map[1], gaze_map[2])
        drive = self.lips.drive(human.name, t)
        if drive is None:
            mouth = 0.05 + rng.normal(0.0, 0.02)
        else:
            mouth = 0.2 + 0.6 * drive + rng.normal(0.0, 0.04)
        confidence = 0.97 - 0.25 * max(0.0, off - 30.0) / 70.0 - 0.15 * distance / self.spec.max_range_m
        confidence += rng.normal(0.0, 0.02)
        return FaceObservation(
            face_id=face_id,
            bearing=wrap(bearing + rng.normal(0.0, self.BEARING_STD)),
            distance=max(0.05, distance * (1.0 + bias + rng.normal(0.0, self.DISTANCE_STD * 0.6))),
            elevation=elevation + rng.normal(0.0, self.ELEVATION_STD),
            head_yaw=wrap(head_yaw_map - self.robot.yaw),
            head_pitch=float(np.clip(head_pitch, -math.pi / 2, math.pi / 2)),
            gaze_direction=tuple(float(v) for v in gaze_base),
            mouth_open=float(np.clip(mouth, 0.0, 1.0)),
            confidence=float(np.clip(confidence, 0.05, 1.0)),
            looked_at='',
        )

    def _track(self, human: str, t: float) -> str:
        current = self._tracks.get(human)
        if current is None or t - current[1] > TRACK_LOST_S:
            self._ids += 1
            face_id = f'f{self._ids}'
            self._track_truth[face_id] = FaceTrack(self.robot.name, face_id, human, t, t)
            self.tracks.append(self._track_truth[face_id])
        else:
            face_id = current[0]
        self._tracks[human] = (face_id, t)
        self._track_truth[face_id].last_seen = t
        return face_id
