"""The camera stage reading still images, video files and missing devices, on the in-process bus."""
import cv2
import numpy as np
import pytest

from voice_robot.pipeline import InProcessBus
from voice_robot.seeing.camera import CameraStage, OpenCvSource, StillImageSource, make_frame_source, parse_device
from voice_robot.seeing.config import CameraConfig

from geometry_helpers import make_robot


def run_camera(stage, seconds):
    bus = InProcessBus(charge_compute=False)
    frames = []
    bus.add(stage, '/ada')
    bus.tap('/ada/camera/image', lambda topic, msg, t: frames.append((t, msg)))
    bus.run_until(seconds)
    return frames


def test_still_image_is_published_at_fps(tmp_path, astronaut):
    path = tmp_path / 'astronaut.png'
    cv2.imwrite(str(path), astronaut)
    robot = make_robot(device=str(path))
    stage = CameraStage(robot)
    assert isinstance(stage.source, StillImageSource)
    frames = run_camera(stage, 1.0)
    assert 9 <= len(frames) <= 11                       # 10 fps for one second
    stamps = [msg.stamp for _, msg in frames]
    assert stamps == sorted(stamps)
    first = frames[0][1]
    assert first.encoding == 'bgr8' and first.robot == 'ada'
    assert np.array_equal(first.image, astronaut)


def test_video_file_loops(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip('OpenCV cannot write MJPG video here')
    for k in range(5):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    stage = CameraStage(make_robot(device=str(path)))
    assert isinstance(stage.source, OpenCvSource)
    frames = run_camera(stage, 1.55)
    assert len(frames) >= 14                            # three times through a five-frame clip
    levels = [int(msg.image.mean()) for _, msg in frames]
    assert max(levels) > 100 and min(levels) < 30       # brightness ramps and starts again
    assert stage.stats.get('dropped: read failed', 0) == 0


def test_missing_device_backs_off_and_recovers(tmp_path, astronaut):
    path = tmp_path / 'later.png'
    stage = CameraStage(make_robot(device=str(path)), CameraConfig(reopen_min_s=0.5, reopen_max_s=2.0))
    bus = InProcessBus(charge_compute=False)
    frames = []
    bus.add(stage, '/ada')
    bus.tap('/ada/camera/image', lambda topic, msg, t: frames.append(msg))
    bus.run_until(6.0)
    failures = stage.stats['dropped: open failed']
    # Retries at 0.1, 0.6, 1.6, 3.6, 5.6 ... (back-off 0.5, 1, 2, 2): a handful, not 60.
    assert 3 <= failures <= 7
    assert frames == []
    cv2.imwrite(str(path), astronaut)
    bus.run_until(9.0)
    assert len(frames) >= 5
    assert stage.stats['opened'] == 1


def test_device_parsing_and_clear_errors():
    assert parse_device(0) == 0
    assert parse_device('2') == 2
    assert parse_device('/dev/video0') == '/dev/video0'
    with pytest.raises(ValueError, match='device'):
        parse_device(None)
    with pytest.raises(ValueError):
        parse_device('  ')
    with pytest.raises(ValueError, match='no camera'):
        CameraStage(make_robot(camera=False))
    robot = make_robot(device=3)
    assert isinstance(make_frame_source(robot.camera), OpenCvSource)
    with pytest.raises(ValueError, match='file path'):
        make_frame_source(robot.camera, CameraConfig(backend='image'))


def test_device_index_that_does_not_exist_is_counted_not_fatal():
    stage = CameraStage(make_robot(device=57))
    frames = run_camera(stage, 1.0)
    assert frames == []
    assert stage.stats['dropped: open failed'] >= 1
