"""ROS 2 node 'motion': look-at and gestures, clamped to the robot's limits, for one robot."""
from __future__ import annotations

from voice_robot.acting.config import MotionConfig
from voice_robot.acting.motion import MotionStage


def build(deployment, robot: str, section: MotionConfig, node=None) -> MotionStage:
    spec = deployment.robot(robot)
    return MotionStage(spec, section if section is not None else deployment.motion)


def main(args=None) -> None:
    from voice_robot.nodes.shell import run_stage_node
    run_stage_node('motion', 'motion', build, args=args)


if __name__ == '__main__':
    main()
