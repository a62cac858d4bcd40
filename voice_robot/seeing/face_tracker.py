"""The face tracker: camera images -> FaceFrames (faces with bearing, distance, head pose, gaze, mouth).

Per image: candidate faces come from the previous frame's faces (their landmark boxes) and, every
``detect_interval_s`` or when nothing is tracked, from the detector. Each candidate is meshed
(MediaPipe Face Mesh with irises, which also rejects false detections), duplicates are removed, head
pose comes from PnP against a generic face, eye gaze from the irises, and ids from
``FaceIdTracker``. Everything is turned into the robot base frame (``CameraModel``) and published as
the same ``FaceObservation`` the simulator produces; ``looked_at`` is left to the attention stage.

``FaceAnalyzer`` does the per-image work as plain functions of an image (for tests and tools);
``FaceTrackerStage`` adds time, ids and the detection schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import CameraSpec, RobotSpec
from voice_robot.pipeline import Stage
from voice_robot.seeing.config import SeeingConfig
from voice_robot.seeing.detection import FaceBox, FaceDetector, iou, make_detector
from voice_robot.seeing.geometry import CameraModel, azimuth_elevation
from voice_robot.seeing.head_pose import HeadPose, estimate_head_pose, gaze_direction, mouth_open
from voice_robot.seeing.images import BadImage, to_bgr
from voice_robot.seeing.mesh import FaceLandmarks, FaceMesher
from voice_robot.seeing.tracking import FaceIdTracker

DUPLICATE_IOU = 0.4
HEAD_MARGIN = 0.15           # a head reaches this far (share of the face box) beyond the face landmarks
PART_OF_FACE = 0.3           # share of a face box inside a bigger face that makes it part of that face


def _grown(box: FaceBox, margin: float) -> FaceBox:
    dx, dy = box.width * margin, box.height * margin
    return FaceBox(box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy, box.score)


def overlap_of(inner: FaceBox, outer: FaceBox) -> float:
    """Share of ``inner``'s area that lies inside ``outer``."""
    ix = max(0.0, min(inner.x1, outer.x1) - max(inner.x0, outer.x0))
    iy = max(0.0, min(inner.y1, outer.y1) - max(inner.y0, outer.y0))
    return ix * iy / inner.area() if inner.area() > 0 else 0.0


@dataclass
class FaceMeasurement:
    """One face in one image, in the robot base frame; ``face_id`` is set by the tracker."""
    box: FaceBox                       # tight landmark box, image pixels
    landmarks: FaceLandmarks
    pose: HeadPose
    position_base: np.ndarray          # face centre, m
    bearing: float
    elevation: float
    distance: float
    head_yaw: float
    head_pitch: float
    gaze_base: np.ndarray
    mouth_open: float
    confidence: float
    eye_weight: float = 0.0
    hint: str | None = None            # the track this face was followed from
    face_id: str = ''
    extra: dict = field(default_factory=dict)

    def observation(self) -> m.FaceObservation:
        return m.FaceObservation(
            face_id=self.face_id, bearing=self.bearing, distance=self.distance, elevation=self.elevation,
            head_yaw=self.head_yaw, head_pitch=self.head_pitch,
            gaze_direction=tuple(float(v) for v in self.gaze_base), mouth_open=self.mouth_open,
            confidence=self.confidence, looked_at='', looked_at_probability=0.0)


