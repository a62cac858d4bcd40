"""`make demo` says when the host was too slow for real time, and what to do about it."""
import json

from voice_robot.config.deployment import SystemConfig
from voice_robot.eval.demo import SLOWEST_RATE, choose_rate, measure_decode_s, slow_host_hint


def test_a_robot_whose_hearing_fell_behind_gets_the_slower_rate_suggested(tmp_path):
    diagnostics = tmp_path / 'diagnostics.json'
    diagnostics.write_text(json.dumps({'/ada/hearing': {'audio lag max s': '0.40'},
                                       '/bruno/hearing': {'audio lag max s': '3.48'},
                                       '/bruno/floor': {'holder': 'bruno'}}))
    hint = slow_host_hint(diagnostics, 1.0)
    assert '3.5 s behind' in hint and '`voice-robot demo --rate 0.5`' in hint
    # `voice-robot eval --ros` says the same after each scenario, with its own command.
    assert '`voice-robot eval --ros --rate 0.25`' in slow_host_hint(diagnostics, 0.5, 'voice-robot eval --ros')


def test_no_hint_when_hearing_kept_up_or_nothing_was_recorded(tmp_path):
    diagnostics = tmp_path / 'diagnostics.json'
    diagnostics.write_text(json.dumps({'/ada/hearing': {'audio lag max s': '0.30'}}))
    assert slow_host_hint(diagnostics, 1.0) == ''
    assert slow_host_hint(tmp_path / 'missing.json', 1.0) == ''
    (tmp_path / 'broken.json').write_text('{not json')
    assert slow_host_hint(tmp_path / 'broken.json', 1.0) == ''


def test_the_demo_slows_the_room_down_only_on_a_host_too_slow_for_real_time():
    # Hosts of the kind that ran the two-robot demo in real time on 2 cores decode in 0.17-0.19 s.
    assert choose_rate(0.18, robots=2, cores=2) == 1.0
    # The AMD host that fell 2-5 s behind at 1x decodes in 0.34-0.55 s: half speed kept up there.
    assert choose_rate(0.38, robots=2, cores=2) == 0.5
    assert choose_rate(0.28, robots=2, cores=2) == 0.5            # that host on a quick moment
    assert choose_rate(0.55, robots=2, cores=2) == 0.5
    assert choose_rate(0.5, robots=3, cores=2) == 0.25           # more robots on the same cores
    assert choose_rate(0.38, robots=2, cores=8) == 1.0            # more cores
    assert choose_rate(5.0, robots=4, cores=1) == SLOWEST_RATE    # never slower than that
    assert choose_rate(0.0, robots=2, cores=2) == 1.0             # an API recogniser: no local decode


def test_the_decode_is_measured_with_the_configured_recogniser():
    system = SystemConfig()
    decode_s = measure_decode_s(system)
    assert 0.0 < decode_s < 10.0
    system.hearing.asr.backend = 'none'
    assert measure_decode_s(system) == 0.0
