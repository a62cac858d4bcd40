"""Simulated face observations: field of view, head motion, tracker ids, lips, no ground truth leaks."""
import math

import numpy as np
import pytest

from voice_robot.sim.camera import turn_duration
from voice_robot.sim.world import Simulator

from sim_helpers import base_scenario, scenario_from

ROBOT = {'name': 'ada', 'position_m': [1.0, 2.5], 'yaw_deg': 0,
         'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9},
         'camera': {'hfov_deg': 70, 'height_m': 1.1, 'max_range_m': 4.0, 'fps': 10}}


def frames_by_time(sim):
    frames = []
    while not sim.done:
        frames += sim.step().faces
    return frames


def wrap_deg(a):
    return (a + 180) % 360 - 180


def test_only_faces_inside_the_field_of_view_and_range_are_seen():
    humans = [{'name': 'front', 'position_m': [3.0, 3.0, 1.2], 'voice': 'flite:slt', 'facing': 'ada'},   # 14 deg
              {'name': 'side', 'position_m': [2.0, 4.5, 1.2], 'voice': 'flite:awb', 'facing': 'ada'},    # 63 deg
              {'name': 'far', 'position_m': [5.8, 2.0, 1.2], 'voice': 'flite:rms', 'facing': 'ada'}]     # 4.8 m
    events = [{'id': 'u1', 't': 0.5, 'speaker': 'front', 'say': 'Hello there.', 'to': 'ada'}]
    sim = Simulator(scenario_from(base_scenario(robots=[ROBOT], humans=humans, events=events, duration_s=5.0)))
    frames = frames_by_time(sim)
    assert [f.stamp for f in frames] == pytest.approx([k / 10 for k in range(50)])
    seen = [obs for f in frames for obs in f.faces]
    ids = {obs.face_id for obs in seen}
    assert len(ids) == 1                                        # one person, tracked throughout
    assert sum(1 for f in frames if f.faces) >= 45               # missed in a few frames at most
    truth_bearing = math.degrees(sim.truth.azimuth('ada', 'front'))
    bearings = np.array([math.degrees(o.bearing) for o in seen])
    assert abs(np.mean(bearings) - truth_bearing) < 1.0
    assert 0.5 < np.std(bearings) < 3.0                         # ~1.5 deg of detector noise
    distances = np.array([o.distance for o in seen])
    true_distance = math.dist([1.0, 2.5, 1.1], [3.0, 3.0, 1.24])
    assert abs(np.median(distances) / true_distance - 1) < 0.12
    for o in seen:
        assert o.looked_at == '' and o.looked_at_probability == 0.0     # never ground truth
        assert np.linalg.norm(o.gaze_direction) == pytest.approx(1.0)
        assert 0.0 <= o.mouth_open <= 1.0 and 0.0 < o.confidence <= 1.0


def test_head_yaw_follows_gaze_turns_smoothly_and_tracks_restart_after_a_second_away():
    humans = [{'name': 'hugo', 'position_m': [3.0, 2.5, 1.2], 'voice': 'flite:awb', 'facing': 'ada'}]
    events = [{'id': 'g1', 't': 2.0, 'look': {'who': 'hugo', 'at': 140}},
              {'id': 'u1', 't': 3.0, 'speaker': 'hugo', 'say': 'Hmm.', 'to': 'none', 'gaze': 'none'},
              {'id': 'g2', 't': 5.0, 'look': {'who': 'hugo', 'at': 0}},        # back of the head to the robot
              {'id': 'g3', 't': 7.0, 'look': {'who': 'hugo', 'at': 'ada'}}]
    sim = Simulator(scenario_from(base_scenario(robots=[ROBOT], humans=humans, events=events, duration_s=9.0)))
    frames = frames_by_time(sim)
    obs = {round(f.stamp, 2): f.faces[0] for f in frames if f.faces}

    def mean_yaw(t0, t1):
        return np.degrees(np.angle(np.mean([np.exp(1j * o.head_yaw) for t, o in obs.items() if t0 <= t < t1])))

    assert abs(wrap_deg(mean_yaw(0.5, 2.0) - 180)) < 4            # facing the robot: pi in the base frame
    assert abs(wrap_deg(mean_yaw(2.5, 3.0) - 140)) < 5
    # the true head pose turns with a minimum-jerk profile and arrives in 0.25-0.4 s
    head = sim._heads['hugo']
    duration = turn_duration(math.radians(40))
    assert 0.25 <= duration <= 0.4
    yaws = [math.degrees(head.pose(2.0 + k * duration / 20)[0]) % 360 for k in range(21)]
    assert yaws[0] == pytest.approx(180) and yaws[-1] == pytest.approx(140)
    assert all(b <= a + 1e-9 for a, b in zip(yaws, yaws[1:]))     # monotonic
    steps = np.diff(yaws)
    assert abs(steps[0]) < abs(steps[10]) and abs(steps[-1]) < abs(steps[10])   # slow-fast-slow
    # looking down while speaking to nobody ('gaze: none'): yaw kept, pitch about -35 deg
    pitches = [math.degrees(o.head_pitch) for t, o in obs.items() if 3.5 <= t < 5.0]
    assert abs(np.mean(pitches) + 35) < 5
    # turned away from the camera: not detected; back after 2 s with a new tracker id
    assert not any(5.5 <= t < 7.0 for t in obs)
    before = {o.face_id for t, o in obs.items() if t < 5.0}
    after = {o.face_id for t, o in obs.items() if t >= 7.3}
    assert len(before) == 1 and len(after) == 1 and before != after
    tracks = sim.truth.face_tracks
    assert [(tr.face_id, tr.human) for tr in tracks] == [(before.pop(), 'hugo'), (after.pop(), 'hugo')]


def test_mouth_moves_while_speaking():
    humans = [{'name': 'hugo', 'position_m': [3.0, 2.5, 1.2], 'voice': 'espeak:en-us+m4', 'facing': 'ada'}]
    events = [{'id': 'u1', 't': 1.0, 'speaker': 'hugo', 'to': 'ada',
               'say': 'Good morning, could you tell me where the meeting room is?'}]
    robot = {**ROBOT, 'camera': {**ROBOT['camera'], 'fps': 30}}
    sim = Simulator(scenario_from(base_scenario(robots=[robot], humans=humans, events=events)))
    frames = frames_by_time(sim)
    u = sim.truth.utterance('u1')
    speaking = [f.faces[0].mouth_open for f in frames if f.faces and u.start + 0.1 <= f.stamp < u.end - 0.1]
    silent = [f.faces[0].mouth_open for f in frames if f.faces and (f.stamp < u.start or f.stamp > u.end + 0.2)]
    assert np.mean(speaking) > 0.35 and np.std(speaking) > 0.08
    assert np.mean(silent) < 0.1 and max(silent) < 0.2
