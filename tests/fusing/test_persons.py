"""The person manager: faces and voices of several robots -> persons with ids the robots agree on."""
import math

import numpy as np
import pytest

from voice_robot import messages as m
from voice_robot.fusing.config import FusingConfig
from voice_robot.fusing.geometry import triangulate_bearings
from voice_robot.fusing.persons import PersonManager, person_for_utterance_in
from voice_robot.pipeline import InProcessBus

from geometry_helpers import make_robot, observe_face, utterance

A = make_robot('A', 1.0, 2.0, 0.0)
B = make_robot('B', 5.0, 2.0, 180.0)
C = make_robot('C', 3.0, 4.5, -90.0, camera=False)
ROBOTS = [A, B, C]
A_HEAD = np.array([1.0, 2.0, 1.1])


class World:
    """Person managers of several robots wired on one in-process bus."""

    def __init__(self, robots=ROBOTS, run=('A',), config=None):
        self.bus = InProcessBus(charge_compute=False)
        self.managers = {}
        for r in robots:
            if r.name in run:
                self.managers[r.name] = self.bus.add(PersonManager(r, list(robots), config or FusingConfig()), r.ns)
        self.published = {name: [] for name in self.managers}
        self.bus.tap('/persons',
                     lambda topic, msg, t: self.published.setdefault(getattr(msg, 'robot', '?'), []).append(msg))

    def faces(self, robot, t, faces):
        self.bus.publish(f'{robot.ns}/faces/attention', m.FaceFrame(stamp=t, robot=robot.name, faces=faces), at=t)

    def say(self, utt):
        self.bus.publish(f'/{utt.robot}/hearing/utterances', utt, at=utt.stamp)

    def run(self, t):
        self.bus.run_until(t)

    def latest(self, name) -> list[m.Person]:
        return self.published[name][-1].persons


def test_faces_become_persons_with_stable_ids_and_positions():
    rng = np.random.default_rng(1)
    w = World()
    p1, p2 = np.array([3.0, 1.5, 1.25]), np.array([3.0, 2.8, 1.6])
    for k in range(30):
        t = 0.1 * k
        w.faces(A, t, [observe_face(A, p1, A_HEAD, 'f1', rng, 5, 1.5), observe_face(A, p2, p1, 'f2', rng, 5, 1.5)])
    w.run(3.2)
    persons = w.latest('A')
    assert len(persons) == 2
    ids_over_time = {tuple(sorted(p.person_id for p in msg.persons)) for msg in w.published['A'][2:]}
    assert len(ids_over_time) == 1                                    # ids never change
    for truth, face in ((p1, 'A/f1'), (p2, 'A/f2')):
        person = next(p for p in persons if face in p.face_ids)
        assert np.linalg.norm(np.array(person.position[:2]) - truth[:2]) < 0.15
        assert person.person_id.startswith('person_')
        assert person.position_std < 0.3
        assert person.voice_id == '' and not person.is_speaking        # a person with no voice is fine


def test_voice_goes_to_the_face_whose_mouth_moves():
    """Two people 12 degrees apart from A; the voice direction lies between them; one mouth moves."""
    rng = np.random.default_rng(2)
    w = World()
    talker, listener = np.array([3.0, 1.8, 1.25]), np.array([3.0, 2.25, 1.25])
    for k in range(40):
        t = 0.1 * k
        speaking = 1.0 <= t <= 3.0
        mouth = 0.2 + 0.5 * abs(math.sin(7 * t)) if speaking else 0.05
        w.faces(A, t, [observe_face(A, talker, A_HEAD, 'ft', rng, 5, 1.5, mouth_open=mouth),
                       observe_face(A, listener, A_HEAD, 'fl', rng, 5, 1.5, mouth_open=0.05)])
    middle = (talker + listener) / 2
    w.run(3.05)
    utt = utterance(A, middle, 'u1', 1.0, 3.0, voice_id='v1')
    w.say(utt)
    w.run(3.3)
    mgr = w.managers['A']
    person, confidence = mgr.person_for_utterance(utt)
    assert person is not None and 'A/ft' in person.face_ids
    assert person.voice_id == 'v1' and confidence > 0.5
    assert person.is_speaking
    others = [p for p in w.latest('A') if p.person_id != person.person_id]
    assert len(others) == 1 and others[0].voice_id == '' and not others[0].is_speaking
    # The next turn of the same voice is found by voice id even from a poor direction.
    later = utterance(A, listener, 'u2', 5.0, 6.0, voice_id='v1')
    w.say(later)
    w.run(6.1)
    assert mgr.person_for_utterance(later)[0].person_id == person.person_id


