"""The camera, face tracker, attention and person manager node modules: build() and a real node over DDS."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from voice_robot.config.deployment import load_deployment
from voice_robot.fusing.persons import PersonManager
from voice_robot.nodes import attention as attention_node
from voice_robot.nodes import camera as camera_node
from voice_robot.nodes import face_tracker as face_tracker_node
from voice_robot.nodes import person_manager as person_manager_node
from voice_robot.seeing.attention import AttentionStage
from voice_robot.seeing.camera import CameraStage, StillImageSource
from voice_robot.seeing.face_tracker import FaceTrackerStage

DEPLOYMENT = Path(__file__).resolve().parents[2] / 'config' / 'deployment.yaml'


@pytest.fixture(scope='module')
def deployment():
    return load_deployment(DEPLOYMENT)


def with_camera_device(deployment, robot, device):
    robots = [r.model_copy(update={'camera': r.camera.model_copy(update={'device': device})}) if r.name == robot
              else r for r in deployment.robots]
    return deployment.model_copy(update={'robots': robots})


def test_builders_make_the_stages(deployment, tmp_path, astronaut):
    image = tmp_path / 'still.png'
    cv2.imwrite(str(image), astronaut)
    dep = with_camera_device(deployment, 'ada', str(image))
    camera = camera_node.build(deployment=dep, robot='ada', section=dep.seeing)
    assert isinstance(camera, CameraStage) and isinstance(camera.source, StillImageSource)
    attention = attention_node.build(deployment=deployment, robot='bruno', section=deployment.seeing)
    assert isinstance(attention, AttentionStage) and set(attention.robots) == {r.name for r in deployment.robots}
    persons = person_manager_node.build(deployment=deployment, robot='ada', section=deployment.fusing)
    assert isinstance(persons, PersonManager) and persons.outputs == ('/persons',)
    with pytest.raises(ValueError, match='device'):
        camera_node.build(deployment=deployment, robot='ada', section=deployment.seeing)   # no device configured
    with pytest.raises(KeyError):
        attention_node.build(deployment=deployment, robot='nobody', section=deployment.seeing)


def test_face_tracker_node_over_ros(deployment, ros, astronaut):
    import voice_robot_interfaces.msg as vr
    from sensor_msgs.msg import Image

    from voice_robot import messages as m
    from voice_robot.nodes.convert import faces_from_ros, image_to_ros
    from voice_robot.nodes.shell import SENSOR_QOS, StageNode

    assert isinstance(face_tracker_node.build(deployment=deployment, robot='ada', section=deployment.seeing),
                      FaceTrackerStage)
    node = ros.add(StageNode('face_tracker', 'seeing', face_tracker_node.build, namespace='/ada', robot='ada',
                             deployment_file=str(DEPLOYMENT)))
    probe = ros.probe('face_probe')
    pub = probe.create_publisher(Image, '/ada/camera/image', 10)
    frames = []
    probe.create_subscription(vr.FaceObservationArray, '/ada/faces/observations',
                              lambda msg: frames.append(faces_from_ros(msg)), SENSOR_QOS)

    assert ros.spin_until(lambda: pub.get_subscription_count() > 0 and node.stage is not None
                          and node.count_publishers('/ada/faces/observations') > 0)
    pub.publish(image_to_ros(m.ImageFrame(stamp=1.0, robot='ada', image=astronaut)))
    bad = image_to_ros(m.ImageFrame(stamp=1.1, robot='ada', image=astronaut))
    bad.encoding = 'yuv422'
    pub.publish(bad)
    assert ros.spin_until(lambda: frames and node.stage.stats['dropped: bad camera/image'] >= 1)
    (frame,) = frames
    assert frame.robot == 'ada' and len(frame.faces) == 1 and frame.faces[0].distance > 0
