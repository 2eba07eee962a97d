"""Patch files: the IDC centre crop, and PNG encoding/decoding of 32x32 patches as MATLAB read them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline.imageio import imread_matlab

PATCH = 32  #: network input size (wsize)


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
        raise IndexError(
            f"crop rows {r0 + 1}..{r0 + size}, cols {c0 + 1}..{c0 + size} (1-based) "
            f"exceed a {img.shape[0]}x{img.shape[1]} image"
        )
    return img[r0 : r0 + size, c0 : c0 + size]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(arr: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of an 8-bit H x W (grey) or H x W x 3 (RGB) array: IHDR, one IDAT, IEND.

    Rows use filter type 0. Written by hand because Pillow's per-call overhead (about 150 us for a
    32x32 patch) dominated patch extraction; Pillow decodes the result to the same pixels (tested).
    """
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    if a.ndim == 2:
        color = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"encode_png: expected H x W or H x W x 3, got {a.shape}")
    h, w = a.shape[:2]
    rows = a.reshape(h, -1)
    raw = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level))
        + _chunk(b"IEND", b"")
    )


def save_png(path: Path, arr: np.ndarray, compress_level: int = 1) -> None:
    """Write a patch PNG straight to its name.

    Patch folders are made complete at stage level: a stage that did not finish (no report written)
    rewrites every patch on its rerun, so a file cut short by a crash never survives a finished stage.
    """
    with open(path, "wb") as fh:
        fh.write(encode_png(arr, compress_level))


def read_rgb_like_matlab(path: Path) -> np.ndarray:
    """MATLAB's ``imread`` of an 8-bit image (:func:`pipeline.imageio.imread_matlab`).

    H x W x 3 for colour (alpha dropped), H x W for grey, and H x W palette *indices* for an
    indexed PNG (MATLAB returns ``[X, map]``; the original used X, so such a patch is not 32x32x3
    and the IDC step skips it). Raises ValueError for samples that are not 8-bit.
    """
    arr = imread_matlab(path)
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8 bits per channel, got {arr.dtype}")
    return arr