def test_voice_without_a_face_then_the_face_arrives():
    w = World()
    speaker = np.array([2.2, 3.5, 1.3])
    w.say(utterance(A, speaker, 'u1', 0.5, 1.5, voice_id='v7'))
    w.run(1.8)
    (voice_only,) = w.latest('A')
    assert voice_only.voice_id == 'v7' and voice_only.face_ids == []
    assert voice_only.position_std >= 0.9                               # only a direction
    assert abs(A.bearing_to(voice_only.position) - A.bearing_to(speaker)) < math.radians(2)
    for k in range(10):
        w.faces(A, 2.0 + 0.1 * k, [observe_face(A, speaker, A_HEAD, 'f9')])
    w.run(3.2)
    (person,) = w.latest('A')
    assert person.person_id == voice_only.person_id and person.voice_id == 'v7'
    assert 'A/f9' in person.face_ids
    assert np.linalg.norm(np.array(person.position[:2]) - speaker[:2]) < 0.15


def test_two_robots_triangulate_a_voice_nobody_sees():
    truth = np.array([2.4, 3.6, 1.3])
    cfg = FusingConfig()
    w = World(run=('A', 'B'), config=cfg)
    # Both hear the same voice (hearing shares voice ids); each robot's utterance reaches only itself.
    for k, (start, end) in enumerate([(0.5, 1.5), (2.5, 3.5)]):
        w.say(utterance(A, truth, f'a{k}', start, end, voice_id='v3', final=False))
        w.say(utterance(B, truth, f'b{k}', start, end, voice_id='v3', final=False))
        w.run(end + 0.3)
        w.say(utterance(A, truth, f'a{k}', start, end + 0.3, voice_id='v3'))
        w.say(utterance(B, truth, f'b{k}', start, end + 0.3, voice_id='v3'))
        w.run(end + 0.8)
    for name in ('A', 'B'):
        voiced = [p for p in w.latest(name) if p.voice_id == 'v3']
        assert len(voiced) == 1
        assert np.linalg.norm(np.array(voiced[0].position[:2]) - truth[:2]) < 0.3, (name, voiced[0].position)
    assert w.latest('A')[0].person_id == w.latest('B')[0].person_id
    point, radius = triangulate_bearings([A, B], [A.bearing_to(truth), B.bearing_to(truth)])
    assert np.allclose(point, truth[:2], atol=1e-6) and radius < 0.5


def test_robots_seeing_one_person_agree_on_one_id():
    person = np.array([3.0, 2.3, 1.3])
    w = World(run=('A', 'B'))
    for k in range(30):
        t = 0.1 * k
        w.faces(A, t, [observe_face(A, person, A_HEAD, 'a1')])
        w.faces(B, t, [observe_face(B, person, A_HEAD, 'b1')])
    w.run(3.5)
    a, b = w.latest('A'), w.latest('B')
    assert len(a) == 1 and len(b) == 1
    assert a[0].person_id == b[0].person_id
    assert {'A/a1', 'B/b1'} <= set(a[0].face_ids) | set(b[0].face_ids)
    # The id that lost is remembered: queries with it still find the person.
    for mgr in w.managers.values():
        assert len(mgr.table.aliases) <= 1
        for old in mgr.table.aliases:
            assert mgr.table.resolve(old) == a[0].person_id


