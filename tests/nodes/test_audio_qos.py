"""Microphone audio survives a busy hearing node: nothing is lost while its executor is held up."""
import time


def _deliver_while_busy(rclpy, topic: str, qos, chunks: int) -> list[int]:
    """Publish `chunks` 20 ms audio-sized messages while the listener does not spin (a decode holds
    its executor), then let it spin: which sequence numbers did it get?"""
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import UInt8MultiArray
    talker, listener = rclpy.create_node('mic'), rclpy.create_node('hearing')
    got = []
    listener.create_subscription(UInt8MultiArray, topic, lambda msg: got.append(int(msg.data[0])), qos)
    pub = talker.create_publisher(UInt8MultiArray, topic, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(listener)
    deadline = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    payload = bytes(4 * 320 * 2 - 1)           # 4 channels x 20 ms at 16 kHz, int16
    for i in range(chunks):
        pub.publish(UInt8MultiArray(data=bytes([i % 256]) + payload))
        time.sleep(0.002)
    deadline, idle_since, seen = time.monotonic() + 10, time.monotonic(), 0
    while len(got) < chunks and time.monotonic() < deadline and time.monotonic() - idle_since < 1.0:
        executor.spin_once(timeout_sec=0.05)
        if len(got) > seen:
            seen, idle_since = len(got), time.monotonic()
    executor.shutdown()
    talker.destroy_node()
    listener.destroy_node()
    return got


def test_three_seconds_of_audio_wait_for_a_busy_hearing_node_in_order(rclpy_ready):
    from voice_robot.nodes.shell import qos_for
    got = _deliver_while_busy(rclpy_ready, 'audio_qos_test', qos_for('audio/raw'), 150)
    assert got == [i % 256 for i in range(150)]


def test_face_observations_keep_only_the_latest_while_busy(rclpy_ready):
    # Faces are worth less late than the next frame: the reader keeps the newest, audio keeps all.
    from voice_robot.nodes.shell import qos_for
    got = _deliver_while_busy(rclpy_ready, 'faces_qos_test', qos_for('faces/observations'), 150)
    assert 0 < len(got) <= 50 and got[-1] == 149
