"""Addressee estimation node: turns from this robot's hearing -> /conversation/addressee."""
from voice_robot.conversing.addressee import AddresseeStage
from voice_robot.nodes.shell import run_stage_node


def build(deployment, robot, section, node=None):
    return AddresseeStage(deployment.robot(robot), deployment.robots, section.addressee, section.turn)


def main(args=None):
    run_stage_node('addressee', 'conversing', build, args)


if __name__ == '__main__':
    main()
