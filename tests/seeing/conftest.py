"""Real photos and a shared face analyzer (loading MediaPipe once per session keeps the tests fast)."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from voice_robot.seeing.config import FaceTrackerConfig
from voice_robot.seeing.face_tracker import FaceAnalyzer
from geometry_helpers import make_robot


@pytest.fixture(scope='session')
def astronaut() -> np.ndarray:
    from skimage import data
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope='session')
def group_photo() -> np.ndarray:
    """Six people around a table, shipped inside the insightface wheel (found without importing it)."""
    spec = importlib.util.find_spec('insightface')
    if spec is None or spec.origin is None:
        pytest.skip('insightface is not installed: no six-person photo')
    path = Path(spec.origin).parent / 'data' / 'images' / 't1.jpg'
    if not path.is_file():
        pytest.skip(f'{path} is missing')
    image = cv2.imread(str(path))
    if image is None:
        pytest.skip(f'cannot read {path}')
    return image


@pytest.fixture(scope='session')
def robot():
    return make_robot()


@pytest.fixture(scope='session')
def analyzer(robot):
    a = FaceAnalyzer(FaceTrackerConfig(), robot.camera)
    yield a
    a.close()
