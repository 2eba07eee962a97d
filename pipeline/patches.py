"""Shared patch geometry and parallel patch writing (pure functions where possible)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

PATCH = 32          #: network input size (wsize)
HALF = PATCH // 2   #: hwsize


def center_crop_matlab(img: np.ndarray, size: int = PATCH) -> np.ndarray:
    """The IDC crop: MATLAB rows/cols floor(n/2)-hw .. floor(n/2)+hw-1 (1-based).

    In 0-based Python: ``[n//2 - hw - 1 : n//2 + hw - 1]``, i.e. [8:40] for a 50x50 patch. MATLAB
    raises an index error (and the original skipped the whole source file) when the window leaves
    the image; so does this function (IndexError).
    """
    hw = size // 2
    r2, c2 = img.shape[0] // 2, img.shape[1] // 2
    r0, c0 = r2 - hw - 1, c2 - hw - 1
    if r0 < 0 or c0 < 0 or r0 + size > img.shape[0] or c0 + size > img.shape[1]:
        raise IndexError(f"crop rows {r0 + 1}..{r0 + size}, cols {c0 + 1}..{c0 + size} (1-based) "
                         f"exceed a {img.shape[0]}x{img.shape[1]} image")
    return img[r0:r0 + size, c0:c0 + size]


def save_png(path: Path, arr: np.ndarray, compress_level: int = 1) -> None:
    """Write a patch PNG via a temporary name and rename (cheap enough per patch)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG", compress_level=compress_level)
    os.replace(tmp, path)


def read_rgb_like_matlab(path: Path) -> np.ndarray:
    """imread of an 8-bit PNG: H x W x 3 for colour (alpha dropped, palette expanded), H x W for grey."""
    with Image.open(path) as im:
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("LA",):
            im = im.convert("L")
        im.load()
        arr = np.asarray(im)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        raise ValueError(f"expected 8 bits per channel, got {arr.dtype}")
    return arr
