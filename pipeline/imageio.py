"""Image reading and writing with the semantics the original scripts relied on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import atomic


class BadImage(ValueError):
    """An input image that cannot be read or has the wrong form; the message names the file."""


def load_image(path: Path, color: bool = True) -> np.ndarray:
    """caffe.io.load_image without its removed scikit-image keyword.

    Returns float32 in [0, 1], H x W x 3 (RGB) when ``color``: grey images are repeated to three
    channels and an alpha channel is dropped; H x W x 1 when not ``color`` and the image is grey.
    Integer images are scaled by their dtype's maximum (skimage.img_as_float).
    """
    import skimage
    import skimage.io
    try:
        raw = skimage.io.imread(str(path))
    except Exception as exc:
        raise BadImage(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})") from exc
    img = skimage.img_as_float(raw).astype(np.float32)
    if not color and img.ndim == 3:
        img = skimage.color.rgb2gray(img[:, :, :3]).astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


def write_png(path: Path, arr: np.ndarray, atomic_write: bool = True) -> None:
    """Write a uint8 H x W or H x W x 3 array as PNG (atomically unless told otherwise)."""
    img = Image.fromarray(np.ascontiguousarray(arr))
    if not atomic_write:
        img.save(path, format="PNG")
        return
    with atomic.atomic_path(Path(path)) as tmp:
        img.save(tmp, format="PNG")
