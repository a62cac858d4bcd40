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


def test_nodes_on_simulated_time_share_one_clock_subscription_and_all_follow_it(rclpy_ready):
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock

    from voice_robot.nodes.shell import spin_nodes
    rclpy = rclpy_ready
    sim_time = [Parameter('use_sim_time', value=True)]
    followers = [rclpy.create_node(n, namespace='robot_a', parameter_overrides=sim_time)
                 for n in ('hearing_like', 'floor_like', 'speech_like')]
    clock_source = rclpy.create_node('fake_simulator')        # on the wall clock: it publishes the time
    pub = clock_source.create_publisher(Clock, '/clock', 10)
    ticks = {'sec': 100}
    seen = {}

    def tick():
        ticks['sec'] += 1
        pub.publish(Clock(clock=rclpy.time.Time(seconds=ticks['sec']).to_msg()))
        seen['subscriptions'] = pub.get_subscription_count()
        seen['times'] = [n.get_clock().now().nanoseconds / 1e9 for n in followers]
        if (ticks['sec'] >= 130 and min(seen['times']) >= 110) or ticks['sec'] >= 600:
            os.kill(os.getpid(), signal.SIGTERM)       # done, or give up (the asserts say why) instead of hanging
    clock_source.create_timer(0.01, tick)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        spin_nodes([*followers, clock_source])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen['subscriptions'] == 1                        # not one per node
    assert all(110 <= t <= ticks['sec'] for t in seen['times']), seen
    assert all(n.get_parameter('use_sim_time').value is True for n in followers)


def test_a_single_node_on_simulated_time_keeps_its_own_clock_subscription(rclpy_ready):
    from rclpy.parameter import Parameter

    from voice_robot.nodes.shell import share_sim_clock
    rclpy = rclpy_ready
    only = rclpy.create_node('alone', parameter_overrides=[Parameter('use_sim_time', value=True)])
    wall = rclpy.create_node('on_wall_time')
    assert share_sim_clock([only, wall]) is None
    assert only.count_subscribers('/clock') == 1
