"""Fixtures of the simulator tests (helpers live in sim_helpers.py: conftest modules are not importable)."""
import pytest

from sim_helpers import robot_voice_samples


@pytest.fixture(scope='session')
def robot_voice():
    """A robot's reply, synthesised with the project's TTS."""
    return robot_voice_samples()
