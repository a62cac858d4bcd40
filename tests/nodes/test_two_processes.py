"""Real rclpy nodes in two processes exchange the project's own messages over DDS."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from std_msgs.msg import String

import voice_robot_interfaces.msg as vr
from voice_robot import messages as m
from voice_robot.nodes.convert import audio_to_ros, utterance_from_ros, utterance_to_ros


@pytest.fixture
def peer():
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name('echo_peer.py'))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'ready'
    yield proc
    proc.terminate()
    try:
        assert proc.wait(timeout=10) == 0, 'the peer process did not stop cleanly on SIGTERM'
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def spin_until(node, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def test_utterance_and_audio_round_trip(peer):
    rclpy.init()
    try:
        node = rclpy.create_node('two_process_test')
        pub_u = node.create_publisher(vr.Utterance, '/vr_test/utterance', 10)
        pub_a = node.create_publisher(vr.AudioFrame, '/vr_test/audio', 10)
        echoes, reports = [], []
        node.create_subscription(vr.Utterance, '/vr_test/echo', lambda msg: echoes.append(utterance_from_ros(msg)), 10)
        node.create_subscription(String, '/vr_test/report', lambda msg: reports.append(msg.data), 10)
        assert spin_until(node, lambda: pub_u.get_subscription_count() > 0 and pub_a.get_subscription_count() > 0)

        utt = m.Utterance(utterance_id='ada/7', robot='ada', start=12.25, end=14.5, voice_id='voice_ada_1',
                          azimuth=0.7, transcript='ada, what time is it?', is_final=True, confidence=0.9,
                          end_of_turn_probability=0.8)
        rng = np.random.default_rng(0)
        audio = m.AudioChunk(stamp=3.5, sample_rate=16000, samples=(0.1 * rng.standard_normal((320, 4))).astype(np.float32))

        def send():
            pub_u.publish(utterance_to_ros(utt))
            pub_a.publish(audio_to_ros(audio, 'ada/mic_array'))
        send()
        got = spin_until(node, lambda: echoes and reports, timeout=3.0)
        if not got:   # discovery can race the first publish; volatile QoS does not replay
            send()
            got = spin_until(node, lambda: echoes and reports)
        assert got
        back = echoes[0]
        assert back.utterance_id == 'ada/7' and back.transcript == 'ADA, WHAT TIME IS IT?'
        assert back.start == pytest.approx(12.25) and back.end == pytest.approx(14.5)
        assert back.azimuth == pytest.approx(0.7, abs=1e-6) and back.is_final
        channels, samples, rms, stamp = reports[0].split()
        assert (int(channels), int(samples)) == (4, 320)
        assert float(rms) == pytest.approx(float(np.sqrt(np.mean(audio.samples ** 2))), abs=1e-3)
        assert float(stamp) == pytest.approx(3.5)
        node.destroy_node()
    finally:
        rclpy.shutdown()
