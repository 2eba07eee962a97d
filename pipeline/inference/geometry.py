"""Window geometry of step 5 (pure functions).

The original (common/step5_create_output_images_kfold.py) pads the image 16 px symmetric and
classifies, for padded rows and columns 17 .. size-17 (1-based), the 32x32 window
``image[r-16:r+16, c-16:c+16]``: the first row and column of the image are never computed; with a
stride, rows and columns step by it.
"""

from __future__ import annotations

import numpy as np

HW = 16  #: half window (hwsize)

#: FLOP of one 32x32 window forward (convolutions and inner products: 2 x 12.35 M multiply-adds,
#: plus pooling, ReLU and bias), the figure the benchmark's GFLOP/s are counted with.
WINDOW_FLOP = 24.9e6


def computed_coords(n: int, stride: int = 1, all_pixels: bool = False) -> np.ndarray:
    """Image coordinates (0-based, unpadded) the original computes along an axis of length n.

    The original's padded range(hwsize+1, n+2*hwsize-hwsize, stride) is 1 .. n-1 here.
    """
    return np.arange(0 if all_pixels else 1, n, stride)


def window_count(h: int, w: int, stride: int = 1, all_pixels: bool = False) -> int:
    """Number of windows the original classifies for an h x w image."""
    return len(computed_coords(h, stride, all_pixels)) * len(computed_coords(w, stride, all_pixels))


def pad(img: np.ndarray) -> np.ndarray:
    """Symmetric 16-pixel padding (np.lib.pad(..., 'symmetric')) of an H x W x C image."""
    return np.pad(img, ((HW, HW), (HW, HW), (0, 0)), mode="symmetric")


def windows(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """32x32 windows (len(rows)*len(cols) x 32 x 32 x C views) centred as the original: for image
    pixel (r, c) the padded rows r .. r+31 and columns c .. c+31 (image rows r-16 .. r+15)."""
    view = np.lib.stride_tricks.sliding_window_view(padded, (2 * HW, 2 * HW), axis=(0, 1))
    sel = view[rows][:, cols]  # R x C x ch x 32 x 32
    return sel.reshape(-1, padded.shape[2], 2 * HW, 2 * HW).transpose(0, 2, 3, 1)


def mask_coords(mask: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row-major (rows, cols) of the True pixels of an H x W mask (the order of numpy's
    ``nonzero``, in which the original cascade batched its windows). ValueError on another shape."""
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"pixel mask is {mask.shape}, the image {tuple(shape)}")
    return np.nonzero(mask.astype(bool))


def windows_at(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The windows of scattered pixels (rows[i], cols[i]): N x 32 x 32 x C (copies), centred as
    :func:`windows`."""
    view = np.lib.stride_tricks.sliding_window_view(padded, (2 * HW, 2 * HW), axis=(0, 1))
    return view[rows, cols].transpose(0, 2, 3, 1)


def fill_strided(prob: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``--all-pixels`` with a stride: each pixel takes the value of the computed pixel at or
    before it on both axes (``rows``, ``cols``: the computed coordinates), H x W x C."""
    h, w = prob.shape[:2]
    ri = np.clip(np.searchsorted(rows, np.arange(h), side="right") - 1, 0, len(rows) - 1)
    ci = np.clip(np.searchsorted(cols, np.arange(w), side="right") - 1, 0, len(cols) - 1)
    return prob[rows[ri]][:, cols[ci]]
