"""Motion: look at speakers and addressees, clamp to limits, rate-limit, refuse unknown gestures."""
from __future__ import annotations

import math

import pytest

from voice_robot import messages as m
from voice_robot.acting.config import MotionConfig
from voice_robot.acting.motion import MotionStage
from voice_robot.config.robots import RobotSpec
from voice_robot.pipeline import InProcessBus

ARRAY = {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}


def ada(yaw_deg: float = 90.0) -> RobotSpec:
    # At (2, 1) facing +y (yaw 90 deg): a person at (2, 3) is straight ahead.
    return RobotSpec(name='ada', position_m=[2.0, 1.0], yaw_deg=yaw_deg, mic_array=ARRAY,
                     camera={'hfov_deg': 70, 'height_m': 1.1})


class Rig:
    def __init__(self, config: MotionConfig | None = None, robot: RobotSpec | None = None):
        self.robot = robot or ada()
        self.stage = MotionStage(self.robot, config or MotionConfig())
        self.bus = InProcessBus(charge_compute=False)
        self.bus.add(self.stage, '/ada')
        self.commands: list[tuple[float, m.MotionCommand]] = []
        self.bus.tap('/ada/motion/command', lambda topic, msg, t: self.commands.append((t, msg)))

    def looks(self):
        return [(t, c) for t, c in self.commands if c.action == m.MotionAction.LOOK_AT]

    def gestures(self):
        return [c for _, c in self.commands if c.action == m.MotionAction.GESTURE]

    def head_angles(self, target):
        """(yaw, pitch) in degrees of the head (camera height) towards a map point."""
        base = self.robot.map_to_base([target])[0]
        yaw = math.degrees(math.atan2(base[1], base[0]))
        pitch = math.degrees(math.atan2(base[2] - self.stage.head_height, math.hypot(base[0], base[1])))
        return yaw, pitch


def persons(t, *people):
    return m.Persons(stamp=t, robot='bruno', persons=[
        m.Person(person_id=pid, position=pos, voice_id=voice) for pid, pos, voice in people])


def utterance(uid, start, end, azimuth=0.0, voice='', person='', final=True):
    return m.Utterance(utterance_id=uid, robot='ada', start=start, end=end, voice_id=voice, person_id=person,
                       azimuth=azimuth, is_final=final, transcript='hello', stamp=end)


def test_looks_at_the_person_who_speaks_and_then_at_the_one_it_answers():
    rig = Rig()
    rig.bus.publish('/persons', persons(0.0, ('p1', (3.0, 3.0, 1.2), 'v1'), ('p2', (0.5, 2.0, 1.6), 'v2')), at=0.0)
    rig.bus.publish('/ada/hearing/utterances', utterance('u1', 0.5, 1.5, voice='v1'), at=1.5)
    rig.bus.run_until(1.6)
    assert rig.looks()[-1][1].target == pytest.approx((3.0, 3.0, 1.2))
    # Someone else speaks (attributed by direction only: p2 is at the left of the robot).
    left = math.atan2(2.0 - 1.0, 0.5 - 2.0) - math.radians(90)
    rig.bus.publish('/ada/hearing/utterances', utterance('u2', 1.8, 2.6, azimuth=left), at=2.6)
    rig.bus.run_until(2.7)
    assert rig.looks()[-1][1].target == pytest.approx((0.5, 2.0, 1.6))
    # The robot answers u1: while it speaks it looks back at p1.
    rig.bus.publish('/ada/speech/state', m.SpeechState(robot='ada', speaking=True, speech_id='r1', in_reply_to='u1',
                                                       started=3.0, stamp=3.0), at=3.0)
    rig.bus.run_until(3.3)
    t, last = rig.looks()[-1]
    assert last.target == pytest.approx((3.0, 3.0, 1.2)) and last.robot == 'ada' and t >= 3.0


def test_follows_a_moving_addressee_but_ignores_small_changes():
    rig = Rig()
    rig.bus.publish('/persons', persons(0.0, ('p1', (2.0, 3.0, 1.3), 'v1')), at=0.0)
    rig.bus.publish('/ada/hearing/utterances', utterance('u1', 0.0, 1.0, voice='v1'), at=1.0)
    rig.bus.run_until(1.1)
    count = len(rig.looks())
    rig.bus.publish('/persons', persons(1.5, ('p1', (2.02, 3.0, 1.3), 'v1')), at=1.5)   # ~0.6 degrees
    rig.bus.run_until(1.9)
    assert len(rig.looks()) == count
    rig.bus.publish('/persons', persons(2.0, ('p1', (2.8, 3.0, 1.3), 'v1')), at=2.0)    # ~22 degrees
    rig.bus.run_until(2.3)
    assert len(rig.looks()) == count + 1 and rig.looks()[-1][1].target == pytest.approx((2.8, 3.0, 1.3))


