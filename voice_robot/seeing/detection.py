"""Face detectors: find face boxes in a whole image; the face mesh then verifies and refines each one.

Two backends share the ``FaceDetector`` interface and are chosen by name (``face_tracker.detector``):

* ``haar``: OpenCV Haar cascades from ``cv2.data`` run on the image and on copies rotated by
  ``haar_rotations_deg`` (frontal cascades miss tilted heads; rotated passes find them). It finds
  small faces in group photos; its false alarms (hands, patterns) are rejected by the mesh.
* ``mediapipe``: the bundled full-range BlazeFace model; fast, but it misses small faces.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

# Detection on very large frames is slow and gains nothing: shrink them to this longest side first.
DETECT_MAX_SIDE_PX = 960
HAAR_MIN_WINDOW_PX = 24


@dataclass
class FaceBox:
    """An axis-aligned face box in image pixels."""
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def size(self) -> float:
        return max(self.width, self.height)

    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


def iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area() + b.area() - inter
    return inter / union if union > 0 else 0.0


def suppress_duplicates(boxes: list[FaceBox], overlap: float = 0.3) -> list[FaceBox]:
    """Keep the best-scoring box of each group of overlapping or concentric boxes."""
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: -b.score):
        cx, cy = box.centre
        duplicate = False
        for k in kept:
            kx, ky = k.centre
            if iou(box, k) > overlap or math.hypot(cx - kx, cy - ky) < 0.35 * min(box.size, k.size):
                duplicate = True
                break
        if not duplicate:
            kept.append(box)
    return kept


class FaceDetector(ABC):
    """Finds candidate faces in a BGR uint8 image."""

    name = 'detector'

    @abstractmethod
    def detect(self, image_bgr: np.ndarray, step: int | None = None) -> list[FaceBox]:
        """Candidate face boxes, best first.

        ``step`` None: search everything. An integer k asks for the k-th part of a cheaper periodic
        schedule (a tracker calls with k = 0, 1, 2, ...); detectors without one ignore it.
        """

    def close(self) -> None:
        """Release the model."""


class HaarFaceDetector(FaceDetector):
    name = 'haar'

    def __init__(self, min_face_px: int = 32, rotations_deg=(0.0,), min_neighbors: int = 5,
                 scale_factor: float = 1.1, cascade: str = 'haarcascade_frontalface_default.xml'):
        path = cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f'cannot load the Haar cascade {path}')
        self.min_face_px = int(min_face_px)
        self.rotations = [float(r) for r in rotations_deg] or [0.0]
        self.min_neighbors = int(min_neighbors)
        self.scale_factor = float(scale_factor)

    def passes(self, step: int | None) -> list[float]:
        """Rotations searched at ``step``: all, or the upright pass plus one rotated pass in turn."""
        if step is None:
            return self.rotations
        upright = [r for r in self.rotations if abs(r) < 1e-6]
        tilted = [r for r in self.rotations if abs(r) >= 1e-6]
        return upright + ([tilted[step % len(tilted)]] if tilted else [])

    def detect(self, image_bgr: np.ndarray, step: int | None = None) -> list[FaceBox]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        scale = min(1.0, DETECT_MAX_SIDE_PX / max(h, w))
        if self.min_face_px * scale < HAAR_MIN_WINDOW_PX:
            scale = min(1.0, HAAR_MIN_WINDOW_PX / self.min_face_px)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_px = max(HAAR_MIN_WINDOW_PX, round(self.min_face_px * scale))
        boxes = []
        for angle in self.passes(step):
            boxes += self._detect_rotated(gray, angle, min_px, scale)
        return suppress_duplicates(boxes)

    def _detect_rotated(self, gray: np.ndarray, angle: float, min_px: int, scale: float) -> list[FaceBox]:
        h, w = gray.shape
        if abs(angle) < 1e-6:
            rotated, back = gray, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        else:
            # Rotate onto a canvas large enough to keep the corners, remember how to map back.
            rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
            nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
            rot[0, 2] += nw / 2 - w / 2
            rot[1, 2] += nh / 2 - h / 2
            rotated = cv2.warpAffine(gray, rot, (nw, nh))
            back = cv2.invertAffineTransform(rot)
        found, _, weights = self._cascade.detectMultiScale3(
            rotated, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_px, min_px),
            outputRejectLevels=True)
        out = []
        for (x, y, bw, bh), weight in zip(found, np.ravel(weights) if len(found) else []):
            cx, cy = back @ np.array([x + bw / 2, y + bh / 2, 1.0])
            half = bw / 2 / scale
            cx, cy = cx / scale, cy / scale
            # Rotated passes are less trustworthy than the upright one.
            score = float(1.0 / (1.0 + math.exp(-float(weight)))) * (1.0 if abs(angle) < 1e-6 else 0.9)
            out.append(FaceBox(cx - half, cy - half, cx + half, cy + half, score))
        return out


class MediapipeFaceDetector(FaceDetector):
    name = 'mediapipe'

    def __init__(self, min_confidence: float = 0.5, min_face_px: int = 32):
        import mediapipe as mp
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence)
        self.min_face_px = min_face_px

    def detect(self, image_bgr: np.ndarray, step: int | None = None) -> list[FaceBox]:
        h, w = image_bgr.shape[:2]
        result = self._detector.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        out = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            box = FaceBox(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h,
                          float(det.score[0]) if det.score else 0.5)
            if box.size >= self.min_face_px:
                out.append(box)
        return suppress_duplicates(out)

    def close(self) -> None:
        self._detector.close()


def make_detector(config) -> FaceDetector:
    """The detector named by a FaceTrackerConfig."""
    if config.detector == 'haar':
        return HaarFaceDetector(config.min_face_px, config.haar_rotations_deg, config.haar_min_neighbors,
                                config.haar_scale_factor)
    if config.detector == 'mediapipe':
        return MediapipeFaceDetector(config.mediapipe_min_confidence, config.min_face_px)
    raise ValueError(f'unknown face detector {config.detector!r} (haar or mediapipe)')
