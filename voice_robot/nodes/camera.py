"""Camera driver node: a device, video file or still image -> camera/image."""
from voice_robot.nodes.shell import run_stage_node
from voice_robot.seeing.camera import CameraStage


def build(deployment, robot, section, node=None):
    return CameraStage(deployment.robot(robot), section.camera)


def main(args=None):
    run_stage_node('camera', 'seeing', build, args)


if __name__ == '__main__':
    main()
