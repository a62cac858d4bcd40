"""Addressee estimation on hand-built scenes with known geometry (no ground truth inside the system)."""
import math

import pytest

from voice_robot import messages as m
from voice_robot.config.robots import RobotSpec
from voice_robot.conversing.addressee import (GROUP, OTHERS, PRIOR_WEIGHTS, AddresseeModel, AddresseeStage,
                                              TurnInput, Weights, fuse, turn_features)
from voice_robot.conversing.config import AddresseeConfig, TurnConfig
from voice_robot.conversing.context import ConversationContext
from voice_robot.pipeline import InProcessBus, Stage

ARRAY = {'layout': 'circular', 'channels': 4, 'radius_m': 0.032, 'height_m': 0.9}
ADA = RobotSpec(name='ada', position_m=[2.0, 2.0], yaw_deg=0, mic_array=ARRAY)
BRUNO = RobotSpec(name='bruno', position_m=[4.0, 2.0], yaw_deg=180, mic_array=ARRAY)
ROBOTS = [ADA, BRUNO]
SPEAKER_POS = (3.0, 3.5, 1.2)      # between the robots, in front of both
SPEAKER_AZ = ADA.bearing_to(SPEAKER_POS)


def context_with_gaze(targets: list[tuple[float, str]], voice='v1') -> ConversationContext:
    ctx = ConversationContext('ada', ROBOTS)
    for t, target in targets:
        ctx.on_persons(m.Persons(t, 'ada', [m.Person('person_1', SPEAKER_POS, voice_id=voice, looked_at=target,
                                                     looked_at_probability=0.9)]), now=t)
    return ctx


def estimate(text, gaze_target, ctx=None, weights=None):
    ctx = ctx or context_with_gaze([(t / 10, gaze_target) for t in range(0, 31)])
    turn = TurnInput('ada/1', 1.0, 3.0, text, 'v1', SPEAKER_AZ)
    feats = turn_features(turn, ADA, ctx, now=3.3)
    model = AddresseeModel(['ada', 'bruno'], weights or Weights(PRIOR_WEIGHTS))
    return model.estimate(turn, feats, 'ada', 3.3)


def test_name_beats_gaze():
    est = estimate('Ada, what is the capital of France?', 'bruno')
    assert est.decision == 'ada'


def test_gaze_alone_picks_the_robot_looked_at():
    est = estimate('Could you tell me where the meeting room is?', 'bruno')
    assert est.decision == 'bruno' and est.probability('bruno') > 0.6


def test_third_person_mention_while_looking_at_a_person_is_side_talk():
    est = estimate('I think Ada got the weather wrong this morning.', 'person:person_2')
    assert est.decision == OTHERS
    assert est.probability('ada') < 0.2


@pytest.mark.parametrize('x, nearest', [(2.95, {'ada', 'bruno'}), (2.3, {'ada'})])
def test_robots_about_as_near_as_the_nearest_all_count_as_nearest(x, nearest):
    """Centimetres (or the noise of a person's position) must not pick who answers a group request."""
    ctx = ConversationContext('ada', ROBOTS)
    ctx.on_persons(m.Persons(1.0, 'ada', [m.Person('person_1', (x, 3.5, 1.2), voice_id='v1', looked_at='none',
                                                   looked_at_probability=0.9)]), now=1.0)
    turn = TurnInput('ada/1', 1.0, 3.0, 'Can one of you help me?', 'v1', ADA.bearing_to((x, 3.5, 1.2)))
    feats = turn_features(turn, ADA, ctx, now=3.3)
    assert {r for r in ('ada', 'bruno') if feats[r]['nearest']} == nearest


def test_group_request():
    est = estimate('Can one of you help me find my keys?', 'none')
    assert est.decision == GROUP


def test_thinking_aloud_goes_to_nobody():
    est = estimate('Hmm, where did I put my badge.', 'none')
    assert est.decision == OTHERS


def test_follow_up_goes_to_the_robot_the_person_was_talking_with():
    ctx = context_with_gaze([(t / 10, 'none') for t in range(0, 31)])
    ctx.on_decision(m.AddresseeEstimate('ada/0', 'ada', [], [], GROUP, utterance_start=-6.0, utterance_end=-4.0,
                                        voice_id='v1', fused=True))
    ctx.on_speech_state(m.SpeechState('bruno', True, 's1', text='Sure, where did you last see them?',
                                      started=-3.5, reply_to_start=-6.0, reply_to_end=-4.0, stamp=-3.5))
    ctx.on_speech_state(m.SpeechState('bruno', False, 's1', stamp=0.5))
    est = estimate('I last had them in the kitchen.', 'none', ctx)
    assert est.decision == 'bruno'


