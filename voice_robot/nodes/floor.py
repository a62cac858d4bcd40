"""Floor control node: claims, grants, leases and barge-in for one robot."""
from voice_robot.conversing.floor import FloorStage
from voice_robot.nodes.shell import run_stage_node


def build(deployment, robot, section, node=None):
    return FloorStage(deployment.robot(robot), deployment.robots, section.floor, section.barge_in)


def main(args=None):
    run_stage_node('floor', 'conversing', build, args)


if __name__ == '__main__':
    main()
