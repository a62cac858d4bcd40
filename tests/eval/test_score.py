"""The scorer on hand-built system outputs whose correct scores are known."""
import math

import pytest

from voice_robot.eval.records import RobotSpeech, ScenarioRecord, SystemDecision, SystemUtterance, TruthUtterance
from voice_robot.eval.score import aggregate, overlap_total, report, score_scenario

ROBOTS = ['ada', 'bruno']


def utt(id, speaker, start, end, to, **kw):
    return TruthUtterance(id=id, speaker=speaker, start=start, end=end, text=id, to=to, **kw)


def speech(robot, start, end, reply=None, **kw):
    """A speech act naming the system utterance spanning `reply` (start, end)."""
    if reply is not None:
        kw.update(in_reply_to=f'{robot}/x', reply_to_start=reply[0], reply_to_end=reply[1])
    return RobotSpeech(robot=robot, speech_id=f'{robot}-{start}', start=start, end=end, **kw)


def decision(start, end, decision, robot='ada'):
    return SystemDecision(robot=robot, utterance_id=f'{robot}/{start}', start=start, end=end, decision=decision)


def record(utterances, speech_acts, decisions, system_utterances=(), duration=30.0, wall=15.0):
    return ScenarioRecord(name='hand', robots=ROBOTS, humans=sorted({u.speaker for u in utterances}),
                          duration_s=duration, utterances=list(utterances), speech=list(speech_acts),
                          system_utterances=list(system_utterances), decisions=list(decisions), wall_time_s=wall)


def test_one_correct_answer():
    u = utt('u1', 'alice', 1.0, 3.0, 'ada')
    rec = record([u], [speech('ada', 3.5, 5.0, reply=(1.1, 2.9))], [decision(1.1, 2.9, 'ada')])
    m = score_scenario(rec)['metrics']
    assert m['addressee_accuracy'] == 1.0 and m['response_accuracy'] == 1.0
    assert m['response_latency_ms']['p50'] == pytest.approx(500.0)
    assert m['realtime_factor'] == pytest.approx(0.5)
    assert m['missed_responses'] == m['double_responses'] == m['spurious_responses'] == 0


def test_failure_kinds_are_counted_per_utterance():
    us = [utt('u1', 'alice', 1.0, 2.0, 'robots'),          # both answer: double
          utt('u2', 'bob', 8.0, 9.0, 'none'),              # ada answers: spurious
          utt('u3', 'alice', 15.0, 16.0, 'ada'),           # bruno answers: wrong robot
          utt('u4', 'bob', 22.0, 23.0, 'bruno')]           # nobody: missed
    acts = [speech('ada', 2.3, 3.0, reply=(1.0, 2.0)), speech('bruno', 3.2, 4.0, reply=(1.0, 2.0)),
            speech('ada', 9.5, 10.0, reply=(8.0, 9.0)), speech('bruno', 16.4, 17.0, reply=(15.0, 16.0))]
    decs = [decision(1.0, 2.0, 'robots'), decision(8.0, 9.0, 'ada'), decision(15.0, 16.0, 'ada'),
            decision(22.0, 23.0, 'bruno')]
    m = score_scenario(record(us, acts, decs))['metrics']
    assert (m['double_responses'], m['spurious_responses'], m['wrong_robot_responses'], m['missed_responses']) == (1, 1, 1, 1)
    assert m['response_accuracy'] == 0.0
    assert m['addressee_accuracy'] == 0.75           # u2 decided 'ada' but truth is others
    assert m['addressee_confusion']['others'] == {'robot': 1}
    assert m['response_latency_ms']['n'] == 0        # latency only for correct responses


def test_follow_up_goes_to_whoever_answered():
    us = [utt('u1', 'gina', 1.0, 2.0, 'robots'), utt('u2', 'gina', 6.0, 7.0, {'responder_of': 'u1'})]
    acts = [speech('bruno', 2.5, 5.0, reply=(1.0, 2.0)), speech('bruno', 7.4, 8.0, reply=(6.0, 7.0))]
    decs = [decision(1.0, 2.0, 'robots'), decision(6.0, 7.0, 'bruno')]
    scored = score_scenario(record(us, acts, decs))
    assert scored['metrics']['response_accuracy'] == 1.0 and scored['metrics']['addressee_accuracy'] == 1.0
    assert scored['utterances'][1]['expected'] == 'bruno'


def test_follow_up_without_responder_is_scored_as_group():
    us = [utt('u1', 'gina', 1.0, 2.0, 'robots'), utt('u2', 'gina', 9.0, 10.0, {'responder_of': 'u1'})]
    scored = score_scenario(record(us, [], [decision(9.0, 10.0, 'robots')]))
    assert scored['utterances'][1]['expected'] == 'robots'
    assert scored['metrics']['missed_responses'] == 2


