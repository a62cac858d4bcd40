"""Visual focus of attention from hand-built faces with known geometry."""
import math

import numpy as np
import pytest

from voice_robot import messages as m
from voice_robot.pipeline import InProcessBus
from voice_robot.seeing.attention import (NONE, AttentionStage, face_position_map, focus_of_attention,
                                          robot_look_point)
from voice_robot.seeing.config import AttentionConfig

from geometry_helpers import make_robot, observe_face

# Two robots facing each other across a table, a person between them.
A = make_robot('A', 1.0, 2.0, 0.0)
B = make_robot('B', 5.0, 2.0, 180.0)
C = make_robot('C', 3.0, 4.5, -90.0, camera=False)       # no camera: people look at its "head"
PERSON = np.array([3.0, 2.0, 1.25])


def run(stage, frames, persons=()):
    bus = InProcessBus(charge_compute=False)
    out = []
    bus.add(stage, '/' + stage.robot)
    bus.tap(f'/{stage.robot}/faces/attention', lambda topic, msg, t: out.append(msg))
    for p in persons:
        bus.publish('/persons', p, at=p.stamp)
    for f in frames:
        bus.publish(f'/{stage.robot}/faces/observations', f, at=f.stamp)
    bus.run_until(max([f.stamp for f in frames] + [0.0]) + 1.0)
    return out


def frames_of(robot, faces_at, t0=0.0, dt=0.1):
    """faces_at: list over time of lists of FaceObservations."""
    return [m.FaceFrame(stamp=t0 + i * dt, robot=robot.name, faces=list(faces)) for i, faces in enumerate(faces_at)]


def test_focus_of_attention_picks_the_robot_looked_at():
    targets = {'A': robot_look_point(A), 'B': robot_look_point(B)}
    eyes = PERSON + [0, 0, 0.03]
    to_a = focus_of_attention(eyes, robot_look_point(A) - eyes, targets)
    assert sum(to_a.values()) == pytest.approx(1.0)
    assert max(to_a, key=to_a.get) == 'A' and to_a['A'] > 0.9 and to_a['B'] < 0.01
    to_b = focus_of_attention(eyes, robot_look_point(B) - eyes, targets)
    assert max(to_b, key=to_b.get) == 'B'
    sideways = focus_of_attention(eyes, [0.0, 1.0, 0.0], targets)
    assert max(sideways, key=sideways.get) == NONE
    with pytest.raises(ValueError):
        focus_of_attention(eyes, [0.0, 0.0, 0.0], targets)
    assert focus_of_attention(eyes, [1.0, 0.0, 0.0], {}) == {NONE: 1.0}


def test_looking_down_means_none_even_towards_a_robot():
    eyes = PERSON + [0, 0, 0.03]
    targets = {'A': robot_look_point(A), 'B': robot_look_point(B)}
    towards_a_down = np.array([-math.cos(math.radians(35)), 0.0, -math.sin(math.radians(35))])
    post = focus_of_attention(eyes, towards_a_down, targets)
    assert post[NONE] > 0.9
    # A target that really is down there (a child sitting on the floor) is still looked at.
    child = {'child': np.array([2.0, 2.0, 0.6])}
    post = focus_of_attention(eyes, child['child'] - eyes, {**targets, **child})
    assert max(post, key=post.get) == 'child'


def test_a_target_below_eye_level_gains_nothing_when_the_gaze_is_level():
    """Looking level and straight at B, a low target 35 degrees off the ray (someone seated nearby)
    is not favoured for being low: being below eye level only undoes the looking-down penalty."""
    eyes = np.array([3.0, 2.0, 1.75])
    seated = np.array([3.6, 1.6, 1.05])
    targets = {'B': robot_look_point(B), 'person:seated': seated}
    post = focus_of_attention(eyes, robot_look_point(B) - eyes, targets)
    assert max(post, key=post.get) == 'B'
    assert post['person:seated'] < 0.05


