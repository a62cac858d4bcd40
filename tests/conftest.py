"""Test-wide settings: every test session gets its own ROS domain and log directory."""
import os
import random
import tempfile
import time
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


class RosGraph:
    """Nodes spun together by one executor in a test; torn down when the test ends, passed or failed."""

    def __init__(self, rclpy):
        self.rclpy = rclpy
        self.executor = None     # a test may set its own (e.g. multi-threaded) before adding nodes
        self.nodes = []

    def add(self, node):
        if self.executor is None:
            from rclpy.executors import SingleThreadedExecutor
            self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def probe(self, name):
        """A plain node for the test's own publishers and subscriptions."""
        return self.add(self.rclpy.create_node(name))

    def spin_until(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            self.executor.spin_once(timeout_sec=0.02)
        return predicate()

    def close(self):
        if self.executor is not None:
            self.executor.shutdown()
        # Last added first: a node that feeds others (e.g. audio capture) stops before its consumers.
        for node in reversed(self.nodes):
            stage = getattr(node, 'stage', None)
            if stage is not None:
                stage.close()
            node.destroy_node()


@pytest.fixture
def ros(tmp_path, monkeypatch):
    """rclpy on this session's private ROS domain (set above), with the test's own log directory."""
    rclpy = pytest.importorskip('rclpy')
    monkeypatch.setenv('ROS_LOG_DIR', str(tmp_path / 'ros_log'))
    rclpy.init()
    graph = RosGraph(rclpy)
    try:
        yield graph
    finally:
        try:
            graph.close()
        finally:
            rclpy.shutdown()
