"""`make demo` says when the host was too slow for real time, and what to do about it."""
import json

from voice_robot.eval.demo import slow_host_hint


def test_a_robot_whose_hearing_fell_behind_gets_the_slower_rate_suggested(tmp_path):
    diagnostics = tmp_path / 'diagnostics.json'
    diagnostics.write_text(json.dumps({'/ada/hearing': {'audio lag max s': '0.40'},
                                       '/bruno/hearing': {'audio lag max s': '3.48'},
                                       '/bruno/floor': {'holder': 'bruno'}}))
    hint = slow_host_hint(diagnostics, 1.0)
    assert '3.5 s behind' in hint and '--rate 0.5' in hint


def test_no_hint_when_hearing_kept_up_or_nothing_was_recorded(tmp_path):
    diagnostics = tmp_path / 'diagnostics.json'
    diagnostics.write_text(json.dumps({'/ada/hearing': {'audio lag max s': '0.30'}}))
    assert slow_host_hint(diagnostics, 1.0) == ''
    assert slow_host_hint(tmp_path / 'missing.json', 1.0) == ''
    (tmp_path / 'broken.json').write_text('{not json')
    assert slow_host_hint(tmp_path / 'broken.json', 1.0) == ''
