"""The barge-in bench: real hearing and floor in closed loop on rendered barge-ins, per policy."""
from voice_robot.bench import barge_in
from voice_robot.conversing.config import BargeInConfig


def test_closed_loop_trials_and_their_scores():
    policies = {'shipped': BargeInConfig(), 'stop_on_any_speech': BargeInConfig(**barge_in.POLICIES['stop_on_any_speech'])}
    trials = barge_in.run_trials(4, policies, seed=3)
    assert {t['backchannel'] for t in trials} == {True, False}
    eager = barge_in.score(trials, 'stop_on_any_speech')
    shipped = barge_in.score(trials, 'shipped')
    assert eager['interruptions'] == shipped['interruptions'] >= 1
    # Stopping on any speech stops the robot for every interruption it hears, and sooner.
    for t in trials:
        if not t['backchannel']:
            assert t['stops']['stop_on_any_speech'] is not None and t['stops']['stop_on_any_speech'] < 1.0
            assert t['stops']['shipped'] is None or t['stops']['shipped'] >= t['stops']['stop_on_any_speech'] - 0.05
    assert eager['yield_p50_ms'] <= shipped['yield_p50_ms']
    assert 0.0 <= shipped['false_stop_rate'] <= eager['false_stop_rate'] <= 1.0