def test_unknown_direction_looks_along_the_azimuth_at_head_height():
    config = MotionConfig()
    rig = Rig(config)
    rig.bus.publish('/ada/hearing/utterances', utterance('u1', 0.0, 1.0, azimuth=math.radians(30)), at=1.0)
    rig.bus.run_until(1.1)
    target = rig.looks()[-1][1].target
    yaw, _ = rig.head_angles(target)
    assert yaw == pytest.approx(30.0, abs=1.0)
    assert target[2] == pytest.approx(config.head_height_m)
    assert math.dist(target[:2], (2.0, 1.0)) == pytest.approx(config.default_distance_m, abs=0.05)


def test_every_look_at_is_clamped_to_the_head_limits():
    config = MotionConfig(limits={'head_yaw_deg': [-60, 60], 'head_pitch_deg': [-10, 20]})
    rig = Rig(config)
    # Behind the robot and low (a child on the floor): yaw 180 deg, pitch about -31 deg.
    rig.bus.publish('/persons', persons(0.0, ('p1', (2.0, 0.0, 0.5), 'v1')), at=0.0)
    rig.bus.publish('/ada/hearing/utterances', utterance('u1', 0.0, 1.0, voice='v1'), at=1.0)
    rig.bus.publish('/ada/motion/request', m.MotionCommand(robot='ada', action=m.MotionAction.LOOK_AT,
                                                           target=(2.0, 1.5, 9.0)), at=2.0)
    rig.bus.run_until(2.5)
    assert len(rig.looks()) == 2
    for _, command in rig.looks():
        yaw, pitch = rig.head_angles(command.target)
        assert -60 - 1e-6 <= yaw <= 60 + 1e-6 and -10 - 1e-6 <= pitch <= 20 + 1e-6
    yaw, pitch = rig.head_angles(rig.looks()[0][1].target)
    assert abs(yaw) == pytest.approx(60) and pitch == pytest.approx(-10)
    assert rig.head_angles(rig.looks()[1][1].target)[1] == pytest.approx(20)
    assert rig.stage.stats['look-at clamped'] >= 2


def test_look_at_commands_are_rate_limited():
    config = MotionConfig(look_at_max_rate_hz=5.0)
    rig = Rig(config)
    # A person who seems to jump around every 20 ms (noisy tracking) for 2 s.
    for i in range(100):
        x = 1.0 if i % 2 else 3.0
        rig.bus.publish('/persons', persons(i * 0.02, ('p1', (x, 3.0, 1.3), 'v1')), at=i * 0.02)
    rig.bus.publish('/ada/hearing/utterances', utterance('u1', 0.0, 1.9, voice='v1', final=False), at=0.0)
    rig.bus.run_until(2.0)
    times = [t for t, _ in rig.looks()]
    assert 5 <= len(times) <= 11
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.2 - 1e-9


def test_gestures_are_clamped_and_unknown_ones_refused():
    config = MotionConfig(gestures=['nod', 'wave'], limits={'max_duration_s': 2.0, 'max_amplitude': 0.6})
    rig = Rig(config)
    send = lambda t, **kw: rig.bus.publish('/ada/motion/request', m.MotionCommand(
        robot='ada', action=m.MotionAction.GESTURE, **kw), at=t)
    send(0.1, gesture='nod', duration_s=30.0, amplitude=5.0)
    send(0.2, gesture='wave', duration_s=float('nan'), amplitude=-1.0)
    send(0.3, gesture='self_destruct', duration_s=1.0)
    send(0.4, gesture='', duration_s=1.0)
    rig.bus.publish('/ada/motion/request', m.MotionCommand(robot='bruno', action=m.MotionAction.GESTURE,
                                                           gesture='nod'), at=0.5)
    rig.bus.publish('/ada/motion/request', {'gesture': 'nod'}, at=0.6)
    rig.bus.run_until(1.0)
    gestures = rig.gestures()
    assert [g.gesture for g in gestures] == ['nod', 'wave']
    assert gestures[0].duration_s == 2.0 and gestures[0].amplitude == 0.6
    assert 0 < gestures[1].duration_s <= 2.0 and 0 < gestures[1].amplitude <= 0.6
    assert rig.stage.stats['dropped: unknown gesture'] == 2
    assert rig.stage.stats['dropped: request for another robot'] == 1
    assert rig.stage.stats['dropped: bad request'] == 1
    assert rig.stage.stats['handler errors'] == 0


def test_garbage_inputs_are_dropped_not_fatal():
    rig = Rig()
    rig.bus.publish('/persons', m.Persons(stamp=0.0, robot='x', persons=[
        m.Person(person_id='p', position=(float('nan'), 0.0, 1.0))]), at=0.0)
    rig.bus.publish('/ada/hearing/utterances', utterance('u', 0.0, float('inf')), at=0.1)
    rig.bus.publish('/ada/speech/state', None, at=0.2)
    rig.bus.publish('/ada/motion/request', m.MotionCommand(robot='ada', action=m.MotionAction.LOOK_AT,
                                                           target=(1.0, float('nan'), 1.0)), at=0.3)
    rig.bus.run_until(1.0)
    stats = rig.stage.stats
    assert stats['dropped: bad person'] == 1 and stats['dropped: bad utterance'] == 1
    assert stats['dropped: bad speech state'] == 1 and stats['dropped: bad look-at target'] == 1
    assert stats['handler errors'] == 0 and not rig.commands
