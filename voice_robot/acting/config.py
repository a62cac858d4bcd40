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
    duck_gain_db: float = Field(-12.0, le=0)        # volume change while ducked (DUCK command)
    max_gap_s: float = Field(2.0, gt=0)             # an act waiting this long for its next sentence ends
    progress_period_s: float = Field(0.1, gt=0)     # SpeechState with progress this often while speaking
    synthesis_timeout_s: float = Field(10.0, gt=0)  # a sentence not synthesised by then is skipped
    max_queued_acts: int = Field(8, ge=1)           # SAYs waiting behind the playing act
    max_sentences_per_act: int = Field(64, ge=1)
    max_segment_chars: int = Field(120, ge=20)      # longer sentences are synthesised in clauses (faster start)
    warm_up: bool = True                            # load the voice when the stage is built, not on first use
    fallback_voice: str | None = None               # tried once when a sentence fails in the chosen voice

    _voice = field_validator('default_voice')(lambda cls, v: check_voice(v))
    _fallback = field_validator('fallback_voice')(lambda cls, v: v if v is None else check_voice(v))


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
    look_at_max_rate_hz: float = Field(5.0, gt=0)    # look-at commands at most this often
    look_at_min_change_deg: float = Field(3.0, ge=0) # smaller changes of gaze are not sent
    look_at_speaker_s: float = Field(3.0, gt=0)      # keep looking at a speaker this long after they stop
    speaker_match_deg: float = Field(25.0, gt=0)     # a person this close to an utterance's direction is its speaker
    default_distance_m: float = Field(1.5, gt=0)     # look-at distance along a direction with nobody known there
    head_base_height_m: float | None = None          # height of the head's pan/tilt axis; None = camera height or 1.1 m