def test_late_or_early_speech_is_not_a_response():
    u = utt('u1', 'alice', 1.0, 3.0, 'ada')
    too_late = speech('ada', 9.5, 10.0, reply=(1.0, 3.0))
    m = score_scenario(record([u], [too_late], [decision(1, 3, 'ada')]))['metrics']
    assert m['missed_responses'] == 1


def test_unnamed_speech_is_attributed_to_the_latest_finished_utterance():
    us = [utt('u1', 'alice', 1.0, 2.0, 'bob'), utt('u2', 'bob', 2.5, 3.5, 'ada')]
    m = score_scenario(record(us, [speech('ada', 4.0, 5.0)], [decision(1, 2, 'others'), decision(2.5, 3.5, 'ada')]))['metrics']
    assert m['response_accuracy'] == 1.0 and m['spurious_responses'] == 0


def test_undetected_utterance_counts_as_wrong_addressee():
    m = score_scenario(record([utt('u1', 'alice', 1.0, 2.0, 'none')], [], []))['metrics']
    assert m['addressee_accuracy'] == 0.0 and m['response_accuracy'] == 1.0
    assert m['addressee_confusion']['others'] == {'undetected': 1}


def test_robot_overlap_total():
    acts = [speech('ada', 1.0, 3.0), speech('bruno', 2.0, 4.5), speech('ada', 4.0, 5.0)]
    assert overlap_total(record([], acts, [])) == pytest.approx(1.5)


def test_barge_in_and_backchannel():
    us = [utt('u1', 'hugo', 1.0, 2.0, 'ada'),
          utt('b1', 'hugo', 4.0, 4.5, 'ada', backchannel=True),
          utt('u2', 'hugo', 8.0, 9.0, 'ada', interrupts=True),
          utt('u3', 'hugo', 20.0, 21.0, 'ada', interrupts=True)]       # nobody speaking: not measured
    acts = [speech('ada', 2.5, 8.25, reply=(1.0, 2.0), cancelled=True),  # stopped 250 ms into u2
            speech('ada', 9.6, 11.0, reply=(8.0, 9.0)), speech('ada', 21.5, 22.0, reply=(20.0, 21.0))]
    m = score_scenario(record(us, acts, [decision(1, 2, 'ada'), decision(8, 9, 'ada'), decision(20, 21, 'ada')]))['metrics']
    assert m['yield_latency_ms']['p50'] == pytest.approx(250.0)
    assert m['yields_not_measured'] == 1 and m['false_yields'] == 0
    assert m['utterances_scored'] == 3


def test_false_yield_and_capped_yield():
    us = [utt('b1', 'hugo', 4.0, 4.5, 'ada', backchannel=True), utt('u2', 'hugo', 10.0, 11.0, 'ada', interrupts=True)]
    acts = [speech('ada', 2.0, 4.6, cancelled=True),          # stopped for the backchannel
            speech('ada', 9.0, 14.0)]                          # never stopped for the interruption
    m = score_scenario(record(us, acts, []))['metrics']
    assert m['false_yields'] == 1
    assert m['yield_latency_ms']['p50'] == 2000.0


def test_speaker_attribution_uses_best_one_to_one_mapping():
    us = [utt('u1', 'alice', 1, 2, 'bob'), utt('u2', 'bob', 3, 4, 'alice'), utt('u3', 'alice', 5, 6, 'bob'),
          utt('u4', 'bob', 7, 8, 'alice')]
    sys_utts = [SystemUtterance('ada', 'ada/1', 1, 2, 'v7'), SystemUtterance('ada', 'ada/2', 3, 4, 'v9'),
                SystemUtterance('ada', 'ada/3', 5, 6, 'v7'), SystemUtterance('ada', 'ada/4', 7, 8, 'v7')]
    m = score_scenario(record(us, [], [], sys_utts))['metrics']
    assert m['speaker_attribution_accuracy'] == 0.75


def test_a_reply_to_one_of_two_people_talking_at_once_is_scored_for_the_one_it_heard():
    # leo asks bruno while jon talks to kim; bruno's utterance spans both, but it heard leo's direction
    u4 = utt('u4', 'leo', 5.46, 7.78, 'bruno', azimuth_by_robot={'bruno': math.radians(124)})
    u5 = utt('u5', 'jon', 5.49, 7.97, 'kim', azimuth_by_robot={'bruno': math.radians(-38)})
    acts = [RobotSpeech('bruno', 'bruno-reply-1', 8.5, 10.0, in_reply_to='bruno/7', reply_to_start=5.68,
                        reply_to_end=7.62)]
    decisions = [decision(6.1, 7.6, 'bruno', robot='bruno')]
    heard = SystemUtterance('bruno', 'bruno/7', 6.1, 7.6, azimuth=math.radians(120))
    m = score_scenario(record([u4, u5], acts, decisions, [heard]))['metrics']
    assert m['response_accuracy'] == 1.0 and m['spurious_responses'] == m['missed_responses'] == 0
    # heard from jon's side, the same reply answers jon: spurious, and leo is left unanswered
    heard = SystemUtterance('bruno', 'bruno/7', 6.1, 7.6, azimuth=math.radians(-30))
    m = score_scenario(record([u4, u5], acts, decisions, [heard]))['metrics']
    assert m['spurious_responses'] == 1 and m['missed_responses'] == 1


