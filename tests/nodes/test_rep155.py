"""REP-155 humans/* topics from the stages' own messages, over real DDS."""
import time

import rclpy
from std_msgs.msg import Bool, String

import voice_robot_interfaces.msg as vr
from voice_robot import messages as m
from voice_robot.nodes.rep155 import Rep155Adapter
from voice_robot.nodes.shell import EVENT_QOS


def spin_until(nodes, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        for n in nodes:
            rclpy.spin_once(n, timeout_sec=0.02)
    return predicate()


def test_voices_and_persons_follow_rep155():
    rclpy.init()
    try:
        robot = rclpy.create_node('hearing', namespace='/ada')
        listener = rclpy.create_node('listener')
        adapter = Rep155Adapter(robot, EVENT_QOS)
        tracked, speaking, persons, voice_of = [], [], [], []
        listener.create_subscription(vr.IdsList, '/ada/humans/voices/tracked', lambda msg: tracked.append(list(msg.ids)), EVENT_QOS)
        listener.create_subscription(Bool, '/ada/humans/voices/voice_ada_1/is_speaking', lambda msg: speaking.append(msg.data), EVENT_QOS)
        listener.create_subscription(vr.IdsList, '/ada/humans/persons/tracked', lambda msg: persons.append(list(msg.ids)), EVENT_QOS)
        listener.create_subscription(String, '/ada/humans/persons/person_7/voice_id', lambda msg: voice_of.append(msg.data), EVENT_QOS)

        def feed():
            adapter.on_publish('hearing/utterances', m.Utterance('ada/1', 'ada', 1.0, 1.2, voice_id='voice_ada_1'))
            spin_until([robot, listener], lambda: False, 0.1)
            adapter.on_publish('hearing/utterances', m.Utterance('ada/1', 'ada', 1.0, 2.0, voice_id='voice_ada_1',
                                                                 is_final=True, transcript='hello'))
            adapter.on_publish('/persons', m.Persons(2.0, 'ada', [m.Person('person_7', (1.0, 2.0, 1.2), voice_id='voice_ada_1')]))

        feed()
        ok = spin_until([robot, listener], lambda: tracked and persons and voice_of and len(speaking) >= 1, 5)
        if not ok:       # first messages may race discovery: per-id publishers are created on demand
            adapter._last_value.clear()
            feed()
            ok = spin_until([robot, listener], lambda: tracked and persons and voice_of, 5)
        assert ok
        assert tracked[-1] == ['voice_ada_1'] and persons[-1] == ['person_7'] and voice_of[-1] == 'voice_ada_1'
        assert speaking[-1] is False          # the final ends is_speaking
        robot.destroy_node()
        listener.destroy_node()
    finally:
        rclpy.shutdown()
