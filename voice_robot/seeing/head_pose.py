"""Head pose, eye gaze and mouth opening from face mesh landmarks.

Head pose: ``cv2.solvePnP`` of nine stable mesh landmarks (eye corners, nose tip, mouth corners, chin,
forehead) against a generic adult face. The model's numbers are rounded anthropometric values (mm) whose
depths follow the mesh's own relative depth on a near-frontal face; the model frame is the camera
optical frame of a face looking straight into the camera (x image-right, y down, z into the head), so
the face looks along model -z. Its origin is the face centre (between the eyes and the mouth), so the
PnP translation is the camera-to-face-centre vector.

Eye gaze: each eyeball is a sphere behind the eye corners; the iris centre seen in the image is a ray
that meets that sphere; the gaze is from the sphere's centre through that point. This handles head
rotation without a calibration. Eye-in-head angles are clipped and blended with the head direction,
and small eyes (few pixels, where one pixel is many degrees) count less.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from voice_robot.seeing import mesh as lm
from voice_robot.seeing.geometry import CameraModel

# Generic face, mm, model frame (see module docstring). Nominal height (forehead landmark to chin) 167 mm.
_MODEL_MM = {
    lm.RIGHT_EYE_OUTER: (-46.0, -3.0, 5.0),
    lm.RIGHT_EYE_INNER: (-17.0, 0.0, 0.0),
    lm.LEFT_EYE_INNER: (17.0, 0.0, 0.0),
    lm.LEFT_EYE_OUTER: (46.0, -3.0, 5.0),
    lm.NOSE_TIP: (0.0, 42.0, -34.0),
    lm.MOUTH_RIGHT: (-30.0, 56.0, 10.0),
    lm.MOUTH_LEFT: (30.0, 56.0, 10.0),
    lm.CHIN: (0.0, 112.0, 12.0),
    lm.FOREHEAD: (0.0, -55.0, -17.0),
}
_FACE_CENTRE_MM = np.array([0.0, 35.0, 0.0])
# The face a 0.22 m "hairline to chin" setting describes: the model above at scale 1.
NOMINAL_FACE_HEIGHT_M = 0.22
# Eyeballs: centres behind the middle of the eye corners; the iris centre lies ~10 mm from the centre.
_EYEBALL_CENTRE_MM = {'right': (-31.5, -1.5, 8.0), 'left': (31.5, -1.5, 8.0)}
_IRIS_RADIUS_MM = 10.0
FACE_FORWARD_MODEL = np.array([0.0, 0.0, -1.0])

MODEL_INDICES = tuple(_MODEL_MM)


@dataclass
class HeadPose:
    rotation: np.ndarray          # optical <- model
    translation: np.ndarray       # face centre in the optical frame, m
    reprojection_px: float        # RMS error of the fitted model points
    scale_m: float                # metres per model millimetre

    @property
    def facing_optical(self) -> np.ndarray:
        """Unit vector the face points along, in the optical frame."""
        return self.rotation @ FACE_FORWARD_MODEL


def model_points_m(face_height_m: float = NOMINAL_FACE_HEIGHT_M) -> tuple[np.ndarray, float]:
    """(9, 3) model points in metres around the face centre, and metres per model millimetre."""
    scale = 1e-3 * face_height_m / NOMINAL_FACE_HEIGHT_M
    pts = (np.array([_MODEL_MM[i] for i in MODEL_INDICES]) - _FACE_CENTRE_MM) * scale
    return pts, scale


def estimate_head_pose(landmarks: lm.FaceLandmarks, camera: CameraModel,
                       face_height_m: float = NOMINAL_FACE_HEIGHT_M) -> HeadPose | None:
    """Pose of the generic face that best explains the landmarks, or None when PnP fails."""
    obj, scale = model_points_m(face_height_m)
    img = np.array([landmarks.xy(i) for i in MODEL_INDICES], dtype=np.float64)
    if not np.all(np.isfinite(img)):
        return None
    k = camera.matrix
    dist = np.zeros(4)
    try:
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return None
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
    except cv2.error:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    t = tvec.reshape(3)
    if not np.all(np.isfinite(t)) or t[2] <= 0:
        return None            # a face behind the camera: a degenerate fit
    projected, _ = cv2.projectPoints(obj, rvec, tvec, k, dist)
    err = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - img) ** 2, axis=1))))
    return HeadPose(rot, t, err, scale)


def _eye_gaze(landmarks: lm.FaceLandmarks, pose: HeadPose, camera: CameraModel,
              eye: str) -> tuple[np.ndarray, float] | None:
    """(gaze unit vector in optical frame, eye width px) from one eye's iris, or None."""
    iris = lm.RIGHT_IRIS if eye == 'right' else lm.LEFT_IRIS
    outer, inner = ((lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_INNER) if eye == 'right'
                    else (lm.LEFT_EYE_OUTER, lm.LEFT_EYE_INNER))
    width_px = float(np.linalg.norm(landmarks.xy(outer) - landmarks.xy(inner)))
    centre_model = (np.array(_EYEBALL_CENTRE_MM[eye]) - _FACE_CENTRE_MM) * pose.scale_m
    centre = pose.rotation @ centre_model + pose.translation
    radius = _IRIS_RADIUS_MM * pose.scale_m
    u, v = landmarks.xy(iris)
    ray = camera.pixel_ray_optical(u, v)
    # Nearest intersection of the ray from the camera centre with the iris sphere.
    along = float(ray @ centre)
    closest = along * ray
    miss = float(np.linalg.norm(centre - closest))
    if miss < radius:
        point = (along - math.sqrt(radius * radius - miss * miss)) * ray
    else:
        point = centre + (closest - centre) * (radius / max(miss, 1e-9))
    gaze = point - centre
    n = float(np.linalg.norm(gaze))
    if n < 1e-9:
        return None
    return gaze / n, width_px


