"""Fixtures of the hearing tests: models are loaded once per session (they are the slow part)."""
import pytest

from voice_robot.hearing.config import HearingConfig


@pytest.fixture(scope='session')
def hearing_models():
    """The default backends (silero, resemblyzer, bundled Whisper tiny.en) with ada/bruno enrolled."""
    from voice_robot.hearing import scenes
    from voice_robot.hearing.stage import HearingModels
    robots = [scenes.make_robot(name='ada', voice='espeak:en+m3'),
              scenes.make_robot(name='bruno', voice='espeak:en-us+m5', position=(4.5, 2.5), yaw_deg=180)]
    return HearingModels.load(HearingConfig(), robots)


@pytest.fixture(scope='session')
def embedder(hearing_models):
    return hearing_models.embedder


@pytest.fixture(scope='session')
def recognizer(hearing_models):
    return hearing_models.recognizer
