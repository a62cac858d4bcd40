"""Settings of the camera, face tracker and visual focus of attention."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from voice_robot.config.base import Section


class FaceTrackerConfig(Section):
    detector: Literal['haar', 'mediapipe'] = 'haar'
    min_face_px: int = Field(32, ge=8)
    max_faces: int = Field(8, ge=1, le=32)
    refine_landmarks: bool = True                 # iris landmarks for eye gaze
    match_iou: float = Field(0.3, ge=0, le=1)     # IoU to keep a face id across frames
    lost_after_s: float = Field(1.0, gt=0)
    assumed_face_height_m: float = Field(0.22, gt=0)   # for distance from face size


class AttentionConfig(Section):
    """Visual focus of attention: which target a gaze ray points at."""
    gaze_std_deg: float = Field(12.0, gt=0)      # angular noise of the gaze estimate
    none_prior: float = Field(0.15, ge=0, le=1)   # prior that the person looks at nothing listed
    smoothing_s: float = Field(0.3, ge=0)


class SeeingConfig(Section):
    face_tracker: FaceTrackerConfig = Field(default_factory=FaceTrackerConfig)
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