def test_robot_without_camera_uses_what_others_see():
    rng = np.random.default_rng(5)
    w = World(run=('A', 'C'))
    p1 = np.array([3.0, 1.6, 1.25])
    for k in range(20):
        face = observe_face(A, p1, [3.0, 4.5, 1.2], 'f1', rng, 3, 1)
        face.looked_at, face.looked_at_probability = 'C', 0.9
        w.faces(A, 0.1 * k, [face])
    w.run(2.5)
    (seen_by_a,) = w.latest('A')
    (known_to_c,) = w.latest('C')
    assert known_to_c.person_id == seen_by_a.person_id
    assert np.linalg.norm(np.array(known_to_c.position) - np.array(seen_by_a.position)) < 0.2
    assert known_to_c.looked_at == 'C'
    # C's hearing: the voice from that direction is attributed to that person.
    utt = utterance(C, p1, 'c1', 2.6, 3.4, voice_id='v2')
    w.say(utt)
    w.run(3.6)
    person, conf = w.managers['C'].person_for_utterance(utt)
    assert person is not None and person.person_id == seen_by_a.person_id and conf > 0.3
    assert w.managers['C'].attention_during(person.person_id, 1.0, 2.4).get('C', 0) > 0.9


def test_attention_during_shares_of_time():
    w = World()
    p = np.array([3.0, 2.0, 1.3])
    for k in range(20):
        t = 0.1 * k
        target = 'A' if t < 1.0 else 'B'
        face = observe_face(A, p, A_HEAD, 'f1')
        face.looked_at, face.looked_at_probability = target, 0.9
        w.faces(A, t, [face])
    w.run(2.2)
    (person,) = w.latest('A')
    mgr = w.managers['A']
    shares = mgr.attention_during(person.person_id, 0.0, 2.0)
    assert shares['A'] == pytest.approx(0.5, abs=0.06) and shares['B'] == pytest.approx(0.5, abs=0.06)
    assert mgr.attention_during(person.person_id, 0.2, 0.8) == {'A': pytest.approx(1.0)}
    assert mgr.attention_during(person.person_id, 50.0, 60.0) == {}
    assert mgr.attention_during('person_unknown', 0.0, 2.0) == {}


def test_looked_at_other_face_becomes_person_id():
    w = World()
    p1, p2 = np.array([3.0, 1.5, 1.25]), np.array([3.0, 2.8, 1.6])
    for k in range(5):
        f1 = observe_face(A, p1, p2, 'f1')
        f1.looked_at, f1.looked_at_probability = 'person:f2', 0.8
        w.faces(A, 0.1 * k, [f1, observe_face(A, p2, A_HEAD, 'f2')])
    w.run(0.7)
    persons = {p.face_ids[0]: p for p in w.latest('A')}
    assert persons['A/f1'].looked_at == 'person:' + persons['A/f2'].person_id


def test_forgets_people_gone_for_long():
    w = World(config=FusingConfig(forget_after_s=2.0))
    w.faces(A, 0.0, [observe_face(A, [3.0, 2.0, 1.3], A_HEAD, 'f1')])
    w.run(1.0)
    assert len(w.latest('A')) == 1
    w.run(3.5)
    assert w.latest('A') == []


def test_person_for_utterance_over_topics():
    persons = [m.Person('person_1', (3.0, 1.0, 1.3)), m.Person('person_2', (3.0, 3.0, 1.3), voice_id='v5',
                                                               voice_confidence=0.8)]
    by_voice = utterance(A, [3.0, 1.0, 1.3], 'u', 0.0, 1.0, voice_id='v5')
    assert person_for_utterance_in(persons, by_voice, A) == (persons[1], pytest.approx(0.8))
    by_direction = utterance(A, [3.0, 1.1, 1.3], 'u', 0.0, 1.0)
    person, conf = person_for_utterance_in(persons, by_direction, A)
    assert person is persons[0] and conf > 0.5
    nobody = utterance(A, [1.0, 0.0, 1.3], 'u', 0.0, 1.0)
    assert person_for_utterance_in(persons, nobody, A) == (None, 0.0)