def test_person_facing_a_is_looking_at_a_not_b_from_both_cameras():
    rng = np.random.default_rng(3)
    for observer in (A, B):
        stage = AttentionStage(observer, [A, B, C])
        frames = frames_of(observer, [[observe_face(observer, PERSON, robot_look_point(A), 'p', rng, 5.0, 1.5)]
                                      for _ in range(20)])
        out = run(stage, frames)
        labels = [f.faces[0].looked_at for f in out]
        assert len(out) == 20
        assert labels.count('A') >= 19, (observer.name, labels)
        assert out[-1].faces[0].looked_at_probability > 0.8


def test_noisy_head_pose_gives_a_stable_label_and_switches_on_a_real_turn():
    rng = np.random.default_rng(11)
    stage = AttentionStage(A, [A, B, C])
    faces = [[observe_face(A, PERSON, robot_look_point(B), 'p', rng, 5.0, 1.5)] for _ in range(30)]
    faces += [[observe_face(A, PERSON, robot_look_point(C), 'p', rng, 5.0, 1.5)] for _ in range(30)]
    labels = [f.faces[0].looked_at for f in run(stage, frames_of(A, faces))]
    assert labels[:30].count('B') >= 28
    assert labels[35:].count('C') == 25                       # switched within half a second
    switches = sum(1 for a, b in zip(labels, labels[1:]) if a != b)
    assert switches <= 2


def test_one_frame_glitch_is_smoothed_away():
    stage = AttentionStage(A, [A, B], AttentionConfig(smoothing_s=0.3, gaze_std_deg=8.0))
    faces = [[observe_face(A, PERSON, robot_look_point(B), 'p')] for _ in range(10)]
    faces[6] = [observe_face(A, PERSON, robot_look_point(A), 'p')]
    labels = [f.faces[0].looked_at for f in run(stage, frames_of(A, faces))]
    assert labels[6] == 'B' and set(labels) == {'B'}


def test_people_looking_at_each_other_by_face_and_by_person_id():
    p1, p2 = np.array([2.5, 1.0, 1.25]), np.array([3.0, 3.0, 1.6])
    faces = [[observe_face(A, p1, p2, 'f1'), observe_face(A, p2, p1, 'f2')] for _ in range(5)]
    out = run(AttentionStage(A, [A, B]), frames_of(A, faces))
    last = {f.face_id: f.looked_at for f in out[-1].faces}
    assert last == {'f1': 'person:f2', 'f2': 'person:f1'}
    persons = m.Persons(stamp=0.0, robot='A', persons=[
        m.Person('person_7', tuple(p1), face_ids=['A/f1']), m.Person('person_9', tuple(p2), face_ids=['A/f2'])])
    out = run(AttentionStage(A, [A, B]), frames_of(A, faces, t0=0.1), [persons])
    last = {f.face_id: f.looked_at for f in out[-1].faces}
    assert last == {'f1': 'person:person_9', 'f2': 'person:person_7'}


def test_person_known_only_from_persons_is_a_target():
    """Somebody out of this camera's view (behind the robot), placed by B's camera, is still a target
    from /persons."""
    behind_a = np.array([0.2, 2.6, 1.3])
    persons = m.Persons(stamp=0.0, robot='B', persons=[m.Person('person_3', tuple(behind_a), position_std=0.15)])
    faces = [[observe_face(A, PERSON, behind_a, 'p')] for _ in range(5)]
    out = run(AttentionStage(A, [A, B]), frames_of(A, faces, t0=0.1), [persons])
    assert out[-1].faces[0].looked_at == 'person:person_3'
    # Stale person views are not used.
    stale = run(AttentionStage(A, [A, B]), frames_of(A, faces, t0=10.0), [persons])
    assert stale[-1].faces[0].looked_at != 'person:person_3'


