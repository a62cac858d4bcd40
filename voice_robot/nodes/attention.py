"""Visual focus of attention node: faces/observations + /persons -> faces/attention."""
from voice_robot.nodes.shell import run_stage_node
from voice_robot.seeing.attention import AttentionStage


def build(deployment, robot, section, node=None):
    return AttentionStage(deployment.robot(robot), deployment.robots, section.attention)


def main(args=None):
    run_stage_node('attention', 'seeing', build, args)


if __name__ == '__main__':
    main()
