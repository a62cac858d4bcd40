"""How robots are described: one schema for deployment files and for scenarios."""
from __future__ import annotations

import math
import re
from typing import Annotated, Literal, Optional, Union

import numpy as np
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from voice_robot.config.base import Section

ROBOT_NAME = r'^[A-Za-z][A-Za-z0-9_]*$'   # also a valid ROS namespace component
Vec2 = Annotated[list[float], Field(min_length=2, max_length=2)]
Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]

# Engines a voice string may name; voice_robot.acting.tts implements them.
TTS_ENGINES = ('espeak', 'flite', 'piper', 'openai')


def check_voice(value: str) -> str:
    engine, sep, voice = value.partition(':')
    if not sep or not voice:
        raise ValueError(f"a voice as 'engine:voice' (engines: {', '.join(TTS_ENGINES)})")
    if engine not in TTS_ENGINES:
        raise ValueError(f"unknown voice engine {engine!r}; known engines: {', '.join(TTS_ENGINES)}")
    return value


class CircularArray(Section):
    layout: Literal['circular']
    channels: int = Field(ge=2, le=64)
    radius_m: float = Field(gt=0, le=1.0)
    height_m: float = Field(gt=0, le=3.0)

    def positions(self) -> np.ndarray:
        """Microphone positions (channels, 3) in the base frame; channel 0 on +x."""
        angles = 2 * np.pi * np.arange(self.channels) / self.channels
        return np.stack([self.radius_m * np.cos(angles), self.radius_m * np.sin(angles),
                         np.full(self.channels, self.height_m)], axis=1)


class LinearArray(Section):
    layout: Literal['linear']
    channels: int = Field(ge=2, le=64)
    spacing_m: float = Field(gt=0, le=0.5)
    height_m: float = Field(gt=0, le=3.0)

    def positions(self) -> np.ndarray:
        """Along the base frame y axis (broadside to +x), centred on the base."""
        offsets = (np.arange(self.channels) - (self.channels - 1) / 2) * self.spacing_m
        return np.stack([np.zeros(self.channels), offsets, np.full(self.channels, self.height_m)], axis=1)


class CustomArray(Section):
    layout: Literal['custom']
    positions_m: list[Vec3] = Field(min_length=2)

    @property
    def channels(self) -> int:
        return len(self.positions_m)

    @property
    def height_m(self) -> float:
        return float(np.mean([p[2] for p in self.positions_m]))

    def positions(self) -> np.ndarray:
        return np.asarray(self.positions_m, dtype=float)


def _layout_of(value) -> str | None:
    if isinstance(value, dict):
        return value.get('layout')
    return getattr(value, 'layout', None)


MicArray = Annotated[
    Union[Annotated[CircularArray, Tag('circular')], Annotated[LinearArray, Tag('linear')],
          Annotated[CustomArray, Tag('custom')]],
    Discriminator(_layout_of, custom_error_type='layout',
                  custom_error_message="expected layout 'circular', 'linear' or 'custom'"),
]


class CameraSpec(Section):
    hfov_deg: float = Field(70.0, gt=1, lt=180)
    height_m: float = Field(1.1, gt=0, le=3.0)
    max_range_m: float = Field(4.0, gt=0)
    # Deployment extras (optional in scenarios):
    fps: float = Field(10.0, gt=0, le=120)
    width: int = Field(640, ge=16)
    height: int = Field(480, ge=16)
    device: Union[int, str, None] = None         # OpenCV index, device path, video file or image
    pitch_deg: float = 0.0                        # positive tilts the camera up (towards standing faces)
    focal_length_px: Optional[float] = Field(None, gt=0)   # calibrated focal length; default from hfov

    def focal_px(self) -> float:
        if self.focal_length_px:
            return self.focal_length_px
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)


class AudioInput(Section):
    """Where a robot's microphone audio comes from."""
    backend: Literal['sim', 'pyaudio', 'file'] = 'sim'
    device: Union[int, str, None] = None          # pyaudio device index or name substring
    path: Optional[str] = None                    # WAV file for backend 'file'
    sample_rate: int = Field(16000, ge=8000, le=96000)
    frame_ms: float = Field(20.0, gt=1, le=200)
    realtime: bool = True                         # pace file playback at real time


class AudioOutput(Section):
    """Where a robot's synthesised speech goes."""
    backend: Literal['sim', 'pyaudio', 'none'] = 'sim'
    device: Union[int, str, None] = None
    chunk_ms: float = Field(20.0, gt=1, le=200)


class RobotSpec(Section):
    name: str = Field(pattern=ROBOT_NAME)
    position_m: Vec2
    yaw_deg: float = 0.0
    mic_array: MicArray
    camera: Optional[CameraSpec] = None
    voice: Optional[str] = None
    # Deployment extras, optional everywhere:
    namespace: Optional[str] = None
    persona: Optional[str] = None
    aliases: list[str] = Field(default_factory=list)   # other names people use ("Bruno" -> "bru")
    loudspeaker_m: Vec3 = Field(default_factory=lambda: [0.10, 0.0, 0.70])   # base frame, z above floor
    audio_in: AudioInput = Field(default_factory=AudioInput)
    audio_out: AudioOutput = Field(default_factory=AudioOutput)

    _voice = field_validator('voice')(lambda cls, v: v if v is None else check_voice(v))

    @field_validator('namespace')
    @classmethod
    def _namespace(cls, v):
        if v is not None and not re.fullmatch(r'/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*', v):
            raise ValueError('a ROS namespace such as "ada" or "/lab/ada"')
        return v

    @property
    def ns(self) -> str:
        ns = self.namespace or self.name
        return ns if ns.startswith('/') else '/' + ns

    @property
    def yaw(self) -> float:
        return math.radians(self.yaw_deg)

    def mic_positions_base(self) -> np.ndarray:
        return self.mic_array.positions()

    def mic_positions_map(self) -> np.ndarray:
        """(channels, 3) microphone positions in map."""
        return self.base_to_map(self.mic_array.positions())

    def array_center_map(self) -> np.ndarray:
        return self.mic_positions_map().mean(axis=0)

    def loudspeaker_map(self) -> np.ndarray:
        return self.base_to_map(np.asarray([self.loudspeaker_m], dtype=float))[0]

    def base_to_map(self, points: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return points @ rot.T + np.array([self.position_m[0], self.position_m[1], 0.0])

    def map_to_base(self, points: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return (np.asarray(points, dtype=float) - np.array([self.position_m[0], self.position_m[1], 0.0])) @ rot

    def bearing_to(self, point_map) -> float:
        """Azimuth (rad, base frame) from the array centre to a map point."""
        p = self.map_to_base(np.asarray([point_map], dtype=float))[0]
        centre = self.mic_array.positions().mean(axis=0)
        return math.atan2(p[1] - centre[1], p[0] - centre[0])

    def names(self) -> list[str]:
        return [self.name] + list(self.aliases)


class RoomSpec(Section):
    size_m: Vec3

    @field_validator('size_m')
    @classmethod
    def _positive(cls, v):
        if min(v) <= 0:
            raise ValueError('three positive room dimensions [x, y, z] in metres')
        return v


def check_unique_names(robots: list[RobotSpec]) -> None:
    seen = set()
    for robot in robots:
        if robot.name.lower() in seen:
            raise ValueError(f'robot names must be unique: {robot.name!r} appears twice')
        seen.add(robot.name.lower())


