"""Face mesh on one face crop: 468 landmarks (478 with the irises) in full-image pixels.

Each candidate face is cut out as a square around its box (padded with black where the square leaves
the image, so faces at the border keep their scale), resized and handed to MediaPipe Face Mesh
(``mediapipe.solutions.face_mesh``, bundled model, static mode). The mesh's own detector runs on the
crop, so a crop without a face (a false detection) yields nothing. Of the faces found in a crop the
one nearest its centre is kept: in a crowd a crop may also hold a neighbour's face.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from voice_robot.seeing.detection import FaceBox

MESH_INPUT_PX = 256

# Landmark indices of the MediaPipe face mesh used below (subject's right = image left when frontal).
FOREHEAD = 10
CHIN = 152
NOSE_TIP = 1
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM = 33, 133, 159, 145
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_TOP, LEFT_EYE_BOTTOM = 263, 362, 386, 374
RIGHT_IRIS = 468         # centre of the subject's right iris (468..472)
LEFT_IRIS = 473          # centre of the subject's left iris (473..477)
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
MOUTH_RIGHT, MOUTH_LEFT = 61, 291


@dataclass
class FaceLandmarks:
    """Mesh landmarks of one face in full-image pixels: (N, 3), z in pixels (relative depth)."""
    points: np.ndarray
    crop_inside: float       # share of the crop square that lies inside the image
    has_iris: bool

    @property
    def box(self) -> FaceBox:
        """The tight box of the landmarks."""
        x0, y0 = self.points[:, 0].min(), self.points[:, 1].min()
        x1, y1 = self.points[:, 0].max(), self.points[:, 1].max()
        return FaceBox(float(x0), float(y0), float(x1), float(y1))

    def inside_share(self, width: int, height: int) -> float:
        """Share of the landmarks that fall inside the image."""
        p = self.points
        inside = (p[:, 0] >= 0) & (p[:, 0] < width) & (p[:, 1] >= 0) & (p[:, 1] < height)
        return float(np.mean(inside))

    def xy(self, index: int) -> np.ndarray:
        return self.points[index, :2]


class FaceMesher:
    """MediaPipe Face Mesh applied to square crops of an image."""

    def __init__(self, refine_landmarks: bool = True, min_confidence: float = 0.5, crop_scale: float = 2.0):
        import mediapipe as mp
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=2, refine_landmarks=refine_landmarks,
            min_detection_confidence=min_confidence)
        self.refine_landmarks = refine_landmarks
        self.crop_scale = crop_scale

    def mesh(self, image_bgr: np.ndarray, box: FaceBox) -> FaceLandmarks | None:
        """Landmarks of the face in ``box`` or None when the crop holds no face."""
        h, w = image_bgr.shape[:2]
        cx, cy = box.centre
        side = max(8, int(round(box.size * self.crop_scale)))
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        crop, inside = _padded_crop(image_bgr, x0, y0, side)
        if inside <= 0.0:
            return None
        scale = side / MESH_INPUT_PX
        resized = cv2.resize(crop, (MESH_INPUT_PX, MESH_INPUT_PX),
                             interpolation=cv2.INTER_AREA if side > MESH_INPUT_PX else cv2.INTER_LINEAR)
        result = self._mesh.process(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))
        if not result.multi_face_landmarks:
            return None
        best, best_d = None, math.inf
        for face in result.multi_face_landmarks:
            pts = np.array([(lm.x, lm.y, lm.z) for lm in face.landmark], dtype=np.float64) * MESH_INPUT_PX
            centre = pts[:, :2].mean(axis=0)
            d = math.hypot(centre[0] - MESH_INPUT_PX / 2, centre[1] - MESH_INPUT_PX / 2)
            if d < best_d:
                best, best_d = pts, d
        if best is None or best_d > 0.3 * MESH_INPUT_PX:
            return None          # the face found is a neighbour's, not the one we were given
        extent = float(np.ptp(best[:, 1]))
        expected = MESH_INPUT_PX / self.crop_scale
        if not 0.4 * expected <= extent <= 2.0 * expected:
            return None          # a face of another size: part of a bigger face, or one face in a crowd scene
        points = best * scale
        points[:, 0] += x0
        points[:, 1] += y0
        return FaceLandmarks(points, inside, has_iris=points.shape[0] >= 478)

    def close(self) -> None:
        self._mesh.close()


def _padded_crop(image: np.ndarray, x0: int, y0: int, side: int) -> tuple[np.ndarray, float]:
    """A side x side crop starting at (x0, y0), black where it leaves the image; share inside."""
    h, w = image.shape[:2]
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
    if sx1 <= sx0 or sy1 <= sy0:
        return crop, 0.0
    crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return crop, (sx1 - sx0) * (sy1 - sy0) / float(side * side)
