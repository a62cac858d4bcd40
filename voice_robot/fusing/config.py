"""Settings of the person manager (voices + faces -> persons in map)."""
from __future__ import annotations

from pydantic import Field

from voice_robot.config.base import Section


class FusingConfig(Section):
    voice_face_gate_deg: float = Field(15.0, gt=0)     # voice direction vs face bearing
    person_merge_m: float = Field(0.6, gt=0)           # faces closer than this are one person
    forget_after_s: float = Field(30.0, gt=0)
    default_distance_m: float = Field(1.5, gt=0)       # range assumed for a voice heard by one robot only
    default_height_m: float = Field(1.3, gt=0)         # mouth height assumed for a voice nobody has seen
    publish_period_s: float = Field(0.2, gt=0)         # /persons at ~5 Hz
    # Bearings of one voice from several robots this close in time are triangulated.
    peer_voice_window_s: float = Field(1.0, gt=0)
    mouth_open_speaking: float = Field(0.15, ge=0, le=1)   # mouth_open (90th percentile in a turn) of someone talking
    speaking_hold_s: float = Field(0.5, ge=0)          # is_speaking stays on this long after the last speech evidence
    gaze_history_s: float = Field(30.0, gt=0)          # looked_at history kept per person for attention_during
    max_persons: int = Field(64, ge=1)
