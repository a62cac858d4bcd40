"""Settings of the camera, face tracker and visual focus of attention."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from voice_robot.config.base import Section


class CameraConfig(Section):
    """How the camera stage reads frames (the device itself is RobotSpec.camera.device)."""
    backend: Literal['auto', 'opencv', 'image'] = 'auto'   # auto: still image for image files, else OpenCV
    loop_video: bool = True                      # a video file restarts at its end instead of failing
    reopen_min_s: float = Field(0.5, gt=0)       # back-off after a read failure, doubled up to reopen_max_s
    reopen_max_s: float = Field(10.0, gt=0)
    focal_px: Optional[float] = Field(None, gt=0)   # overrides the focal length derived from hfov_deg


class FaceTrackerConfig(Section):
    detector: Literal['haar', 'mediapipe'] = 'haar'
    min_face_px: int = Field(32, ge=8)
    max_faces: int = Field(8, ge=1, le=32)
    refine_landmarks: bool = True                 # iris landmarks for eye gaze
    match_iou: float = Field(0.3, ge=0, le=1)     # IoU to keep a face id across frames
    lost_after_s: float = Field(1.0, gt=0)
    assumed_face_height_m: float = Field(0.22, gt=0)   # hairline to chin: scale of the generic 3-D face
    # Detection is the expensive part: between detections faces are followed by their own landmarks.
    detect_interval_s: float = Field(1.0, ge=0)
    haar_rotations_deg: list[float] = Field(default_factory=lambda: [0.0, -25.0, 25.0], min_length=1)
    haar_min_neighbors: int = Field(5, ge=1)
    haar_scale_factor: float = Field(1.1, gt=1.0, le=2.0)   # pyramid step: larger is faster, misses more
    mediapipe_min_confidence: float = Field(0.5, ge=0, le=1)
    mesh_min_confidence: float = Field(0.5, ge=0, le=1)  # face presence in a crop (rejects false detections)
    crop_scale: float = Field(2.0, ge=1.2, le=4.0)       # crop side / face box side handed to the mesh
    eye_gaze_gain: float = Field(1.0, ge=0, le=2)        # 0: gaze = head pose only
    max_eye_angle_deg: float = Field(35.0, gt=0, le=60)
    mouth_full_open: float = Field(0.25, gt=0, le=1)     # lip gap / face height that counts as fully open


class AttentionConfig(Section):
    """Visual focus of attention: which target a gaze ray points at."""
    gaze_std_deg: float = Field(12.0, gt=0)      # angular noise of the gaze estimate
    none_prior: float = Field(0.15, ge=0, le=1)   # prior that the person looks at nothing listed
    smoothing_s: float = Field(0.3, ge=0)
    look_down_pitch_deg: float = Field(-25.0, le=0)   # gaze pitch below this favours 'none'
    look_down_width_deg: float = Field(3.0, gt=0)     # softness of that threshold
    look_down_none_factor: float = Field(100.0, ge=1)  # how much more likely 'none' is when looking down
    occluder_radius_m: float = Field(0.25, ge=0)      # a person's head hides targets this close to the line of sight
    occluded_factor: float = Field(0.1, ge=0, le=1)
    head_above_array_m: float = Field(0.2, ge=0)      # where people look on a robot without a camera
    persons_timeout_s: float = Field(3.0, gt=0)       # person positions from /persons older than this are ignored
    same_person_m: float = Field(0.5, gt=0)           # a person this close to the face is the face itself
    forget_face_s: float = Field(2.0, gt=0)           # filter state of a face unseen this long is dropped


class SeeingConfig(Section):
    camera: CameraConfig = Field(default_factory=CameraConfig)
    face_tracker: FaceTrackerConfig = Field(default_factory=FaceTrackerConfig)
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
