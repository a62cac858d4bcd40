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


def deployment_for_scenario(scenario, system: SystemConfig | None = None) -> Deployment:
    """The deployment a system under test gets for a scenario: the scenario's robots (names, poses,
    arrays, cameras, voices: the system's own configuration) and stage settings from ``system``,
    overridden by the scenario's optional ``system`` section. No ground truth is carried over."""
    from voice_robot.config.base import validate
    from voice_robot.config.params import deep_merge
    base = (system or SystemConfig()).model_dump(mode='json')
    if getattr(scenario, 'system', None):
        base = deep_merge(base, scenario.system)
    data = dict(base, robots=[r.model_dump(mode='json') for r in scenario.robots],
                room={'size_m': list(scenario.room.size_m)})
    return validate(Deployment, data, f'scenario {scenario.name} (system section)')


def load_deployment_or_scenario(path: str | Path, system_file: str | Path | None = None) -> Deployment:
    """A deployment file, or a scenario file seen as the deployment of its robots (sim launches)."""
    from voice_robot.config.errors import load_yaml
    data = load_yaml(path).data
    if isinstance(data, dict) and str(data.get('format', '')).startswith('voice_robot/scenario'):
        from voice_robot.sim.scenario import load_scenario
        system = load_system(system_file) if system_file else None
        return deployment_for_scenario(load_scenario(path), system)
    return load_deployment(path)