def test_garbage_is_counted_never_fatal():
    w = World(run=('A',))
    mgr = w.managers['A']
    bad_face = observe_face(A, [3.0, 2.0, 1.3], A_HEAD, 'f1')
    bad_face.distance = float('nan')
    w.faces(A, 0.0, [bad_face, observe_face(A, [3.0, 1.0, 1.3], A_HEAD, 'f2')])
    w.bus.publish('/A/hearing/utterances', m.Utterance('u', 'A', start=2.0, end=1.0), at=0.1)
    w.bus.publish('/A/hearing/utterances', m.Utterance('u', 'A', start=0.0, end=1.0, azimuth=float('inf')), at=0.1)
    w.bus.publish('/A/hearing/utterances', m.Utterance('u', 'Z', start=0.0, end=1.0), at=0.1)
    w.bus.publish('/persons', m.Persons(stamp=0.1, robot='Z', persons=[]), at=0.1)
    w.bus.publish('/persons', m.Persons(stamp=0.1, robot='B', persons=[m.Person('person_1', (float('nan'), 0, 0))]),
                  at=0.1)
    w.bus.publish('/persons', 'garbage', at=0.1)
    w.faces(A, -5.0, [observe_face(A, [3.0, 1.0, 1.3], A_HEAD, 'f2')])
    w.run(1.0)
    assert len(w.latest('A')) == 1
    assert mgr.stats['dropped: bad face values'] == 1
    assert mgr.stats['dropped: bad utterance'] == 2
    assert mgr.stats['dropped: utterance from unknown robot'] == 1
    assert mgr.stats['dropped: persons from unknown robot'] == 1
    assert mgr.stats['dropped: bad persons'] == 1
    assert mgr.stats['dropped: out of order faces'] == 1
    assert mgr.table.counters['peer persons rejected (bad values)'] == 1
    assert all(lane.stage.stats['handler errors'] == 0 for lane in w.bus.lanes)


def test_peer_persons_match_ours_one_to_one():
    """A sees only P1; B sees P1 and P2 standing 0.55 m apart: A must not fold P2 into P1."""
    p1, p2 = np.array([3.2, 2.4, 1.7]), np.array([3.0, 1.89, 1.2])
    w = World(run=('A', 'B'))
    for k in range(20):
        t = 0.1 * k
        w.faces(A, t, [observe_face(A, p1, A_HEAD, 'a1')])
        w.faces(B, t, [observe_face(B, p1, A_HEAD, 'b1'), observe_face(B, p2, A_HEAD, 'b2')])
    w.run(2.5)
    a, b = w.latest('A'), w.latest('B')
    assert len(a) == 2 and len(b) == 2
    assert {p.person_id for p in a} == {p.person_id for p in b}
    by_face = {f: p for p in a for f in p.face_ids}
    assert by_face['B/b2'].person_id != by_face['A/a1'].person_id
    assert np.linalg.norm(np.array(by_face['B/b2'].position[:2]) - p2[:2]) < 0.2


def test_unidentified_sound_from_nowhere_makes_no_person_and_guessed_voices_do_not_merge_by_position():
    w = World()
    w.say(utterance(A, [1.0, 4.0, 1.3], 'radio', 0.2, 1.0))            # no voice id, nobody there
    w.run(1.2)
    assert w.latest('A') == []
    # A voice 18 degrees off a silent face is someone unseen; placed at a guessed range right next to
    # that face it still stays its own person (guessed positions do not merge).
    face_at = np.array([2.5, 2.0, 1.3])
    for k in range(20):
        w.faces(A, 1.2 + 0.1 * k, [observe_face(A, face_at, A_HEAD, 'f1')])      # mouth closed throughout
    w.run(3.05)
    voice_from = A.array_center_map() + 1.5 * np.array([math.cos(math.radians(18)), math.sin(math.radians(18)), 0])
    w.say(utterance(A, voice_from, 'u2', 2.2, 3.0, voice_id='v8'))
    assert np.linalg.norm(face_at[:2] - (A.array_center_map()[:2] + 1.5 * np.array(
        [math.cos(math.radians(18)), math.sin(math.radians(18))]))) < FusingConfig().person_merge_m
    w.run(4.0)
    persons = w.latest('A')
    assert len(persons) == 2
    assert {p.voice_id for p in persons} == {'', 'v8'}


def test_malformed_peer_persons_are_skipped():
    w = World(run=('A',))
    good = m.Person('person_5', (3.0, 2.0, 1.3), face_ids=['B/b1'])
    short = m.Person('person_6', (3.0, 2.0), face_ids=['B/b2'])
    wrong_ids = m.Person('person_7', (2.0, 1.0, 1.3), face_ids=[3])
    w.bus.publish('/persons', m.Persons(stamp=0.1, robot='B', persons=[short, 'junk', wrong_ids, good]), at=0.1)
    w.run(0.5)
    assert [p.person_id for p in w.latest('A')] == ['person_5']
    assert w.managers['A'].table.counters['peer persons rejected (bad values)'] == 3
