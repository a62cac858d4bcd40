"""The barge-in bench: hearing on rendered barge-ins, replayed into the real floor per policy."""
from voice_robot import messages as m
from voice_robot.bench import barge_in
from voice_robot.conversing.config import BargeInConfig
from voice_robot.hearing import scenes


def trial(partials, backchannel=False):
    robot = scenes.make_robot(4, 0.04, (2.0, 2.0), 0.0)
    return {'robot': robot, 'backchannel': backchannel, 'voice': 'flite:slt', 'person_start': 3.0,
            'person_end': 3.8, 'robot_start': 1.0, 'robot_end': 6.0,
            'utterances': [(3.0 + heard + 0.05, m.Utterance('ada/9', robot.name, 3.0, 3.0 + heard, transcript=text,
                                                            backchannel_probability=bc, is_final=final))
                           for heard, bc, text, final in partials]}


def test_replay_times_the_floors_stop_and_scores_both_kinds():
    wait = trial([(0.05, 0.0, '', False), (0.2, 0.5, '', False), (0.35, 0.3, 'Wait, stop.', False)])
    mmhmm = trial([(0.05, 0.0, '', False), (0.2, 0.9, '', False), (0.45, 0.95, 'Mm-hmm.', True)], backchannel=True)
    assert abs(barge_in.replay(wait, BargeInConfig()) - 0.40) < 0.03      # on the words, at 0.35 s + 0.05 s
    assert barge_in.replay(mmhmm, BargeInConfig()) is None
    eager = BargeInConfig(**barge_in.POLICIES['stop_on_any_speech'])
    assert barge_in.replay(mmhmm, eager) is not None
    row = barge_in.score([wait, mmhmm], BargeInConfig())
    assert row['false_stop_rate'] == 0.0 and row['interruptions'] == 1 and 380 <= row['yield_p50_ms'] <= 430
    assert barge_in.score([wait, mmhmm], eager)['false_stop_rate'] == 1.0


def test_trials_are_heard_through_a_real_hearing_stage():
    trials = barge_in.hear_trials(2, seed=3)
    assert trials and all(t['robot_end'] - t['person_start'] >= barge_in.ROBOT_TALKS_ON_S - 0.05 for t in trials)
    assert any(t['utterances'] for t in trials)        # the person was heard over the robot's voice
    assert {t['backchannel'] for t in trials} <= {True, False}