def test_person_placed_only_by_voice_neither_takes_the_gaze_nor_hides_the_robot():
    """A voice-only person (metres of position error) half-way along the line of sight to B: the
    person looking straight at B looks at B, not at a guess of where somebody might stand."""
    on_the_way = (PERSON + robot_look_point(B)) / 2
    face = observe_face(A, PERSON, robot_look_point(B), 'p')
    vague = m.Persons(stamp=0.0, robot='A', persons=[m.Person('person_9', tuple(on_the_way), position_std=1.5)])
    out = run(AttentionStage(A, [A, B]), frames_of(A, [[face]] * 5, t0=0.1), [vague])
    assert out[-1].faces[0].looked_at == 'B'
    # The same person where faces put them (a well-placed head) is looked at, and hides B.
    placed = m.Persons(stamp=0.0, robot='A', persons=[m.Person('person_9', tuple(on_the_way), position_std=0.1)])
    out = run(AttentionStage(A, [A, B]), frames_of(A, [[face]] * 5, t0=0.1), [placed])
    assert out[-1].faces[0].looked_at == 'person:person_9'
    # Looking well off the vague person's spot is not looking at them.
    away = observe_face(A, PERSON, robot_look_point(A), 'p')
    out = run(AttentionStage(A, [A, B]), frames_of(A, [[away]] * 5, t0=0.1), [vague])
    assert out[-1].faces[0].looked_at == 'A'


def test_face_position_in_map_matches_geometry():
    face = observe_face(B, PERSON, robot_look_point(A), 'p')
    assert np.allclose(face_position_map(B, face), PERSON, atol=1e-9)
    assert robot_look_point(C)[2] == pytest.approx(1.2)          # array at 1.0 m + 0.2


def test_head_pose_only_faces_use_head_yaw():
    face = observe_face(A, PERSON, robot_look_point(A), 'p')
    face.gaze_direction = (1.0, 0.0, 0.0)                           # producer filled only the head pose
    out = run(AttentionStage(A, [A, B]), frames_of(A, [[face]] * 3))
    assert out[-1].faces[0].looked_at == 'A'


def test_bad_faces_are_dropped_others_kept():
    good = observe_face(A, PERSON, robot_look_point(B), 'good')
    nan = observe_face(A, PERSON, robot_look_point(B), 'nan')
    nan.bearing = float('nan')
    negative = observe_face(A, PERSON, robot_look_point(B), 'neg')
    negative.distance = -1.0
    stage = AttentionStage(A, [A, B])
    out = run(stage, [m.FaceFrame(stamp=0.0, robot='A', faces=[nan, good, negative]),
                      m.FaceFrame(stamp=0.1, robot='nobody', faces=[good]),
                      m.FaceFrame(stamp=0.2, robot='A', faces=[])])
    assert [f.face_id for f in out[0].faces] == ['good'] and out[0].faces[0].looked_at == 'B'
    assert stage.stats['dropped: bad face'] == 2
    assert stage.stats['dropped: unknown robot'] == 1
    assert out[1].faces == []
    stage.on_persons('garbage')
    assert stage.stats['dropped: bad persons'] == 1


def test_person_in_front_hides_the_robot_behind_them():
    """Kim looks at Jon; robot A stands right behind Jon in the same direction: Jon is the target."""
    kim, jon = np.array([5.0, 4.6, 1.2]), np.array([4.2, 4.0, 1.2])
    a_far = make_robot('A', 3.0, 3.0, 0.0)                # camera nearly on the line kim -> jon, further away
    eyes = kim + [0, 0, 0.03]
    targets = {'A': robot_look_point(a_far), 'person:jon': jon}
    # Even a ray that points exactly at A's camera meets Jon's head first.
    post = focus_of_attention(eyes, robot_look_point(a_far) - eyes, targets)
    assert max(post, key=post.get) == 'person:jon'
    # With Jon out of the way, the same gaze is at A.
    post = focus_of_attention(eyes, robot_look_point(a_far) - eyes, {'A': robot_look_point(a_far)})
    assert max(post, key=post.get) == 'A'


def test_malformed_persons_are_ignored():
    face = observe_face(A, PERSON, robot_look_point(B), 'p')
    junk = m.Persons(stamp=0.0, robot='A', persons=['junk', m.Person('person_1', (1.0, float('nan'), 1.0)),
                                                    m.Person('person_2', (3.0, 0.5))])
    stage = AttentionStage(A, [A, B])
    out = run(stage, frames_of(A, [[face]] * 3, t0=0.1), [junk])
    assert [f.faces[0].looked_at for f in out] == ['B'] * 3
    assert stage.stats['handler errors'] == 0
