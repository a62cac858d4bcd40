"""Small geometry helpers of the person manager: bearings from robots, points along a bearing, and
triangulation of one voice heard by several robots (``voice_robot.hearing.tracking.triangulate``,
the weighted least-squares intersection of bearing lines)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from voice_robot.config.robots import RobotSpec
from voice_robot.hearing.tracking import triangulate


def angle_diff(a: float, b: float) -> float:
    """Absolute difference of two angles, in [0, pi]."""
    return abs(math.remainder(a - b, 2 * math.pi))


def bearing_from(robot: RobotSpec, point_map) -> float:
    """Azimuth (base frame, from the array centre) of a map point, as the robot's hearing reports it."""
    return robot.bearing_to(np.asarray(point_map, dtype=float).reshape(3))


def point_along_bearing(robot: RobotSpec, azimuth: float, distance: float, height: float) -> np.ndarray:
    """The map point ``distance`` metres from the robot's array centre along a base-frame azimuth."""
    centre = robot.array_center_map()
    phi = robot.yaw + azimuth
    return np.array([centre[0] + distance * math.cos(phi), centre[1] + distance * math.sin(phi), height])


def triangulate_bearings(robots: Sequence[RobotSpec], azimuths: Sequence[float],
                         stds: Sequence[float] | None = None) -> tuple[np.ndarray, float]:
    """(x, y) where bearing lines from several robots meet, and a 1-sigma radius (m).

    Raises ValueError when the lines are nearly parallel, meet behind a robot, or there are fewer
    than two.
    """
    poses = [(*r.array_center_map()[:2], r.yaw) for r in robots]
    point, cov = triangulate(poses, list(azimuths), None if stds is None else list(stds))
    radius = math.sqrt(max(float(np.trace(cov)) / 2.0, 1e-6))
    return point, radius
