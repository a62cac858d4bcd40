"""The ROS simulator node: clock, audio and faces out, robot speech in, ground truth JSON at the end."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip('rclpy')
import voice_robot_interfaces.msg as vr  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402

from voice_robot import messages as m  # noqa: E402
from voice_robot.nodes.convert import audio_from_ros, audio_to_ros, from_time, speech_state_to_ros  # noqa: E402
from voice_robot.nodes.shell import EVENT_QOS, SENSOR_QOS  # noqa: E402

from sim_helpers import base_scenario  # noqa: E402

RESPOND_AT = 2.0
SPEECH_S = 0.5


def test_simulator_node_closes_the_loop_over_ros(tmp_path):
    data = base_scenario(duration_s=4.0, events=[
        {'id': 'u1', 't': 0.3, 'speaker': 'hugo', 'say': 'Ada, hello.', 'to': 'ada'},
        {'id': 'g1', 'after': {'robot_speech_of': 'u1', 'offset_s': 0.2}, 'look': {'who': 'hugo', 'at': 20}}])
    scenario = tmp_path / 'node_test.yaml'
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    truth_path = tmp_path / 'truth.json'
    proc = subprocess.Popen([sys.executable, '-m', 'voice_robot.nodes.simulator', str(scenario), '--ros-args',
                             '-p', 'rate:=2.0', '-p', 'start_delay_s:=2.0', '-p', f'truth_out:={truth_path}'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    try:
        node = rclpy.create_node('simulator_node_test')
        clock, frames, faces = [], [], []
        node.create_subscription(Clock, '/clock', lambda msg: clock.append(from_time(msg.clock)), 10)
        node.create_subscription(vr.AudioFrame, '/ada/audio/raw', lambda msg: frames.append(audio_from_ros(msg)),
                                 SENSOR_QOS)
        node.create_subscription(vr.FaceObservationArray, '/ada/faces/observations', faces.append, SENSOR_QOS)
        speech_pub = node.create_publisher(vr.AudioFrame, '/ada/speech/audio', EVENT_QOS)
        state_pub = node.create_publisher(vr.SpeechState, '/ada/speech/state', EVENT_QOS)
        rng = np.random.default_rng(0)
        tone = (0.05 * np.sin(np.arange(int(SPEECH_S * 16000)) * 0.3) + 0.01 * rng.standard_normal(8000))
        sent, next_stamp = 0, None
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.005)
            now = clock[-1] if clock else 0.0
            if next_stamp is None and now >= RESPOND_AT:
                next_stamp = now
                state_pub.publish(speech_state_to_ros(m.SpeechState(
                    robot='ada', speaking=True, speech_id='s1', started=now, in_reply_to='ada/1',
                    reply_to_start=0.3, reply_to_end=1.0, stamp=now)))
            # play one 20 ms chunk per 20 ms of simulated time, stamped with its play time
            while next_stamp is not None and sent < len(tone) and now >= next_stamp:
                chunk = tone[sent:sent + 320, None].astype(np.float32)
                speech_pub.publish(audio_to_ros(m.AudioChunk(next_stamp, 16000, chunk), 'ada/speaker'))
                sent += 320
                next_stamp += 0.02
                if sent >= len(tone):
                    state_pub.publish(speech_state_to_ros(m.SpeechState(robot='ada', speaking=False,
                                                                        speech_id='s1', stamp=now)))
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    truth = json.loads(truth_path.read_text())
    assert truth['format'] == 'voice_robot/truth@1'
    [speech] = truth['robot_speech']
    assert speech['speech_id'] == 's1' and speech['attributed_to'] == 'u1'
    assert RESPOND_AT - 0.05 <= speech['start'] <= RESPOND_AT + 0.25      # a little late at most (DDS, pacing)
    assert speech['end'] - speech['start'] == pytest.approx(SPEECH_S, abs=0.1)
    g1 = next(e for e in truth['events'] if e['id'] == 'g1')
    assert g1['start'] == pytest.approx(speech['start'] + 0.2, abs=1e-3)
    assert truth['utterances'][0]['id'] == 'u1' and truth['duration'] == 4.0
    # what the system saw: contiguous 4-channel frames, the clock, faces
    assert len(frames) > 150 and all(f.samples.shape == (320, 4) for f in frames)
    # the scenario started only once our microphone subscription was matched: no frame was lost before it
    assert frames[0].stamp == 0.0 and 'node: robots without a microphone listener at the start' not in truth['stats']
    stamps = np.array([f.stamp for f in frames])
    assert np.all(np.diff(stamps) > 0)
    assert clock == sorted(clock) and clock[-1] == pytest.approx(4.0, abs=0.03)
    # hugo faces the robot until g1, then looks away (20 deg, his back half-turned to the camera)
    seen = [from_time(f.header.stamp) for f in faces if f.faces]
    assert len(faces) > 30 and len(seen) > 15 and max(seen) < g1['start'] + 0.4
    assert all(o.looked_at == '' for f in faces for o in f.faces)


def test_simulator_node_refuses_rate_zero(tmp_path):
    scenario = tmp_path / 'node_test.yaml'
    scenario.write_text(yaml.safe_dump(base_scenario(duration_s=1.0), sort_keys=False))
    proc = subprocess.run([sys.executable, '-m', 'voice_robot.nodes.simulator', str(scenario), '--ros-args',
                           '-p', 'rate:=0.0'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'rate must be > 0' in proc.stderr
