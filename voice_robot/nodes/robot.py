"""Which nodes make up one robot, and running them together in one process.

`voice-robot up` starts one process per robot that hosts all of that robot's nodes in one executor
(like a ROS 2 component container); the launch files start the same nodes as separate processes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from voice_robot.config.deployment import Deployment
from voice_robot.config.robots import RobotSpec


@dataclass(frozen=True)
class NodeSpec:
    name: str            # node name and console script '<name>_node'
    section: str | None  # config section that becomes its parameters
    module: str          # voice_robot.nodes.<module> with build() and main()


AUDIO_CAPTURE = NodeSpec('audio_capture', None, 'voice_robot.nodes.audio_capture')
CAMERA = NodeSpec('camera', 'seeing', 'voice_robot.nodes.camera')
FACE_TRACKER = NodeSpec('face_tracker', 'seeing', 'voice_robot.nodes.face_tracker')
CORE_NODES = (
    NodeSpec('hearing', 'hearing', 'voice_robot.nodes.hearing'),
    NodeSpec('attention', 'seeing', 'voice_robot.nodes.attention'),
    NodeSpec('person_manager', 'fusing', 'voice_robot.nodes.person_manager'),
    NodeSpec('addressee', 'conversing', 'voice_robot.nodes.addressee'),
    NodeSpec('floor', 'conversing', 'voice_robot.nodes.floor'),
    NodeSpec('dialogue', 'conversing', 'voice_robot.nodes.dialogue'),
    NodeSpec('speech', 'speech', 'voice_robot.nodes.speech'),
    NodeSpec('motion', 'motion', 'voice_robot.nodes.motion'),
)


def nodes_for(robot: RobotSpec) -> list[NodeSpec]:
    """The nodes a robot runs. In simulation the simulator replaces the audio and camera drivers."""
    nodes = []
    if robot.audio_in.backend != 'sim':
        nodes.append(AUDIO_CAPTURE)
    if robot.camera is not None and robot.camera.device is not None:
        nodes += [CAMERA, FACE_TRACKER]
    return nodes + list(CORE_NODES)


def make_nodes(deployment_file: str, deployment: Deployment, robot_name: str, use_sim_time: bool = False,
               only: list[str] | None = None) -> list:
    """StageNode instances for one robot (rclpy must be initialised)."""
    from rclpy.parameter import Parameter

    from voice_robot.nodes.shell import StageNode
    robot = deployment.robot(robot_name)
    out = []
    for spec in nodes_for(robot):
        if only and spec.name not in only:
            continue
        module = importlib.import_module(spec.module)
        out.append(StageNode(spec.name, spec.section, module.build, namespace=robot.ns, robot=robot.name,
                             deployment_file=deployment_file,
                             parameter_overrides=[Parameter('use_sim_time', value=use_sim_time)]))
    return out
