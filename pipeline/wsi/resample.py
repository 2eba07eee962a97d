"""Slide pixels at the model's magnification, in global coordinates, so tiles join without seams (pure).

When no slide level has exactly the wanted downsample, the level below is resampled by
``factor`` (model pixels per level pixel) the way step 5 resized images: caffe.io.resize_image of
2016, i.e. skimage bilinear interpolation without anti-aliasing, which samples model pixel ``g``
at level coordinate ``u = (g + 0.5) / factor - 0.5``. Here ``u`` is computed from the slide's
global coordinates (not from a tile's), and at the slide's border the nearest pixel is repeated
(skimage's 'constant' mode would blend in zeros there), so any tile cut from the slide gets
exactly the values the whole slide resampled in one piece has. For ``factor = 0.5`` this is the
mean of each 2x2 block, as the original's 0.5 resize was.
"""

from __future__ import annotations

import numpy as np


def _axis(g0: int, g1: int, factor: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level indices (lower, upper) and upper weights of model pixels g0 .. g1-1 on an axis of n level pixels."""
    u = (np.arange(g0, g1, dtype=np.float64) + 0.5) / factor - 0.5
    u = np.clip(u, 0, n - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, (u - lo).astype(np.float32)


def source_span(g0: int, g1: int, factor: float, n: int) -> tuple[int, int]:
    """The level pixels [i0, i1) that model pixels [g0, g1) are interpolated from (axis of n level pixels)."""
    if factor == 1.0:
        return g0, g1
    lo, hi, _ = _axis(g0, g1, factor, n)
    return int(lo.min()), int(hi.max()) + 1


def resample(
    region: np.ndarray,
    origin: tuple[int, int],
    factor: float,
    box: tuple[int, int, int, int],
    level_shape: tuple[int, int],
) -> np.ndarray:
    """Model pixels ``box`` = (y0, y1, x0, x1) from ``region`` (h x w x 3 uint8, level pixels whose
    top-left is level pixel ``origin``; it must cover :func:`source_span` of the box on both axes).

    Returns (y1-y0) x (x1-x0) x 3 float32 in [0, 1] (uint8 / 255 as caffe.io.load_image).
    """
    y0, y1, x0, x1 = box
    img = region.astype(np.float32) / np.float32(255)
    if factor == 1.0:
        return img[y0 - origin[0] : y1 - origin[0], x0 - origin[1] : x1 - origin[1]]
    rlo, rhi, rw = _axis(y0, y1, factor, level_shape[0])
    clo, chi, cw = _axis(x0, x1, factor, level_shape[1])
    rlo, rhi, clo, chi = rlo - origin[0], rhi - origin[0], clo - origin[1], chi - origin[1]
    if min(rlo.min(), clo.min()) < 0 or rhi.max() >= region.shape[0] or chi.max() >= region.shape[1]:
        raise ValueError("resample: the region does not cover the box's source pixels")
    rw, cw = rw[:, None, None], cw[None, :, None]
    rows = img[rlo] * (1 - rw) + img[rhi] * rw  # (y1-y0) x w x 3
    return rows[:, clo] * (1 - cw) + rows[:, chi] * cw


def level_box(box: tuple[int, int, int, int], factor: float, level_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The level-pixel box (y0, y1, x0, x1) to read for model-pixel ``box``."""
    y0, y1, x0, x1 = box
    a, b = source_span(y0, y1, factor, level_shape[0])
    c, d = source_span(x0, x1, factor, level_shape[1])
    return a, b, c, d
