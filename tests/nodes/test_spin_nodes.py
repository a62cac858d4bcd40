"""`spin_nodes`: one single-threaded executor per node, each in its own thread."""
import os
import signal
import threading

import pytest


def test_a_busy_node_does_not_hold_up_the_others_and_sigterm_stops_them(rclpy_ready):
    from std_msgs.msg import String

    from voice_robot.nodes.shell import spin_nodes
    rclpy = rclpy_ready
    slow, talker, listener = (rclpy.create_node(n) for n in ('slow', 'talker', 'listener'))
    release = threading.Event()
    heard = []
    # A callback that blocks until told: a node stuck in a long decode. The others must go on.
    slow.create_timer(0.01, lambda: release.wait(10))
    pub = talker.create_publisher(String, 'spin_nodes_test', 10)
    talker.create_timer(0.01, lambda: pub.publish(String(data='x')))

    def on_message(msg):
        heard.append(msg.data)
        if len(heard) == 20:
            release.set()
            os.kill(os.getpid(), signal.SIGTERM)      # spin_nodes handles it: a clean stop
    listener.create_subscription(String, 'spin_nodes_test', on_message, 10)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        spin_nodes([slow, talker, listener])           # returns once SIGTERM arrives
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(heard) >= 20 and release.is_set()


def test_a_node_whose_executor_fails_stops_all_and_the_error_reaches_the_caller(rclpy_ready):
    from voice_robot.nodes.shell import spin_nodes
    rclpy = rclpy_ready
    broken, fine = rclpy.create_node('broken'), rclpy.create_node('fine')

    def fail():
        raise RuntimeError('a timer without a guard')
    broken.create_timer(0.01, fail)
    fine.create_timer(0.01, lambda: None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(RuntimeError, match='a timer without a guard'):
            spin_nodes([broken, fine])
    finally:
        signal.signal(signal.SIGTERM, previous)
