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
    img = _as_float32(raw)
    if not color and img.ndim == 3:
        img = skimage.color.rgb2gray(img[:, :, :3]).astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


def _as_float32(raw: np.ndarray) -> np.ndarray:
    """``skimage.img_as_float(raw).astype(np.float32)`` without the float64 copy: 8- and 16-bit images
    through a table of img_as_float's own values (bit-identical), others as before."""
    import skimage

    if raw.dtype in (np.uint8, np.uint16):
        table = skimage.img_as_float(np.arange(np.iinfo(raw.dtype).max + 1, dtype=raw.dtype)).astype(np.float32)
        out = np.empty(raw.shape, np.float32)
        flat, dest = raw.reshape(-1), out.reshape(-1)
        step = 1 << 20  # indexing makes a temporary of 8-byte indices: a million values at a time
        for i in range(0, flat.size, step):
            dest[i : i + step] = table[flat[i : i + step]]
        return out
    return skimage.img_as_float(raw).astype(np.float32)


def imread_matlab(path: Path) -> np.ndarray:
    """The first output of MATLAB's ``imread``: the stored samples, never a converted image.

    - indexed (palette) images: the palette indices (H x W uint8), not the colours -- MATLAB
      returns ``[X, map]`` and the original scripts used ``X``;
    - 1-bit grey images: logical (bool);
    - grey: H x W in the stored class (uint8, uint16); a grey+alpha image gives the grey plane;
    - RGB: H x W x 3; an alpha channel is not part of it (MATLAB returns alpha separately).

    Raises :class:`BadImage` naming the file when it cannot be read.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "1":
                return np.asarray(im, dtype=bool)
            if mode in ("P", "PA"):
                arr = np.asarray(im.convert("P") if mode == "PA" else im)
                return np.ascontiguousarray(arr[..., 0] if arr.ndim == 3 else arr, dtype=np.uint8)
            if mode in ("LA", "La"):
                return np.asarray(im.getchannel("L"))
            if mode in ("RGBA", "RGBa", "RGBX"):
                return np.asarray(im.convert("RGB"))
            if mode == "I;16B":
                return np.asarray(im).astype(np.uint16)
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise BadImage(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})") from exc


def write_png(path: Path, arr: np.ndarray, atomic_write: bool = True) -> None:
    """Write a uint8 H x W or H x W x 3 array as PNG (atomically unless told otherwise)."""
    img = Image.fromarray(np.ascontiguousarray(arr))
    if not atomic_write:
        img.save(path, format="PNG")
        return
    with atomic.atomic_path(Path(path)) as tmp:
        img.save(tmp, format="PNG")
