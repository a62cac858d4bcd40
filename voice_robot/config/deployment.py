"""The deployment file: which robots exist and how every stage is configured.

The same RobotSpec describes robots in scenarios (voice_robot.sim.scenario), so a scenario's robots
and a deployment's robots are interchangeable. Per-node ROS parameters are the sections below,
flattened with dots (see voice_robot.config.params).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from voice_robot.acting.config import MotionConfig, SpeechConfig
from voice_robot.config.base import Section, load_model
from voice_robot.config.robots import RobotSpec, RoomSpec, check_unique_names
from voice_robot.conversing.config import ConversingConfig
from voice_robot.fusing.config import FusingConfig
from voice_robot.hearing.config import HearingConfig
from voice_robot.seeing.config import SeeingConfig

DEPLOYMENT_FORMAT = 'voice_robot/deployment@1'


class SystemConfig(Section):
    """Every stage's settings; shared by all robots of a deployment and by eval runs."""
    hearing: HearingConfig = Field(default_factory=HearingConfig)
    seeing: SeeingConfig = Field(default_factory=SeeingConfig)
    fusing: FusingConfig = Field(default_factory=FusingConfig)
    conversing: ConversingConfig = Field(default_factory=ConversingConfig)
    speech: SpeechConfig = Field(default_factory=SpeechConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)


class Deployment(SystemConfig):
    format: Literal['voice_robot/deployment@1'] = DEPLOYMENT_FORMAT
    description: Optional[str] = None
    room: Optional[RoomSpec] = None
    robots: list[RobotSpec] = Field(min_length=1)

    @model_validator(mode='after')
    def _unique_robots(self):
        check_unique_names(self.robots)
        return self

    def robot(self, name: str) -> RobotSpec:
        for r in self.robots:
            if r.name == name:
                return r
        raise KeyError(f"no robot named {name!r} in the deployment (robots: {', '.join(r.name for r in self.robots)})")

    def system(self) -> SystemConfig:
        return SystemConfig.model_validate(self.model_dump(include=set(SystemConfig.model_fields)))


def load_deployment(path: str | Path) -> Deployment:
    return load_model(Deployment, path)


def load_system(path: str | Path) -> SystemConfig:
    """Stage settings from a deployment file (its robots are ignored) or a bare SystemConfig file."""
    from voice_robot.config.errors import load_yaml
    from voice_robot.config.base import validate
    loaded = load_yaml(path)
    data = loaded.data if isinstance(loaded.data, dict) else {}
    section = {k: v for k, v in data.items() if k in SystemConfig.model_fields}
    return validate(SystemConfig, section, path, loaded)
