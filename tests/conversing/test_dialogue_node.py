"""The dialogue node module: build() from the deployment, and a real lifecycle node answering a GRANT over DDS."""
from __future__ import annotations

from pathlib import Path

import pytest

from voice_robot.config.deployment import load_deployment
from voice_robot.conversing.brain import OfflineBrain
from voice_robot.conversing.dialogue import DialogueStage
from voice_robot.nodes import dialogue as dialogue_node

DEPLOYMENT = Path(__file__).resolve().parents[2] / 'config' / 'deployment.yaml'


def test_build_uses_the_dialogue_section_and_the_robots_persona():
    deployment = load_deployment(DEPLOYMENT)
    stage = dialogue_node.build(deployment=deployment, robot='bruno', section=deployment.conversing)
    assert isinstance(stage, DialogueStage) and isinstance(stage.llm, OfflineBrain)
    assert stage.persona == deployment.robot('bruno').persona
    assert [r.name for r in stage.robots] == [r.name for r in deployment.robots]
    assert stage.pace_llm                  # eval: waiting for a remote model costs simulated time
    assert not dialogue_node.build(deployment=deployment, robot='bruno', section=deployment.conversing,
                                   node=object()).pace_llm


def test_dialogue_node_answers_a_grant_over_ros(ros):
    import voice_robot_interfaces.msg as vr

    from voice_robot import messages as m
    from voice_robot.nodes.convert import (addressee_to_ros, floor_to_ros, speech_command_from_ros,
                                           utterance_to_ros)
    from voice_robot.nodes.shell import StageNode

    node = ros.add(StageNode('dialogue', 'conversing', dialogue_node.build, namespace='/ada', robot='ada',
                             deployment_file=str(DEPLOYMENT)))
    probe = ros.probe('dialogue_probe')
    pub_u = probe.create_publisher(vr.Utterance, '/ada/hearing/utterances', 10)
    pub_a = probe.create_publisher(vr.AddresseeEstimate, '/conversation/addressee', 10)
    pub_f = probe.create_publisher(vr.FloorEvent, '/conversation/floor', 10)
    commands = []
    probe.create_subscription(vr.SpeechCommand, '/ada/speech/command',
                              lambda msg: commands.append(speech_command_from_ros(msg)), 100)

    assert ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in (pub_u, pub_a, pub_f)))
    text = 'Ada, what is the capital of Italy?'
    pub_u.publish(utterance_to_ros(m.Utterance('ada-u1', 'ada', 10.0, 11.5, voice_id='v1', transcript=text,
                                               is_final=True, stamp=11.6)))
    pub_a.publish(addressee_to_ros(m.AddresseeEstimate('ada-u1', 'ada', ['ada', 'bruno', 'robots', 'others'],
                                                       [0.9, 0.05, 0.03, 0.02], 'ada', 10.0, 11.5, 'v1', text,
                                                       fused=True, stamp=11.7)))
    ros.spin_until(lambda: node.stage.stats['replies prepared'] > 0, timeout=5.0)
    pub_f.publish(floor_to_ros(m.FloorEvent(m.FloorKind.GRANT, 'ada', 'ada-u1', 10.0, 11.5, stamp=11.8)))
    assert ros.spin_until(lambda: commands)
    say = commands[0]
    assert say.action == m.SpeechAction.SAY and say.text == 'The capital of Italy is Rome.'
    assert say.in_reply_to == 'ada-u1' and say.reply_to_start == pytest.approx(10.0)
