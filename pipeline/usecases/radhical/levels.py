"""RADHicaL's levels and their patch classes (pure functions).

DLLevelTutorial/step1_levels_make_patches_3class.m: four levels of the same image, resize factors
1, 0.5, 0.25, 0.1 (40x, 20x, 10x, 4x); inference divides by 1, 2, 4, 10 (nuclei_level.pbs).

- Level 1 (two classes): positives ``find(mask)`` (class 1, "p"); the edge ring (mask dilated
  three times minus the mask, class 0, "e"); background ``makeNegativeMask(io, 50) & ~edge``
  (class 0, "b").
- Levels 2-4 (three classes), f = 1/s: the mask is correlated with ``ones(f, f) / f^2``
  (imfilter: zero padding, 'same'), shrunk by ``imresize(., s, 'bilinear')`` (antialiased), and
  rounded with ``roundn(., -2)``. Class 2 ("p2", all underlying 40x pixels positive): value > .99;
  class 1 ("p1", mixed, "needs more computation"): 0 < value < .99; class 0 ("n0", none
  positive): ``imresize(makeNegativeMask(io_base, 50), s, 'nearest')`` and value == 0.

Quirks kept (README, RADHicaL): a value of exactly .99 is in no class, and after ``roundn`` "> .99"
means ">= .995" (Q4); the antialiased bilinear shrink after the box filter is not the exact
fraction the paper defines (Q4); with 8-bit masks (0/255, Q3) the values run to 255, so "> .99"
takes almost every partly positive pixel as class 2 and class 1 keeps only values below .99/255 of
coverage.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.matlab import imfilter, imresize_scale, roundn
from pipeline.sampling import HWSIZE

#: Resize factor of each level (1-based level index), as levels_redux.
FACTORS = {1: 1.0, 2: 0.5, 3: 0.25, 4: 0.1}
#: Divisor step 5 applies at each level (create_output_image_vector.py's ``resize`` argument).
DIVISORS = {1: 1, 2: 2, 3: 4, 4: 10}
LEVELS = (1, 2, 3, 4)
#: Classes of the level nets (ip2 outputs): every level's net has three (level 1 trains 0/1 only: Q10).
N_CLASSES = 3
#: Smallest level size (rows or columns) with a valid 32x32 centre: r - 32 >= 1 and r + 32 <= rows.
MIN_LEVEL_SIZE = 4 * HWSIZE + 1


def level_size(n: int, level: int) -> int:
    """Rows (or columns) of a level image for a base of ``n``: MATLAB imresize's ceil(s * n)."""
    return int(math.ceil(FACTORS[level] * n))


def level_mask(mask: np.ndarray, level: int) -> np.ndarray:
    """The box-filtered, shrunk and rounded mask of levels 2-4 (float64, ceil(s * size)).

    imfilter(mask, ones(f,f) / f^2) with f = 1/s, then imresize(., s, 'bilinear'), then roundn(., -2).
    """
    if level == 1:
        raise ValueError("level 1 uses the mask itself")
    s = FACTORS[level]
    f = int(round(1 / s))
    box = imfilter(np.asarray(mask, dtype=np.float64), np.ones((f, f)) * (1.0 / (f * f)))
    return roundn(imresize_scale(box, s, method="bilinear"), -2)


def coarse_classes(values: np.ndarray, negative_base: np.ndarray, level: int) -> dict[str, np.ndarray]:
    """Class masks of levels 2-4 from :func:`level_mask`'s values and the base image's
    makeNegativeMask (resized here with 'nearest'): {"p2": class 2, "p1": class 1, "n0": class 0}."""
    neg = imresize_scale(np.asarray(negative_base, dtype=bool), FACTORS[level], method="nearest")
    if neg.shape != values.shape:
        raise ValueError(f"level {level}: negative mask {neg.shape} and mask {values.shape} differ")
    return {"p2": values > 0.99, "p1": (values < 0.99) & (values > 0), "n0": neg & (values == 0)}


def base_classes(mask: np.ndarray, negative: np.ndarray, edge: np.ndarray) -> dict[str, np.ndarray]:
    """Class masks of level 1: {"p": find(mask), "e": edge ring, "b": makeNegativeMask & ~edge}."""
    return {"p": np.asarray(mask) != 0, "e": edge, "b": negative & ~edge}
