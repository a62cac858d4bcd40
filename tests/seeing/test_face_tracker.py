"""The face tracker on real photos: faces found, head pose signs, ids across frames, bad input."""
import math

import cv2
import numpy as np
import pytest

from voice_robot import messages as m
from voice_robot.pipeline import InProcessBus
from voice_robot.seeing.config import SeeingConfig
from voice_robot.seeing.face_tracker import FaceTrackerStage
from voice_robot.seeing.geometry import wrap

from geometry_helpers import make_robot


def relative_yaw(face) -> float:
    """Head yaw relative to looking straight back along the line of sight (0 = facing the camera)."""
    return wrap(face.head_yaw - (face.bearing + math.pi))


def angle_between(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return math.degrees(math.acos(float(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def run_frames(stage, images, t0=0.0, dt=0.1, encoding='bgr8'):
    out = []
    stage.bind(lambda topic, msg: out.append(msg), lambda: 0.0)
    for i, img in enumerate(images):
        stage.on_image(m.ImageFrame(stamp=t0 + i * dt, robot=stage.robot, image=img, encoding=encoding))
    return out


@pytest.fixture
def stage(robot, analyzer):
    return FaceTrackerStage(robot, SeeingConfig(), analyzer=analyzer)


def test_astronaut_one_face_facing_the_camera(stage, astronaut):
    (frame,) = run_frames(stage, [astronaut])
    assert len(frame.faces) == 1
    face = frame.faces[0]
    # She is left of the image centre, slightly above it, within arm's reach of a 70 degree camera.
    assert 0 < face.bearing < math.radians(35)
    assert 0.3 < face.distance < 2.0
    assert abs(math.degrees(relative_yaw(face))) < 30
    assert abs(np.linalg.norm(face.gaze_direction) - 1) < 1e-6
    # She looks into the lens: the gaze points back at the camera (base frame, camera at 1.1 m).
    to_camera = -np.array([math.cos(face.elevation) * math.cos(face.bearing),
                           math.cos(face.elevation) * math.sin(face.bearing), math.sin(face.elevation)])
    assert angle_between(face.gaze_direction, to_camera) < 25
    assert 0.5 < face.confidence <= 1.0
    assert face.looked_at == ''
    assert 0.0 <= face.mouth_open <= 1.0


def test_group_photo_finds_at_least_five_of_six(analyzer, group_photo):
    faces = analyzer.analyze(group_photo)
    assert 5 <= len(faces) <= 6                 # six people; more would be false faces
    assert len(analyzer.analyze(np.ascontiguousarray(group_photo[:, ::-1]))) <= 6
    centres = [f.box.centre for f in faces]
    for i, a in enumerate(centres):          # no face twice
        for b in centres[i + 1:]:
            assert math.hypot(a[0] - b[0], a[1] - b[1]) > 40
    for f in faces:
        assert 0.3 < f.distance < 5.0
        assert 0.0 < f.confidence <= 1.0


def test_mirrored_image_flips_head_yaw_and_bearing(analyzer, group_photo):
    width = group_photo.shape[1]
    original = analyzer.analyze(group_photo)
    mirrored = analyzer.analyze(np.ascontiguousarray(group_photo[:, ::-1]))
    pairs = 0
    for f in original:
        cx, cy = f.box.centre
        match = min(mirrored, key=lambda g: math.hypot(width - 1 - g.box.centre[0] - cx, g.box.centre[1] - cy))
        if math.hypot(width - 1 - match.box.centre[0] - cx, match.box.centre[1] - cy) > 30:
            continue
        pairs += 1
        assert match.bearing == pytest.approx(-f.bearing, abs=math.radians(3))
        yaw, yaw_m = math.degrees(relative_yaw(f)), math.degrees(relative_yaw(match))
        if abs(yaw) > 12:          # clearly turned heads turn the other way in the mirror
            assert np.sign(yaw_m) == -np.sign(yaw), (f.box.centre, yaw, yaw_m)
            assert abs(yaw + yaw_m) < 15
    assert pairs >= 5


def test_turned_heads_in_group_photo(analyzer, group_photo):
    """The man standing at the back right looks far to his left (image left), the others less."""
    faces = analyzer.analyze(group_photo)
    standing = min(faces, key=lambda f: f.box.centre[1])       # highest face in the photo
    assert math.degrees(relative_yaw(standing)) < -35
    assert abs(math.degrees(relative_yaw(standing))) == max(abs(math.degrees(relative_yaw(f))) for f in faces)


def test_laughing_mouth_is_more_open_than_closed_mouth(analyzer, group_photo):
    faces = analyzer.analyze(group_photo)
    # The laughing man in red (centre, lower) and the woman at the far left with closed lips.
    laughing = min(faces, key=lambda f: math.hypot(f.box.centre[0] - 790, f.box.centre[1] - 415))
    closed = min(faces, key=lambda f: f.box.centre[0])
    assert laughing.mouth_open > closed.mouth_open + 0.15


def test_crop_moves_bearing_not_head_orientation(analyzer, astronaut):
    full = analyzer.analyze(astronaut)[0]
    right_part = np.ascontiguousarray(astronaut[:, 150:])            # the face is now left of centre
    shifted = analyzer.analyze(right_part)[0]
    assert shifted.bearing > full.bearing + math.radians(5)
    assert abs(math.degrees(wrap(relative_yaw(shifted) - relative_yaw(full)))) < 12


def test_rolled_camera_still_finds_the_face(analyzer, astronaut):
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    rolled = cv2.warpAffine(astronaut, rot, (w, h))
    full = analyzer.analyze(astronaut)[0]
    faces = analyzer.analyze(rolled)
    assert len(faces) == 1
    assert abs(math.degrees(wrap(relative_yaw(faces[0]) - relative_yaw(full)))) < 15


def test_ids_stable_across_shifted_frames(stage, group_photo):
    h, w = group_photo.shape[:2]
    frames = [np.ascontiguousarray(group_photo[:, 8 * k: w - 80 + 8 * k]) for k in range(8)]
    out = run_frames(stage, frames)
    first = {f.face_id: f for f in out[0].faces}
    assert len(first) >= 5
    for frame in out[1:]:
        ids = {f.face_id: f for f in frame.faces}
        assert len(set(ids) & set(first)) >= 5
        for face_id, face in ids.items():
            if face_id in first:
                # The window moves right: every face moves to the image left, i.e. bearing grows.
                assert face.bearing >= first[face_id].bearing - math.radians(0.5)
    last = {f.face_id: f for f in out[-1].faces}
    common = set(first) & set(last)
    assert all(last[k].bearing > first[k].bearing for k in common)
    # Detection is not run on every frame: faces are followed by their landmarks.
    assert stage.stats['detections'] < len(frames)


def test_lost_face_comes_back_with_new_id(stage, astronaut):
    blank = np.full_like(astronaut, 90)
    out = run_frames(stage, [astronaut] + [blank] * 15 + [astronaut] * 11, dt=0.1)
    assert len(out[0].faces) == 1
    assert all(not f.faces for f in out[1:16])
    back = [f for f in out[16:] if f.faces]
    # Found again by the next periodic detection (detect_interval_s = 1 s), then followed every frame.
    assert len(back) >= 11 - 10 * stage.config.face_tracker.detect_interval_s
    assert back[-1] is out[-1]
    assert {f.faces[0].face_id for f in back} == {back[0].faces[0].face_id} != {out[0].faces[0].face_id}


def test_face_at_border_has_lower_confidence(stage, analyzer, astronaut):
    full = analyzer.analyze(astronaut)[0]
    cx = int(full.box.centre[0])
    cut = np.ascontiguousarray(astronaut[:, cx - 8:])               # left half of the face is cut off
    out = run_frames(stage, [cut])
    assert len(out) == 1                                             # published, no crash
    for face in out[0].faces:
        assert face.confidence < full.confidence
        assert all(math.isfinite(v) for v in (face.bearing, face.distance, face.head_yaw, face.head_pitch))


def test_encodings_and_odd_shapes(stage, astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    rgb = np.ascontiguousarray(astronaut[:, :, ::-1])
    chw = np.ascontiguousarray(np.transpose(astronaut, (2, 0, 1)))
    floats = astronaut.astype(np.float32) / 255.0
    out = run_frames(stage, [gray, gray[:, :, None], chw, floats])
    assert [len(f.faces) for f in out] == [1, 1, 1, 1]
    (rgb_frame,) = run_frames(stage, [rgb], t0=10.0, encoding='rgb8')
    assert len(rgb_frame.faces) == 1


def test_garbage_is_dropped_or_empty_never_a_crash(stage):
    rng = np.random.default_rng(0)
    bad = [np.zeros((0, 0, 3), np.uint8), np.full((40, 40, 3), np.nan, np.float32), np.zeros((50, 50, 7), np.uint8),
           np.zeros((5, 5, 3), np.uint8), 'not an image', None]
    out = run_frames(stage, bad)
    assert out == []
    assert stage.stats['dropped: bad image'] == len(bad)
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    (frame,) = run_frames(stage, [noise], t0=5.0)
    assert frame.faces == []
    run_frames(stage, [noise], t0=4.0)                              # older than the last frame
    assert stage.stats['dropped: out of order'] == 1


def test_runs_on_the_bus_with_a_camera_pitched_up(analyzer, astronaut):
    level = make_robot(pitch_deg=0.0)
    tilted = make_robot(pitch_deg=10.0)
    elevations = []
    for spec in (level, tilted):
        from voice_robot.seeing.face_tracker import FaceAnalyzer
        stage = FaceTrackerStage(spec, SeeingConfig(), analyzer=FaceAnalyzer(SeeingConfig().face_tracker, spec.camera,
                                                                               detector=analyzer.detector))
        stage.analyzer.mesher = analyzer.mesher
        bus = InProcessBus(charge_compute=False)
        got = []
        bus.add(stage, '/ada')
        bus.tap('/ada/faces/observations', lambda topic, msg, t: got.append(msg))
        bus.publish('/ada/camera/image', m.ImageFrame(stamp=1.0, robot='ada', image=astronaut), at=1.0)
        bus.run_until(2.0)
        assert len(got) == 1 and len(got[0].faces) == 1
        elevations.append(got[0].faces[0].elevation)
    # The same pixel seen by a camera tilted up 10 degrees is 10 degrees higher.
    assert math.degrees(elevations[1] - elevations[0]) == pytest.approx(10.0, abs=1.0)