def test_evidence_explains_the_scores():
    est = estimate('Ada, what time is it?', 'ada')
    by_candidate = {}
    for ev in est.evidence:
        by_candidate[ev.candidate] = by_candidate.get(ev.candidate, 0.0) + ev.contribution
    logits = {c: by_candidate.get(c, 0.0) for c in est.candidates}
    z = sum(math.exp(v) for v in logits.values())
    for c, p in zip(est.candidates, est.probabilities):
        assert p == pytest.approx(math.exp(logits[c]) / z, abs=1e-6)
    assert any(ev.cue == 'vocative' and ev.candidate == 'ada' for ev in est.evidence)


def test_unsure_decisions_degrade_to_others():
    model = AddresseeModel(['ada', 'bruno'], Weights(PRIOR_WEIGHTS), min_probability=0.95)
    ctx = context_with_gaze([(t / 10, 'bruno' if t % 2 else 'ada') for t in range(0, 31)])
    turn = TurnInput('ada/1', 1.0, 3.0, 'Could you help me?', 'v1', SPEAKER_AZ)
    est = model.estimate(turn, turn_features(turn, ADA, ctx, 3.3), 'ada', 3.3)
    assert max(est.probabilities) < 0.95 and est.decision == OTHERS


def test_fusion_is_order_independent_and_agrees():
    a = estimate('Could you tell me the time?', 'bruno')
    b = m.AddresseeEstimate('bruno/4', 'bruno', a.candidates, [0.2, 0.5, 0.2, 0.1], 'bruno', 1.05, 3.0,
                            transcript='could you tell me the time')
    f1 = fuse([a, b], 'ada', 0.5, 4.0)
    f2 = fuse([b, a], 'bruno', 0.5, 4.0)
    assert f1.probabilities == pytest.approx(f2.probabilities)
    assert f1.decision == f2.decision and f1.fused
    assert f1.utterance_id == 'ada/1' and f2.utterance_id == 'bruno/4'


class Probe(Stage):
    name = 'probe'
    outputs = ('hearing/utterances', '/persons', 'audio/sources')


def test_two_robots_publish_the_same_fused_decision():
    bus = InProcessBus(charge_compute=False)
    stages = {r.name: bus.add(AddresseeStage(r, ROBOTS, AddresseeConfig(fuse_window_s=0.1), TurnConfig()), r.ns)
              for r in ROBOTS}
    probes = {r.name: bus.add(Probe(r.name), r.ns) for r in ROBOTS}
    fused = []
    bus.tap('/conversation/addressee', lambda topic, est, t: fused.append(est) if est.fused else None)
    for t in range(0, 30):
        bus.publish('/persons', m.Persons(t / 10, 'ada', [m.Person('person_1', SPEAKER_POS, voice_id='v1',
                                                                  looked_at='bruno', looked_at_probability=0.9)]),
                    at=t / 10)
    bus.run_until(3.0)
    for r in ROBOTS:
        az = r.bearing_to(SPEAKER_POS)
        u = m.Utterance(f'{r.name}/1', r.name, 1.0, 2.9, voice_id='v1', azimuth=az, is_final=True,
                        transcript='Could you tell me where the meeting room is?', end_of_turn_probability=0.95)
        bus.publish(f'{r.ns}/hearing/utterances', u, at=3.2)
    bus.run_until(5.0)
    assert {e.robot for e in fused} == {'ada', 'bruno'}
    assert len({e.decision for e in fused}) == 1 and fused[0].decision == 'bruno'
    assert fused[0].probabilities == pytest.approx(fused[1].probabilities)
    assert all(len({ev.cue.split(':')[0] for ev in e.evidence}) == 2 for e in fused)   # both robots' cues
    # Each robot fuses its own estimate as its peers receive it over ROS (float32, nanoseconds), so on
    # a network too both fuse the very same numbers.
    local = [row['estimate'] for r in ROBOTS for row in stages[r.name].features_log]
    assert local and all(p == m.as_float32(p) for e in local for p in e.probabilities)
    assert all(e.utterance_end == m.as_stamped(e.utterance_end) for e in local)
    _ = probes


def test_bad_weights_file_is_a_clear_error(tmp_path):
    from voice_robot.config.errors import ConfigError
    path = tmp_path / 'w.yaml'
    path.write_text('format: voice_robot/addressee_weights@1\nweights: {robot: {vocative: banana}}\n')
    with pytest.raises(ConfigError, match='weights.robot.vocative'):
        Weights.load(path)


