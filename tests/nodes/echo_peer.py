"""Second process for test_two_processes: converts what it receives back to dataclasses and answers."""
import signal
import sys

import numpy as np
import rclpy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

import voice_robot_interfaces.msg as vr
from voice_robot.nodes.convert import audio_from_ros, utterance_from_ros, utterance_to_ros


def main():
    # rclpy's own SIGTERM handler shuts the context down under a spinning wait set, which races
    # (an RCLError most times, and a rare hang in CI); a flag polled between spins ends it cleanly.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    node = rclpy.create_node('echo_peer')
    out = node.create_publisher(vr.Utterance, '/vr_test/echo', 10)
    report = node.create_publisher(String, '/vr_test/report', 10)

    def on_utterance(msg):
        u = utterance_from_ros(msg)
        u.transcript = u.transcript.upper()
        out.publish(utterance_to_ros(u))

    def on_audio(msg):
        chunk = audio_from_ros(msg)
        rms = float(np.sqrt(np.mean(chunk.samples ** 2)))
        report.publish(String(data=f'{chunk.channels} {chunk.samples.shape[0]} {rms:.4f} {chunk.stamp:.3f}'))

    node.create_subscription(vr.Utterance, '/vr_test/utterance', on_utterance, 10)
    node.create_subscription(vr.AudioFrame, '/vr_test/audio', on_audio, 10)
    print('ready', flush=True)
    try:
        while not stopping:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
