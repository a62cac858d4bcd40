"""ROS 2 node 'dialogue': the dialogue agent (LLM or offline brain, fillers, memory) for one robot."""
from __future__ import annotations

from voice_robot.conversing.config import ConversingConfig
from voice_robot.conversing.dialogue import DialogueStage


def build(deployment, robot: str, section: ConversingConfig, node=None) -> DialogueStage:
    spec = deployment.robot(robot)
    config = (section if section is not None else deployment.conversing).dialogue
    # A node's clock runs by itself, so polls never wait for the model; in the eval (no node) waiting
    # is how a remote model's latency reaches the simulated clock.
    return DialogueStage(spec, list(deployment.robots), config, pace_llm=node is None)


def main(args=None) -> None:
    from voice_robot.nodes.shell import run_stage_node
    run_stage_node('dialogue', 'conversing', build, args=args)


if __name__ == '__main__':
    main()