def test_a_turn_does_not_end_on_silence_hearing_has_not_processed_yet():
    bus = InProcessBus(charge_compute=False)
    stage = bus.add(AddresseeStage(ADA, ROBOTS, AddresseeConfig(fuse_window_s=0.1), TurnConfig()), ADA.ns)
    probe = bus.add(Probe('ada'), ADA.ns)
    out = []
    bus.tap('/conversation/addressee', lambda topic, est, t: out.append(est))
    u = m.Utterance('ada/1', 'ada', 1.0, 2.0, voice_id='v1', azimuth=SPEAKER_AZ, is_final=True,
                    transcript='So I was', end_of_turn_probability=0.2)
    bus.publish('/ada/hearing/utterances', u, at=2.3)
    bus.publish('/ada/audio/sources', m.SoundSources(2.3, 'ada'), at=2.35)   # hearing is behind the clock
    bus.run_until(4.0)
    assert out == []
    bus.publish('/ada/audio/sources', m.SoundSources(4.0, 'ada'), at=4.05)
    bus.run_until(4.5)
    assert out and out[0].utterance_id == 'ada/1'
    _ = stage, probe


def test_a_fragment_heard_beside_a_turn_does_not_swallow_it():
    """One robot's hearing gives a short fragment (another direction, a few garbled words) and, over the
    same span, a real request: two turns, each with its own fused decision, however much they overlap."""
    bus = InProcessBus(charge_compute=False)
    stage = bus.add(AddresseeStage(ADA, [ADA], AddresseeConfig(fuse_window_s=0.1), TurnConfig()), ADA.ns)
    fused = []
    bus.tap('/conversation/addressee', lambda topic, est, t: fused.append(est) if est.fused else None)
    fragment = m.Utterance('ada/4', 'ada', 18.42, 18.94, azimuth=-1.0, is_final=True, transcript='Okay, so.',
                           end_of_turn_probability=0.4, backchannel_probability=0.9)
    request = m.Utterance('ada/3', 'ada', 18.35, 20.67, voice_id='v1', azimuth=-0.4, is_final=True,
                          transcript='Ada, so where do the glass bottles go?', end_of_turn_probability=0.96)
    bus.publish('/ada/hearing/utterances', fragment, at=19.4)
    bus.publish('/ada/hearing/utterances', request, at=21.1)
    bus.run_until(23.0)
    decided = {e.utterance_id: e.decision for e in fused}
    assert set(decided) == {'ada/3', 'ada/4'}
    assert decided['ada/3'] == 'ada'
    _ = stage


def test_a_fragment_one_robot_decided_alone_does_not_swallow_the_turn_another_robot_heard():
    """Ada heard only the first words of a group request (a fragment, decided alone as nobody's); Bruno's
    estimate of the whole request comes after that decision. It is no late copy of the fragment: it
    joins Ada's own estimate of the whole request, and the request goes to the robots."""
    bus = InProcessBus(charge_compute=False)
    stage = bus.add(AddresseeStage(ADA, ROBOTS, AddresseeConfig(fuse_window_s=0.1), TurnConfig()), ADA.ns)
    fused = []
    bus.tap('/conversation/addressee', lambda topic, est, t: fused.append(est) if est.fused else None)
    fragment = m.Utterance('ada/3', 'ada', 8.69, 9.02, azimuth=2.5, is_final=True, transcript='Good one.',
                           end_of_turn_probability=0.9)
    bus.publish('/ada/hearing/utterances', fragment, at=9.5)
    bus.run_until(10.9)
    group = m.AddresseeEstimate(
        'bruno/3', 'bruno', ['ada', 'bruno', GROUP, OTHERS], [0.02, 0.02, 0.83, 0.13], GROUP, 8.62, 10.35,
        'v1', 'Could one of you recommend a good book?', [m.CueEvidence('group words', GROUP, 1.0, 2.0)],
        fused=False, stamp=10.98)
    bus.publish('/conversation/addressee', group, at=10.98)
    request = m.Utterance('ada/2', 'ada', 8.62, 10.38, voice_id='v1', azimuth=0.56, is_final=True,
                          transcript='Could you recommend a good book?', end_of_turn_probability=0.95)
    bus.publish('/ada/hearing/utterances', request, at=11.0)
    bus.run_until(12.0)
    decided = {e.utterance_id: e for e in fused}
    assert set(decided) == {'ada/3', 'ada/2'}
    assert {ev.cue.split(':')[0] for ev in decided['ada/2'].evidence} == {'ada', 'bruno'}
    assert decided['ada/2'].decision == GROUP
