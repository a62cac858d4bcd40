"""Test-wide settings: every test session gets its own ROS domain and log directory."""
import os
import random
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'

# Isolate DDS traffic from other runs on this machine (CI, developers, parallel sessions).
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(120, 200)))
os.environ.setdefault('ROS_LOG_DIR', tempfile.mkdtemp(prefix='voice_robot_ros_log_'))
os.environ.setdefault('RCUTILS_LOGGING_USE_STDOUT', '0')


@pytest.fixture(scope='session')
def shared_scenarios() -> Path:
    """../shared/scenarios when present (developer machines, CI); tests using it skip elsewhere."""
    path = SHARED / 'scenarios'
    if not path.is_dir():
        pytest.skip('../shared/scenarios is not available in this checkout')
    return path


@pytest.fixture(scope='session')
def repo() -> Path:
    return REPO
