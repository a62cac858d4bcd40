"""Camera geometry: pinhole intrinsics and the camera optical frame <-> robot base frame.

Frames (REP-103): the base frame has x forward, y left, z up; the camera optical frame has z forward
(along the optical axis), x right and y down in the image. The camera sits at ``height_m`` above the
base origin looking along base +x, tilted by ``pitch_deg`` (positive tilts the optical axis up, like
an elevation; this is how the simulator reads RobotSpec.camera.pitch_deg).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# base <- optical for a level camera: optical z -> base x, optical x -> base -y, optical y -> base -z.
_OPTICAL_TO_LEVEL = np.array([[0.0, 0.0, 1.0],
                              [-1.0, 0.0, 0.0],
                              [0.0, -1.0, 0.0]])


def wrap(angle: float) -> float:
    """Angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def azimuth_elevation(vector) -> tuple[float, float]:
    """(azimuth, elevation) of a 3-D direction in a z-up frame."""
    x, y, z = (float(v) for v in vector)
    return math.atan2(y, x), math.atan2(z, math.hypot(x, y))


def unit_from_angles(azimuth: float, elevation: float) -> np.ndarray:
    c = math.cos(elevation)
    return np.array([c * math.cos(azimuth), c * math.sin(azimuth), math.sin(elevation)])


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera (no distortion) mounted on a robot base."""
    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float = 1.1
    pitch_rad: float = 0.0

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float, height_m: float = 1.1, pitch_deg: float = 0.0,
                 focal_px: float | None = None) -> 'CameraModel':
        """Square pixels, principal point at the image centre, focal length from the horizontal FOV."""
        if width <= 0 or height <= 0:
            raise ValueError(f'image size must be positive, got {width}x{height}')
        if not 0 < hfov_deg < 180:
            raise ValueError(f'hfov_deg must be in (0, 180), got {hfov_deg}')
        f = focal_px if focal_px else (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(f, f, width / 2, height / 2, height_m, math.radians(pitch_deg))

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def rotation_base_from_optical(self) -> np.ndarray:
        c, s = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        tilt_up = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])   # rotates +x towards +z
        return tilt_up @ _OPTICAL_TO_LEVEL

    @property
    def position_base(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.height_m])

    def pixel_ray_optical(self, u: float, v: float) -> np.ndarray:
        ray = np.array([(u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0])
        return ray / np.linalg.norm(ray)

    def direction_to_base(self, vector_optical) -> np.ndarray:
        return self.rotation_base_from_optical @ np.asarray(vector_optical, dtype=float)

    def point_to_base(self, point_optical) -> np.ndarray:
        return self.direction_to_base(point_optical) + self.position_base

    def pixel_ray_base(self, u: float, v: float) -> np.ndarray:
        return self.direction_to_base(self.pixel_ray_optical(u, v))
