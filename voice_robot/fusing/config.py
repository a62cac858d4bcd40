"""Settings of the person manager (voices + faces -> persons in map)."""
from __future__ import annotations

from pydantic import Field

from voice_robot.config.base import Section


class FusingConfig(Section):
    voice_face_gate_deg: float = Field(15.0, gt=0)     # voice direction vs face bearing
    person_merge_m: float = Field(0.6, gt=0)           # faces closer than this are one person
    forget_after_s: float = Field(30.0, gt=0)
    default_distance_m: float = Field(1.5, gt=0)       # range assumed for a voice heard by one robot only
