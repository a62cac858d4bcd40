"""The speech and motion node modules: build() from the deployment, and a real lifecycle node over DDS."""
from __future__ import annotations

from pathlib import Path

import pytest

from voice_robot.acting.motion import MotionStage
from voice_robot.acting.speech import SpeechOutputStage
from voice_robot.config.deployment import load_deployment
from voice_robot.nodes import motion as motion_node
from voice_robot.nodes import speech as speech_node

DEPLOYMENT = Path(__file__).resolve().parents[2] / 'config' / 'deployment.yaml'


@pytest.fixture(scope='module')
def deployment():
    return load_deployment(DEPLOYMENT)


def test_build_makes_the_stages_from_the_deployment(deployment):
    speech = speech_node.build(deployment=deployment, robot='ada', section=deployment.speech)
    assert isinstance(speech, SpeechOutputStage)
    assert speech.voice == deployment.robot('ada').voice and speech.sink is None
    assert speech.synthesis_wait == 'tick'      # eval: synthesis waits are charged to simulated time
    in_node = speech_node.build(deployment=deployment, robot='ada', section=deployment.speech, node=object())
    assert in_node.synthesis_wait == 'none'     # a ROS node's timer never blocks
    motion = motion_node.build(deployment=deployment, robot='bruno', section=deployment.motion)
    assert isinstance(motion, MotionStage) and motion.robot == 'bruno'
    with pytest.raises(KeyError):
        speech_node.build(deployment=deployment, robot='nobody', section=deployment.speech)


def test_speech_node_speaks_over_ros(deployment, ros):
    import voice_robot_interfaces.msg as vr

    from voice_robot import messages as m
    from voice_robot.nodes.convert import audio_from_ros, speech_command_to_ros, speech_state_from_ros
    from voice_robot.nodes.shell import StageNode

    node = ros.add(StageNode('speech', 'speech', speech_node.build, namespace='/ada', robot='ada',
                             deployment_file=str(DEPLOYMENT)))
    probe = ros.probe('speech_probe')
    pub = probe.create_publisher(vr.SpeechCommand, '/ada/speech/command', 10)
    states, audio = [], []
    probe.create_subscription(vr.SpeechState, '/ada/speech/state',
                              lambda msg: states.append(speech_state_from_ros(msg)), 100)
    probe.create_subscription(vr.AudioFrame, '/ada/speech/audio', lambda msg: audio.append(audio_from_ros(msg)), 100)

    assert ros.spin_until(lambda: pub.get_subscription_count() > 0 and node.stage is not None)
    pub.publish(speech_command_to_ros(m.SpeechCommand(m.SpeechAction.SAY, 'ros-1', 'Hello from the node.')))
    assert ros.spin_until(lambda: any(not s.speaking and s.speech_id == 'ros-1' for s in states))
    end = [s for s in states if not s.speaking][-1]
    assert end.robot == 'ada' and end.text == 'Hello from the node.' and not end.cancelled
    assert audio and all(a.channels == 1 and a.sample_rate == deployment.speech.sample_rate for a in audio)
    assert any(abs(a.samples).max() > 0.01 for a in audio)
