"""The hearing and audio_capture node modules: build() from a deployment, and both as real ROS nodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from hearing_helpers import SR, tts
from voice_robot.config.deployment import load_deployment
from voice_robot.hearing import scenes
from voice_robot.hearing.capture import CaptureStage, WavFileSource
from voice_robot.hearing.stage import HearingStage
from voice_robot.nodes import audio_capture as capture_node
from voice_robot.nodes import hearing as hearing_node

DEPLOYMENT = Path(__file__).resolve().parents[2] / 'config' / 'deployment.yaml'


@pytest.fixture(scope='module')
def replay_deployment(tmp_path_factory):
    """The default deployment with ada's microphones replayed from a WAV of a rendered room."""
    tmp = tmp_path_factory.mktemp('nodes')
    data = yaml.safe_load(DEPLOYMENT.read_text())
    ada = data['robots'][0]
    robot = scenes.make_robot(name='ada', position=tuple(ada['position_m']))
    speech = tts('flite:slt', 'Bruno, what is the weather like today?')
    scene = scenes.render(robot, [scenes.Talker(scenes.place(robot, 45, 1.4), speech, 0.6, 'maya')],
                          (6.0, 5.0, 2.8), 0.3, 30, 'pink', duration_s=0.6 + speech.size / SR + 1.5, seed=7)
    wav = tmp / 'ada.wav'
    soundfile.write(str(wav), scene.mics, SR, subtype='FLOAT')
    ada['audio_in'] = {'backend': 'file', 'path': str(wav), 'realtime': True}
    path = tmp / 'deployment.yaml'
    path.write_text(yaml.safe_dump(data))
    return path, scene


def test_build_makes_hearing_stages_that_share_models():
    deployment = load_deployment(DEPLOYMENT)
    ada = hearing_node.build(deployment=deployment, robot='ada', section=deployment.hearing)
    bruno = hearing_node.build(deployment=deployment, robot='bruno', section=None)
    assert isinstance(ada, HearingStage) and ada.robot == 'ada'
    assert [p.name for p in ada.peers] == ['bruno'] and '/bruno/speech/state' in ada.inputs()
    assert ada.models is bruno.models                 # one set of models per process
    assert set(ada.models.robot_voices.voices) == {'ada', 'bruno'}
    with pytest.raises(KeyError):
        hearing_node.build(deployment=deployment, robot='nobody', section=None)


def test_audio_capture_builds_from_audio_in(replay_deployment):
    path, _ = replay_deployment
    deployment = load_deployment(path)
    stage = capture_node.build(deployment=deployment, robot='ada')
    assert isinstance(stage, CaptureStage) and isinstance(stage.source, WavFileSource)
    with pytest.raises(RuntimeError, match='simulator publishes audio/raw itself'):
        capture_node.build(deployment=deployment, robot='bruno')


def test_capture_and_hearing_nodes_hear_a_person_over_ros(replay_deployment, ros):
    import voice_robot_interfaces.msg as vr

    from voice_robot.nodes.convert import sources_from_ros, utterance_from_ros
    from voice_robot.nodes.shell import StageNode

    path, scene = replay_deployment
    hearing = ros.add(StageNode('hearing', 'hearing', hearing_node.build, namespace='/ada', robot='ada',
                                deployment_file=str(path)))
    probe = ros.probe('hearing_probe')
    utterances, sources = [], []
    probe.create_subscription(vr.Utterance, '/ada/hearing/utterances',
                              lambda msg: utterances.append(utterance_from_ros(msg)), 100)
    probe.create_subscription(vr.SoundSourceArray, '/ada/audio/sources',
                              lambda msg: sources.append(sources_from_ros(msg)), 100)

    # Models load on configure; only then start the microphones (so no audio waits for them).
    assert ros.spin_until(lambda: hearing.stage is not None and hearing._subs, 60)
    capture = ros.add(StageNode('audio_capture', None, capture_node.build, namespace='/ada', robot='ada',
                                deployment_file=str(path)))

    def heard() -> str:
        return ' '.join(u.transcript.lower() for u in utterances if u.is_final)

    # The name may come as an utterance of its own ("Bruno." then the question): wait for the request.
    assert ros.spin_until(lambda: 'weather' in heard() or 'like today' in heard(), 45), \
        (heard(), hearing.stage.diagnostics(), capture.stage and capture.stage.diagnostics())
    final = next(u for u in utterances if u.is_final)
    assert 'stream restarts' not in hearing.stage.diagnostics()     # hearing kept up: no audio lost
    assert hearing.stage.offloads and hearing.stage.stats['asr decodes (default window)'] > 0   # on the worker
    assert final.robot == 'ada'
    assert abs(np.degrees(np.angle(np.exp(1j * (final.azimuth - scene.azimuths[0]))))) < 8
    assert not utterances[0].is_final                        # partials before the final
    assert any(s.sources for s in sources)