def test_doa_error_is_median_per_robot_and_utterance():
    u1 = utt('u1', 'alice', 1, 2, 'bob', azimuth_by_robot={'ada': 0.0, 'bruno': math.pi})
    u2 = utt('u2', 'bob', 3, 4, 'alice', azimuth_by_robot={'ada': 1.0, 'bruno': -1.0})
    sys_utts = [SystemUtterance('ada', 'a1', 1, 2, azimuth=math.radians(4)),
                SystemUtterance('bruno', 'b1', 1, 2, azimuth=-math.pi + math.radians(2)),   # wraps around
                SystemUtterance('ada', 'a2', 3, 4, azimuth=1.0 + math.radians(10))]
    m = score_scenario(record([u1, u2], [], [], sys_utts))['metrics']
    assert m['doa_error_deg'] == pytest.approx(4.0, abs=1e-6)
    assert m['doa_pairs'] == 3


def test_aggregate_pools_utterances_and_the_report_format():
    a = score_scenario(record([utt('u1', 'x', 1, 2, 'ada')], [speech('ada', 2.4, 3, reply=(1, 2))], [decision(1, 2, 'ada')]))
    b = score_scenario(record([utt('u1', 'x', 1, 2, 'ada'), utt('u2', 'x', 5, 6, 'none')], [],
                              [decision(1, 2, 'ada'), decision(5, 6, 'others')]))
    agg = aggregate([a, b])
    assert agg['response_accuracy'] == pytest.approx(2 / 3, abs=1e-4)
    assert agg['addressee_accuracy'] == 1.0
    assert agg['missed_responses'] == 1
    doc = report([a, b])
    assert doc['format'] == 'voice_robot/eval@1' and len(doc['scenarios']) == 2
    assert all('_internals' not in s for s in doc['scenarios'])


def test_a_radio_heard_while_a_robot_speaks_is_not_counted_as_robot_speech():
    u = utt('u1', 'alice', 1.0, 3.0, 'ada')
    acts = [speech('ada', 3.5, 9.0, reply=(1.1, 2.9))]
    heard = [SystemUtterance('ada', 'ada/1', 1.1, 2.9, 'v1', azimuth=0.2),
             SystemUtterance('ada', 'ada/2', 4.0, 5.0, 'v2', azimuth=math.radians(-28.0)),   # the radio's bearing
             SystemUtterance('ada', 'ada/3', 6.0, 7.0, 'v3', azimuth=math.radians(90.0))]    # nothing there
    rec = record([u], acts, [decision(1.1, 2.9, 'ada')], heard)
    rec.clip_azimuths = {'ada': {'radio': math.radians(-26.6)}}
    m = score_scenario(rec)['metrics']
    assert m['clip_speech_as_human'] == 1
    assert m['robot_speech_as_human'] == 1


def test_gaze_target_accuracy_scores_settled_heads_by_kind_of_target():
    from voice_robot.eval.records import GazeSample, HeadTarget
    rec = record([utt('u1', 'alice', 1.0, 2.0, 'ada')], [], [])
    rec.humans = ['alice', 'bob']
    rec.face_humans = {'ada/f1': 'alice', 'bruno/f7': 'alice'}
    rec.head_targets = [HeadTarget('alice', 0.0, 0.0, 'ada'), HeadTarget('alice', 5.0, 5.4, 'bob'),
                        HeadTarget('alice', 9.0, 9.3, 'none'), HeadTarget('alice', 12.0, 12.2, '45.0')]
    rec.gaze = [GazeSample('ada', 1.0, 'f1', 'ada'),                 # right
                GazeSample('bruno', 1.0, 'f7', 'bruno'),             # wrong robot
                GazeSample('ada', 5.2, 'f1', 'ada'),                 # head still turning: not scored
                GazeSample('ada', 6.0, 'f1', 'person:person_3'),     # right: some person
                GazeSample('ada', 10.0, 'f1', 'ada'),                # wrong: she looks down
                GazeSample('ada', 13.0, 'f1', 'none'),               # right: a bearing is nobody
                GazeSample('ada', 13.0, 'f9', 'ada')]                # face of nobody known: not scored
    s = score_scenario(rec)
    assert s['metrics']['gaze_target_accuracy'] == pytest.approx(3 / 5)
    assert aggregate([s, score_scenario(record([utt('u1', 'alice', 1.0, 2.0, 'ada')], [], []))])[
        'gaze_target_accuracy'] == pytest.approx(3 / 5)
    assert score_scenario(record([utt('u1', 'alice', 1.0, 2.0, 'ada')], [], []))['metrics']['gaze_target_accuracy'] is None