class FaceAnalyzer:
    """Detection, mesh, head pose, gaze and mouth for one image at a time."""

    def __init__(self, config, camera_spec: CameraSpec | None = None, focal_px: float | None = None,
                 detector: FaceDetector | None = None):
        self.config = config
        self.camera_spec = camera_spec or CameraSpec()
        self.focal_px = focal_px
        self.detector = detector or make_detector(config)
        self.mesher = FaceMesher(config.refine_landmarks, config.mesh_min_confidence, config.crop_scale)
        self._cameras: dict[tuple[int, int], CameraModel] = {}

    def camera_for(self, width: int, height: int) -> CameraModel:
        """Intrinsics for the actual image size (the spec's hfov holds whatever the resolution)."""
        key = (width, height)
        cam = self._cameras.get(key)
        if cam is None:
            spec = self.camera_spec
            cam = CameraModel.from_fov(width, height, spec.hfov_deg, spec.height_m, spec.pitch_deg, self.focal_px)
            if len(self._cameras) > 8:
                self._cameras.clear()
            self._cameras[key] = cam
        return cam

    def detect(self, image_bgr: np.ndarray, step: int | None = None) -> list[FaceBox]:
        return self.detector.detect(image_bgr, step)

    def analyze(self, image, encoding: str = 'bgr8') -> list[FaceMeasurement]:
        """Every face in a still image (detector on the whole image, no ids)."""
        img = to_bgr(image, encoding)
        return self.measure(img, [(box, None) for box in self.detect(img)])

    def measure(self, image_bgr: np.ndarray, candidates: list[tuple[FaceBox, str | None]]) -> list[FaceMeasurement]:
        """Mesh and measure candidate boxes (box, hint); duplicates and non-faces are dropped."""
        h, w = image_bgr.shape[:2]
        cam = self.camera_for(w, h)
        measured: list[FaceMeasurement] = []
        for box, hint in candidates[: 3 * self.config.max_faces]:
            landmarks = self.mesher.mesh(image_bgr, box)
            if landmarks is None:
                continue
            meas = self._measure_one(landmarks, cam, w, h, box.score)
            if meas is not None:
                meas.hint = hint
                measured.append(meas)
        # Larger faces first: a small "face" overlapping a bigger one is part of it (an ear, a reflection).
        measured.sort(key=lambda f: -f.box.size)
        found: list[FaceMeasurement] = []
        for meas in measured:
            same = next((f for f in found if iou(meas.box, f.box) > DUPLICATE_IOU), None)
            if same is not None:
                same.hint = same.hint or meas.hint      # the same face reached from a track keeps its id
                continue
            if any(overlap_of(meas.box, _grown(f.box, HEAD_MARGIN)) > PART_OF_FACE for f in found):
                continue
            found.append(meas)
        found.sort(key=lambda f: -f.box.size)
        return found[: self.config.max_faces]

    def _measure_one(self, landmarks: FaceLandmarks, cam: CameraModel, width: int, height: int,
                     detector_score: float) -> FaceMeasurement | None:
        cfg = self.config
        pose = estimate_head_pose(landmarks, cam, cfg.assumed_face_height_m)
        if pose is None:
            return None
        tight = landmarks.box
        position = cam.point_to_base(pose.translation)
        rel = position - cam.position_base
        distance = float(np.linalg.norm(rel))
        bearing, elevation = azimuth_elevation(rel)
        head_yaw, head_pitch = azimuth_elevation(cam.direction_to_base(pose.facing_optical))
        gaze_opt, eye_weight = gaze_direction(landmarks, pose, cam, cfg.eye_gaze_gain, cfg.max_eye_angle_deg)
        gaze = cam.direction_to_base(gaze_opt)
        # Confidence: partly outside the image, a poor model fit, or a tiny face all make it less sure.
        inside = landmarks.inside_share(width, height)
        fit = float(np.clip(1.0 - 5.0 * pose.reprojection_px / max(tight.size, 1.0), 0.3, 1.0))
        small = float(np.clip(tight.size / (2.0 * cfg.min_face_px), 0.5, 1.0))
        confidence = float(np.clip(0.97 * inside ** 2 * fit * small * (0.7 + 0.3 * min(1.0, detector_score + 0.3)),
                                   0.01, 1.0))
        return FaceMeasurement(
            box=tight, landmarks=landmarks, pose=pose, position_base=position, bearing=bearing,
            elevation=elevation, distance=distance, head_yaw=head_yaw, head_pitch=head_pitch,
            gaze_base=gaze / np.linalg.norm(gaze), mouth_open=mouth_open(landmarks, cfg.mouth_full_open),
            confidence=confidence, eye_weight=eye_weight)

    def close(self) -> None:
        self.detector.close()
        self.mesher.close()


class FaceTrackerStage(Stage):
    """Stage 'face_tracker': camera/image -> faces/observations."""

    name = 'face_tracker'
    outputs = ('faces/observations',)

    def __init__(self, robot: RobotSpec, config: SeeingConfig | None = None,
                 analyzer: FaceAnalyzer | None = None):
        super().__init__(robot.name)
        self.config = config or SeeingConfig()
        cfg = self.config.face_tracker
        if robot.camera is None:
            raise ValueError(f'robot {robot.name} has no camera: the face tracker needs RobotSpec.camera')
        focal = self.config.camera.focal_px or (robot.camera.focal_length_px if robot.camera else None)
        self.analyzer = analyzer or FaceAnalyzer(cfg, robot.camera, focal)
        self.tracker = FaceIdTracker(cfg.match_iou, cfg.lost_after_s, max_tracks=4 * cfg.max_faces)
        self._last_stamp = -math.inf
        self._last_detection = -math.inf
        self._need_detection = True
        self._detection_step = 0

    def inputs(self):
        return {'camera/image': self.on_image}

    def on_image(self, frame: m.ImageFrame) -> None:
        stamp = getattr(frame, 'stamp', None)
        if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            return self.drop('bad stamp', repr(stamp))
        if stamp <= self._last_stamp:
            return self.drop('out of order', f'{stamp:.3f} after {self._last_stamp:.3f}')
        try:
            img = to_bgr(frame.image, getattr(frame, 'encoding', 'bgr8') or 'bgr8')
        except BadImage as exc:
            return self.drop('bad image', str(exc))
        self._last_stamp = stamp
        faces = self.process(img, stamp)
        self.stats['faces'] += len(faces)
        self.publish('faces/observations', m.FaceFrame(stamp=stamp, robot=self.robot,
                                                       faces=[f.observation() for f in faces]))

    def process(self, img: np.ndarray, stamp: float) -> list[FaceMeasurement]:
        """Faces with ids in one BGR image taken at ``stamp``."""
        cfg = self.config.face_tracker
        self.tracker.expire(stamp)
        candidates: list[tuple[FaceBox, str | None]] = [(tr.box, tr.face_id) for tr in self.tracker.tracks]
        since = stamp - self._last_detection
        # A lost or missing face asks for detection sooner, but never on every frame: it is the costly part.
        if since >= cfg.detect_interval_s or (self._need_detection and since >= cfg.detect_interval_s / 5):
            self._last_detection = stamp
            self.stats['detections'] += 1
            # The first search is complete; later ones cycle through cheaper partial searches.
            step = None if self._detection_step == 0 else self._detection_step
            self._detection_step += 1
            for box in self.analyzer.detect(img, step):
                if not any(iou(box, c) > DUPLICATE_IOU for c, _ in candidates):
                    candidates.append((box, None))
        faces = self.analyzer.measure(img, candidates)
        followed = {f.hint for f in faces if f.hint}
        # A tracked face that was not found again may have moved out of its crop: detect next frame.
        self._need_detection = any(tr.face_id not in followed for tr in self.tracker.tracks)
        ids = self.tracker.update([f.box for f in faces], stamp, [f.hint for f in faces])
        for f, face_id in zip(faces, ids):
            f.face_id = face_id
        return faces

    def close(self) -> None:
        self.analyzer.close()

