"""The camera source stage: frames from a device, a video file or a still image, at ``camera.fps``.

Frame sources share the small ``FrameSource`` interface and are chosen by ``seeing.camera.backend``:

* ``opencv``: ``cv2.VideoCapture`` on a device index (``0``), a device path (``/dev/video0``), a
  video file or a stream URL; a video file loops when ``loop_video`` is set;
* ``image``: one still image, published again at every tick (bench tests, demos);
* ``auto``: ``image`` for paths with an image extension, else ``opencv``.

A failed read closes the source and reopens it after a back-off (``reopen_min_s``, doubling up to
``reopen_max_s``), counted in the stage's stats; the stage never stops by itself.
"""
from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod

import cv2
import numpy as np

from voice_robot import messages as m
from voice_robot.config.robots import CameraSpec, RobotSpec
from voice_robot.pipeline import Stage
from voice_robot.seeing.config import CameraConfig

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class FrameSource(ABC):
    """Somewhere BGR frames come from."""

    @abstractmethod
    def open(self) -> None:
        """Open the source; raise OSError when it cannot be opened."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next BGR uint8 frame, or None when none could be read."""

    def close(self) -> None:
        """Release the device or file."""


class OpenCvSource(FrameSource):
    def __init__(self, device: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None, loop: bool = True):
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.loop = loop
        self._cap = None
        self.is_file = isinstance(device, str) and os.path.isfile(device)

    def open(self) -> None:
        self.close()
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise OSError(f'cannot open camera {self.device!r}')
        if not self.is_file:
            if self.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        if not ok and self.is_file and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok or frame is None or frame.size == 0:
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class StillImageSource(FrameSource):
    def __init__(self, path: str):
        self.path = path
        self._image: np.ndarray | None = None

    def open(self) -> None:
        image = cv2.imread(self.path, cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f'cannot read image {self.path!r}')
        self._image = image

    def read(self) -> np.ndarray | None:
        return None if self._image is None else self._image.copy()

    def close(self) -> None:
        self._image = None


def parse_device(device: int | str | None) -> int | str:
    """An OpenCV device index from '0'-like strings; paths and URLs unchanged."""
    if device is None:
        raise ValueError('RobotSpec.camera.device is not set: give an OpenCV index, a device path, a video or an image')
    if isinstance(device, bool):
        raise ValueError(f'camera device must be an index or a path, got {device!r}')
    if isinstance(device, int):
        return device
    text = str(device).strip()
    if not text:
        raise ValueError('camera device is an empty string')
    return int(text) if text.isdigit() else os.path.expanduser(text)


def make_frame_source(spec: CameraSpec, config: CameraConfig | None = None) -> FrameSource:
    config = config or CameraConfig()
    device = parse_device(spec.device)
    backend = config.backend
    if backend == 'auto':
        backend = 'image' if isinstance(device, str) and device.lower().endswith(IMAGE_EXTENSIONS) else 'opencv'
    if backend == 'image':
        if not isinstance(device, str):
            raise ValueError(f'backend image needs a file path, got device {device!r}')
        return StillImageSource(device)
    return OpenCvSource(device, spec.width, spec.height, spec.fps, config.loop_video)


class CameraStage(Stage):
    """Stage 'camera': publishes camera/image (ImageFrame, bgr8) every 1 / camera.fps seconds."""

    name = 'camera'
    outputs = ('camera/image',)

    def __init__(self, robot: RobotSpec, config: CameraConfig | None = None, source: FrameSource | None = None):
        super().__init__(robot.name)
        if robot.camera is None:
            raise ValueError(f'robot {robot.name} has no camera section')
        self.spec = robot.camera
        self.config = config or CameraConfig()
        self.source = source or make_frame_source(self.spec, self.config)
        self._open = False
        self._retry_at = -math.inf
        self._backoff = self.config.reopen_min_s
        self.frames = 0

    def timers(self):
        return [(1.0 / self.spec.fps, self.tick)]

    def tick(self) -> None:
        now = self.now()
        if not self._open:
            if now < self._retry_at:
                return
            try:
                self.source.open()
            except (OSError, cv2.error) as exc:
                self._fail(now, 'open failed', str(exc))
                return
            self._open = True
            self.stats['opened'] += 1
        try:
            frame = self.source.read()
        except cv2.error as exc:
            frame = None
            self.stats['read errors'] += 1
            self._logger.warning(f'camera read error: {exc}')
        if frame is None or not isinstance(frame, np.ndarray) or frame.size == 0:
            self.source.close()
            self._open = False
            self._fail(now, 'read failed', f'no frame from {self.spec.device!r}')
            return
        self._backoff = self.config.reopen_min_s
        self.frames += 1
        self.publish('camera/image', m.ImageFrame(stamp=now, robot=self.robot, image=frame, encoding='bgr8'))

    def _fail(self, now: float, reason: str, detail: str) -> None:
        self.drop(reason, f'{detail}; retrying in {self._backoff:.1f} s')
        self._retry_at = now + self._backoff
        self._backoff = min(self.config.reopen_max_s, self._backoff * 2)

    def close(self) -> None:
        self.source.close()
        self._open = False
