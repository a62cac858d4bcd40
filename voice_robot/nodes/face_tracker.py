"""Face tracker node: camera/image -> faces/observations (bearing, distance, head pose, gaze, mouth)."""
from voice_robot.nodes.shell import run_stage_node
from voice_robot.seeing.face_tracker import FaceTrackerStage


def build(deployment, robot, section, node=None):
    return FaceTrackerStage(deployment.robot(robot), section)


def main(args=None):
    run_stage_node('face_tracker', 'seeing', build, args)


if __name__ == '__main__':
    main()