def gaze_direction(landmarks: lm.FaceLandmarks, pose: HeadPose, camera: CameraModel, gain: float = 1.0,
                   max_eye_angle_deg: float = 35.0) -> tuple[np.ndarray, float]:
    """(gaze unit vector in the optical frame, weight the eyes got in 0..1).

    Without iris landmarks or with gain 0 this is the head direction.
    """
    facing = pose.facing_optical
    if not landmarks.has_iris or gain <= 0:
        return facing, 0.0
    votes, weights = [], []
    for eye in ('right', 'left'):
        found = _eye_gaze(landmarks, pose, camera, eye)
        if found is None:
            continue
        g, width_px = found
        votes.append(g)
        weights.append(width_px)
    if not votes:
        return facing, 0.0
    eye_vec = np.average(np.array(votes), axis=0, weights=np.array(weights) + 1e-6)
    eye_vec /= np.linalg.norm(eye_vec)
    # Eye-in-head angles in the model frame (x right, y down, -z forward).
    local = pose.rotation.T @ eye_vec
    yaw = math.atan2(local[0], -local[2])
    pitch = math.atan2(local[1], math.hypot(local[0], local[2]))
    limit = math.radians(max_eye_angle_deg)
    # One iris pixel is several degrees on a small eye: trust eyes from ~10 px wide, fully from ~25 px.
    size_weight = float(np.clip((max(weights) - 10.0) / 15.0, 0.0, 1.0))
    w = gain * size_weight
    yaw = float(np.clip(yaw, -limit, limit)) * w
    pitch = float(np.clip(pitch, -limit, limit)) * w
    local = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)])
    out = pose.rotation @ local
    return out / np.linalg.norm(out), w


def mouth_open(landmarks: lm.FaceLandmarks, full_open: float = 0.25) -> float:
    """Inner-lip gap over face height (forehead landmark to chin), scaled so ``full_open`` reads 1."""
    gap = float(np.linalg.norm(landmarks.xy(lm.UPPER_LIP_INNER) - landmarks.xy(lm.LOWER_LIP_INNER)))
    height = float(np.linalg.norm(landmarks.xy(lm.FOREHEAD) - landmarks.xy(lm.CHIN)))
    if height < 1e-6:
        return 0.0
    return float(np.clip(gap / height / full_open, 0.0, 1.0))
