"""Conversions between the core's float times and ROS 2 builtin_interfaces/Time."""
import pytest

from voice_robot.nodes.convert import from_time, to_time


@pytest.mark.parametrize('t', [0.0, 3.5, 4.9999999999, 4.99999999951, 12.000000000001, 1e6 + 0.25])
def test_times_survive_the_round_trip_to_the_nanosecond(t):
    stamp = to_time(t)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert abs(from_time(stamp) - t) <= 1e-9 * max(1.0, t) + 5e-10


def test_a_time_just_below_a_whole_second_is_not_sent_a_second_early():
    # Audio chunk stamps add up chunk durations and land just below whole seconds (4.9999999999):
    # rounding the fraction alone gave (4 s, 0 ns), a chunk played a second early as far as hearing knew.
    stamp = to_time(4.9999999999)
    assert (stamp.sec, stamp.nanosec) == (5, 0)


def test_times_that_cannot_be_a_stamp_become_zero():
    for bad in (float('nan'), float('inf'), -1.0):
        assert (to_time(bad).sec, to_time(bad).nanosec) == (0, 0)
