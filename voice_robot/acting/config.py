"""Settings of speech output (TTS) and motion."""
from __future__ import annotations

from pydantic import Field, field_validator

from voice_robot.config.base import Section
from voice_robot.config.robots import check_voice


class SpeechConfig(Section):
    default_voice: str = 'piper:joe'
    chunk_ms: float = Field(20.0, gt=1, le=200)
    sample_rate: int = Field(16000, ge=8000, le=48000)
    level_dbfs: float = Field(-20.0, le=0)          # RMS level of synthesised speech
    openai_model: str = 'gpt-4o-mini-tts'
    api_key_env: str = 'OPENAI_API_KEY'
    base_url: str | None = None
    cache_dir: str | None = None                    # TTS cache; None = ~/.cache/voice_robot/tts

    _voice = field_validator('default_voice')(lambda cls, v: check_voice(v))


class MotionLimits(Section):
    head_yaw_deg: list[float] = Field(default_factory=lambda: [-90.0, 90.0], min_length=2, max_length=2)
    head_pitch_deg: list[float] = Field(default_factory=lambda: [-30.0, 30.0], min_length=2, max_length=2)
    max_duration_s: float = Field(3.0, gt=0)
    max_amplitude: float = Field(1.0, gt=0, le=1)


class MotionConfig(Section):
    limits: MotionLimits = Field(default_factory=MotionLimits)
    gestures: list[str] = Field(default_factory=lambda: ['nod', 'shake', 'wave', 'point', 'tilt'])
    look_at_speaker: bool = True
    head_height_m: float = Field(1.3, gt=0)          # look-at height when a person's height is unknown
