"""Tissue masks of a low-resolution slide image, and which tiles they select (pure).

Methods (``--tissue``):

- ``otsu``: tissue where the MATLAB ``rgb2gray`` grey level is below Otsu's threshold of the
  image (skimage.filters.threshold_otsu), as whole-slide toolkits (TIAToolbox's OtsuTissueMasker)
  do; an image of one grey level has no tissue.
- ``grey``: the original's background rule (use case 2, step 1: ``rgb2gray(io) > .8`` is
  background), tissue where the grey level in [0, 1] is at most ``threshold`` (0.8).
- ``none``: every pixel is tissue (every tile is computed).
"""

from __future__ import annotations

import numpy as np

from pipeline.matlab import rgb2gray

METHODS = ("otsu", "grey", "none")
#: The original's white-background grey level (use case 2, step1_make_patches.m).
GREY_THRESHOLD = 0.8


def grey_level(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray of an H x W x 3 uint8 image, as float64 in [0, 1]."""
    return rgb2gray(rgb).astype(np.float64) / 255.0


def tissue_mask(rgb: np.ndarray, method: str = "otsu", threshold: float = GREY_THRESHOLD) -> np.ndarray:
    """H x W bool: True where ``rgb`` (H x W x 3 uint8) shows tissue by ``method`` (see the module)."""
    if method == "none":
        return np.ones(rgb.shape[:2], dtype=bool)
    grey = grey_level(rgb)
    if method == "grey":
        return grey <= threshold
    if method == "otsu":
        if grey.max() - grey.min() < 1e-9:
            return np.zeros(grey.shape, dtype=bool)
        from skimage.filters import threshold_otsu

        return grey < threshold_otsu(grey)
    raise ValueError(f"unknown tissue method {method!r}; choose from {', '.join(METHODS)}")


def tissue_fraction(mask: np.ndarray, box: tuple[int, int, int, int], scale: float) -> float:
    """Share of tissue pixels of ``mask`` under model box (y0, y1, x0, x1); ``scale``: mask pixels per
    model pixel. Every mask pixel the box touches counts (the box is widened to whole mask pixels)."""
    y0, y1, x0, x1 = box
    r0, c0 = int(np.floor(y0 * scale)), int(np.floor(x0 * scale))
    r1 = max(r0 + 1, int(np.ceil(y1 * scale - 1e-9)))
    c1 = max(c0 + 1, int(np.ceil(x1 * scale - 1e-9)))
    sub = mask[min(r0, mask.shape[0] - 1) : r1, min(c0, mask.shape[1] - 1) : c1]
    return float(sub.mean()) if sub.size else 0.0


def block_mean(rgb: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k x k block of an H x W x 3 uint8 image (partial blocks at the edge averaged
    over what they hold), rounded to uint8: ceil(H/k) x ceil(W/k) x 3."""
    if k <= 1:
        return rgb
    h, w = rgb.shape[:2]
    ph, pw = -h % k, -w % k
    x = np.pad(rgb.astype(np.float64), ((0, ph), (0, pw), (0, 0)))
    n = np.pad(np.ones((h, w)), ((0, ph), (0, pw)))
    s = x.reshape(x.shape[0] // k, k, x.shape[1] // k, k, 3).sum(axis=(1, 3))
    c = n.reshape(n.shape[0] // k, k, n.shape[1] // k, k).sum(axis=(1, 3))
    return np.floor(s / c[:, :, None] + 0.5).astype(np.uint8)
