"""Camera frames and head pose maths: pixels to base-frame directions, PnP and the eyeball model."""
import math

import cv2
import numpy as np
import pytest

from voice_robot.seeing import mesh as lm
from voice_robot.seeing.geometry import CameraModel, azimuth_elevation
from voice_robot.seeing.head_pose import (_EYEBALL_CENTRE_MM, _FACE_CENTRE_MM, _IRIS_RADIUS_MM, MODEL_INDICES,
                                          estimate_head_pose, gaze_direction, model_points_m)
from voice_robot.seeing.images import BadImage, to_bgr
from voice_robot.seeing.mesh import FaceLandmarks


def test_pixels_to_bearing_and_elevation():
    cam = CameraModel.from_fov(640, 480, 90.0, height_m=1.2, pitch_deg=0.0)
    assert azimuth_elevation(cam.pixel_ray_base(320, 240)) == pytest.approx((0.0, 0.0))
    az, el = azimuth_elevation(cam.pixel_ray_base(640, 240))       # right edge of a 90 degree camera
    assert math.degrees(az) == pytest.approx(-45.0) and el == pytest.approx(0.0)
    az, el = azimuth_elevation(cam.pixel_ray_base(320, 0))          # top edge: above the horizon
    assert az == pytest.approx(0.0) and el > 0
    tilted = CameraModel.from_fov(640, 480, 90.0, pitch_deg=15.0)   # tilted up
    assert math.degrees(azimuth_elevation(tilted.pixel_ray_base(320, 240))[1]) == pytest.approx(15.0)
    assert cam.point_to_base([0.0, 0.0, 2.0]) == pytest.approx([2.0, 0.0, 1.2])
    with pytest.raises(ValueError):
        CameraModel.from_fov(0, 480, 90.0)


def synthetic_face(cam, rotation, translation, eye_yaw_deg=0.0):
    """Landmarks of the generic face at a pose, irises where an eye rotated by eye_yaw_deg puts them."""
    obj, scale = model_points_m()
    rvec = cv2.Rodrigues(rotation)[0]
    pts = np.zeros((478, 3))
    proj, _ = cv2.projectPoints(obj, rvec, translation, cam.matrix, np.zeros(4))
    for i, idx in enumerate(MODEL_INDICES):
        pts[idx, :2] = proj[i, 0]
    a = math.radians(eye_yaw_deg)
    for eye, iris in (('right', lm.RIGHT_IRIS), ('left', lm.LEFT_IRIS)):
        centre = (np.array(_EYEBALL_CENTRE_MM[eye]) - _FACE_CENTRE_MM) * scale
        point = centre + _IRIS_RADIUS_MM * scale * np.array([math.sin(a), 0.0, -math.cos(a)])
        p, _ = cv2.projectPoints(point[None], rvec, translation, cam.matrix, np.zeros(4))
        pts[iris, :2] = p[0, 0]
    return FaceLandmarks(pts, 1.0, has_iris=True)


@pytest.mark.parametrize('yaw_deg,pitch_deg', [(0, 0), (30, 0), (-45, 10), (20, -25)])
def test_pnp_recovers_the_head_pose(yaw_deg, pitch_deg):
    cam = CameraModel.from_fov(640, 480, 70.0)
    rot = cv2.Rodrigues(np.array([math.radians(-pitch_deg), 0, 0]))[0]
    rot = cv2.Rodrigues(np.array([0, -math.radians(yaw_deg), 0]))[0] @ rot
    t = np.array([0.2, -0.1, 1.8])
    pose = estimate_head_pose(synthetic_face(cam, rot, t), cam)
    assert pose is not None and pose.reprojection_px < 0.01
    assert np.allclose(pose.translation, t, atol=1e-3)
    assert np.allclose(pose.rotation, rot, atol=1e-3)
    facing = cam.direction_to_base(pose.facing_optical)
    yaw, pitch = azimuth_elevation(facing)
    # The model faces -z (back at the camera) at rest: azimuth pi, then turned and pitched.
    assert math.degrees(math.remainder(yaw - math.pi, 2 * math.pi)) == pytest.approx(yaw_deg, abs=0.1)
    assert math.degrees(pitch) == pytest.approx(pitch_deg, abs=0.1)


def test_eyes_turn_the_gaze_beyond_the_head():
    cam = CameraModel.from_fov(640, 480, 70.0)
    rot = cv2.Rodrigues(np.array([0, -math.radians(20), 0]))[0]
    t = np.array([0.0, 0.0, 0.4])                   # close enough for large eyes (full eye weight)
    straight = synthetic_face(cam, rot, t, eye_yaw_deg=0.0)
    pose = estimate_head_pose(straight, cam)
    gaze, weight = gaze_direction(straight, pose, cam)
    assert weight == pytest.approx(1.0)
    assert np.allclose(gaze, pose.facing_optical, atol=1e-6)      # eyes centred: gaze = head
    turned = synthetic_face(cam, rot, t, eye_yaw_deg=15.0)
    gaze, _ = gaze_direction(turned, estimate_head_pose(turned, cam), cam)
    angle = math.degrees(math.acos(float(np.clip(gaze @ pose.facing_optical, -1, 1))))
    assert angle == pytest.approx(15.0, abs=0.5)
    head_only, w0 = gaze_direction(turned, pose, cam, gain=0.0)
    assert w0 == 0.0 and np.allclose(head_only, pose.facing_optical)


def test_to_bgr_conversions():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200                                  # red in RGB
    assert to_bgr(rgb, 'rgb8')[0, 0].tolist() == [0, 0, 200]
    assert to_bgr(rgb, 'bgr8')[0, 0].tolist() == [200, 0, 0]
    assert to_bgr(np.full((20, 30), 7, np.uint8)).shape == (20, 30, 3)
    assert to_bgr(np.full((20, 30, 4), 9, np.uint8))[0, 0].tolist() == [9, 9, 9]
    assert to_bgr(np.full((20, 30), 4095, np.uint16)).max() == 255
    assert to_bgr(np.full((20, 30), True)).max() == 255
    for bad in (None, np.zeros((0, 5)), np.zeros((20, 30, 2)), np.array([[np.inf] * 20] * 20), [[1, 'a']]):
        with pytest.raises(BadImage):
            to_bgr(bad)
