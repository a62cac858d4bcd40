"""Person manager node: faces/attention + hearing/utterances + peers' /persons -> /persons."""
from voice_robot.fusing.persons import PersonManager
from voice_robot.nodes.shell import run_stage_node


def build(deployment, robot, section, node=None):
    return PersonManager(deployment.robot(robot), deployment.robots, section)


def main(args=None):
    run_stage_node('person_manager', 'fusing', build, args)


if __name__ == '__main__':
    main()
