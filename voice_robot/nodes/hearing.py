"""ROS 2 node 'hearing': the microphone-array front end (voice_robot.hearing.stage.HearingStage).

When several robots' stages are built in one process (the in-process eval, a component container),
they share one set of models (VAD session, speaker encoder, Whisper, enrolled robot voices): the models
are stateless per call, and loading them once saves seconds and hundreds of MB per robot.
"""
from __future__ import annotations

import threading

from voice_robot.hearing.config import HearingConfig
from voice_robot.hearing.stage import HearingModels, HearingStage

_MODELS: dict[tuple, HearingModels] = {}
_MODELS_LOCK = threading.Lock()


def shared_models(config: HearingConfig, robots) -> HearingModels:
    key = (config.model_dump_json(include={'sample_rate', 'vad', 'embedder', 'asr'}),
           tuple((r.name, r.voice, tuple(r.aliases)) for r in robots))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS.clear()          # one deployment per process: do not keep old model sets alive
            _MODELS[key] = HearingModels.load(config, list(robots))
        return _MODELS[key]


def build(deployment, robot: str, section: HearingConfig | None = None, node=None) -> HearingStage:
    spec = deployment.robot(robot)
    config = section if section is not None else deployment.hearing
    peers = [r for r in deployment.robots if r.name != spec.name]
    return HearingStage(spec, peers, config, models=shared_models(config, deployment.robots))


def main(args=None) -> None:
    from voice_robot.nodes.shell import run_stage_node
    run_stage_node('hearing', 'hearing', build, args=args)


if __name__ == '__main__':
    main()
