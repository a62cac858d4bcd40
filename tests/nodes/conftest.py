"""Fixtures for tests that start rclpy themselves (not through a robot process)."""
import pytest


@pytest.fixture
def rclpy_ready(tmp_path, monkeypatch):
    rclpy = pytest.importorskip('rclpy')
    monkeypatch.setenv('ROS_LOG_DIR', str(tmp_path / 'ros_log'))
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()
