"""Turning whatever a camera or a caller hands us into a clean BGR uint8 image, or a clear error."""
from __future__ import annotations

import numpy as np

MIN_SIDE_PX = 16


class BadImage(ValueError):
    """The image cannot be used (empty, wrong shape or type, not finite)."""


def to_bgr(image, encoding: str = 'bgr8') -> np.ndarray:
    """A contiguous (H, W, 3) uint8 BGR copy of ``image``.

    Accepts mono (H, W) or (H, W, 1), RGB/BGR (H, W, 3), RGBA/BGRA (H, W, 4) and channel-first
    (C, H, W) arrays; bool, integer and float pixel types (floats in [0, 1] or [0, 255]).
    ``encoding`` says whether three or four channels are RGB ('rgb8', 'rgba8') or BGR (anything else).
    Raises BadImage for anything else.
    """
    if image is None:
        raise BadImage('no image')
    try:
        img = np.asarray(image)
    except Exception as exc:   # objects numpy cannot turn into an array
        raise BadImage(f'not an array: {exc!r}') from None
    if img.dtype == object or img.size == 0:
        raise BadImage(f'empty or non-numeric image (shape {img.shape}, dtype {img.dtype})')
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and img.shape[2] not in (1, 3, 4):
        img = np.transpose(img, (1, 2, 0))          # channel-first
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise BadImage(f'expected (H, W), (H, W, 3) or (H, W, 4), got shape {img.shape}')
    if min(img.shape[:2]) < MIN_SIDE_PX:
        raise BadImage(f'image too small: {img.shape[1]}x{img.shape[0]}')
    img = _to_uint8(img)
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    rgb_order = encoding.lower().startswith('rgb')
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if rgb_order:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if np.issubdtype(img.dtype, np.floating):
        if not np.all(np.isfinite(img)):
            raise BadImage('image has NaN or infinite pixels')
        top = float(img.max()) if img.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
        return np.clip(img * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer):
        if img.dtype.itemsize > 1 and int(img.max()) > 255:
            bits = 8 * img.dtype.itemsize
            shift = max(0, int(np.ceil(np.log2(int(img.max()) + 1))) - 8) if bits > 8 else 0
            return np.clip(img.astype(np.int64) >> shift, 0, 255).astype(np.uint8)
        return np.clip(img, 0, 255).astype(np.uint8)
    raise BadImage(f'unsupported pixel type {img.dtype}')
