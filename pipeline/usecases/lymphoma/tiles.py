"""Use case 7 numerics, pure: the step-1 tile grid and rotations, the step-5 grid, Caffe's 10-crop
oversampling, the 36x36 mean brought to the 32x32 net input, and the votes.

Geometry of the original (``7-lymphoma/step1_make_patches.m``, ``step5_generate_lymphoma_output.py``):

- step 1: ``rr = 1:32:H-36`` (MATLAB, 1-based) and the tile is rows ``rr+1..rr+36``, i.e. 0-based
  rows ``rr..rr+35``: the first tile starts at 0-based row 1. Each tile is written at 0 and 90
  degrees (``imrotate``, counter-clockwise, exact), named ``<image>_sub_<n>.tif`` with n = 1, 2, ...
  in (row, column, rotation) order.
- step 5: centres ``r = 19, 51, ... < H - 18`` (``xrange(hwsize+1, H-hwsize, stride)``), patch
  ``[r-18:r+18]``: the same tiles at rotation 0, except that step 5 leaves out a last tile ending
  on the image's last row or column (when H - 36 = 1 mod 32), which step 1 cuts.
- ``Classifier.predict`` oversamples each 36x36 patch into ten 32x32 crops (corners (0,0), (0,4),
  (4,0), (4,4), centre (2,2), then their horizontal mirrors), subtracts the 32x32 mean from each,
  and averages the ten softmax outputs. ``argmax`` picks the first maximum (ties go to CLL, then FL).
"""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

#: Class names in label order (the original's ``classes={'CLL','FL','MCL'}``; label = index).
CLASSES = ("CLL", "FL", "MCL")
TILE = 36  # step 1 tile size (Caffe crops 32 from it)
STEP = 32  # tile grid step (step 1) and stride (step 5)
CROP = 32  # the net's input
#: Crop offsets (row, column) of caffe.io.oversample for a 36x36 image and 32x32 crops: the four
#: corners in the order h in (0, 4), w in (0, 4), then the centre (36/2 - 32/2 = 2).
CROP_OFFSETS = ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2))
#: Ways step 5's 32x32 mean can come from the 3x36x36 training mean (see :func:`mean_for_net`).
MEAN_MODES = ("skimage2015", "edge_cval", "modern", "center_crop")
DEFAULT_MEAN_MODE = "skimage2015"


def step1_starts(n: int, tile: int = TILE, step: int = STEP) -> list[int]:
    """0-based first rows (or columns) of step 1's tiles along an axis of ``n`` pixels:
    MATLAB ``rr = 1:step:n-tile`` and tile rows ``rr+1..rr+tile`` (1-based) = 0-based ``rr..rr+tile-1``."""
    return list(range(1, n - tile + 1, step))


def step5_centres(n: int, tile: int = TILE, stride: int = STEP) -> list[int]:
    """Step 5's patch centres along an axis of ``n`` pixels: ``xrange(hw+1, n-hw, stride)``, hw = tile/2.
    The patch is ``[c-hw : c+hw]``, so its first row is ``c - hw`` (19 - 18 = 1, as step 1)."""
    hw = tile // 2
    return list(range(hw + 1, n - hw, stride))


def step1_tiles(img: np.ndarray, tile: int = TILE, step: int = STEP) -> Iterator[tuple[int, np.ndarray]]:
    """(n, tile) of every step-1 patch of an H x W x C image: n = 1, 2, ... in (row, column,
    rotation) order, rotation 0 then 90 degrees counter-clockwise (MATLAB ``imrotate(t, 90)``)."""
    n = 1
    for r in step1_starts(img.shape[0], tile, step):
        for c in step1_starts(img.shape[1], tile, step):
            t = img[r : r + tile, c : c + tile]
            for rot in (0, 1):
                yield n, (np.rot90(t, rot) if rot else t)
                n += 1


def tile_name(image_stem: str, n: int) -> str:
    """Step 1's patch name ``<image>_sub_<n>.tif``."""
    return f"{image_stem}_sub_{n}.tif"


def n_step1_patches(h: int, w: int) -> int:
    """Patches step 1 cuts from an H x W image (tiles x 2 rotations): 1040x1388 gives 32*43*2 = 2752."""
    return len(step1_starts(h)) * len(step1_starts(w)) * 2


def step5_patches(img: np.ndarray, tile: int = TILE, stride: int = STEP) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(centres, patches): step 5's (row, column) centres in row-major order and its N x tile x tile x C
    patches ``img[r-hw:r+hw, c-hw:c+hw]``."""
    hw = tile // 2
    centres = [
        (r, c) for r in step5_centres(img.shape[0], tile, stride) for c in step5_centres(img.shape[1], tile, stride)
    ]
    if not centres:
        return [], np.zeros((0, tile, tile, img.shape[2]), dtype=img.dtype)
    return centres, np.stack([img[r - hw : r + hw, c - hw : c + hw] for r, c in centres])


def ten_crops(patches: np.ndarray, crop: int = CROP) -> np.ndarray:
    """caffe.io.oversample of N x 36 x 36 x C patches: N*10 x 32 x 32 x C float32, per patch the five
    crops of :data:`CROP_OFFSETS` then the same five mirrored left-right."""
    patches = np.asarray(patches, dtype=np.float32)
    out = np.empty((len(patches), 10, crop, crop, patches.shape[3]), dtype=np.float32)
    for i, (r, c) in enumerate(CROP_OFFSETS):
        out[:, i] = patches[:, r : r + crop, c : c + crop]
    out[:, 5:] = out[:, :5, :, ::-1]
    return out.reshape((-1, crop, crop, patches.shape[3]))


def bilinear_plane(plane: np.ndarray, size: int, cval: float, offset: float = 0.5) -> np.ndarray:
    """An n x n plane resized to ``size`` x ``size`` by the bilinear interpolation of skimage 0.9-0.11
    (``resize`` -> ``warp`` -> ``_warp_fast``): output pixel i samples s = (i + 0.5) * n / size - ``offset``
    between floor(s) and ceil(s), a neighbour outside the plane reading ``cval`` (mode 'constant').

    ``offset`` 0.5 is that code (36 -> 32: s from 0.0625 to 34.9375, no neighbour outside the plane);
    ``offset`` 0 is USECASES_3_5_7.md's reading (s up to 35.4375: the last row and column read index 36
    with weight 0.4375, the corner 0.68359375)."""
    n = plane.shape[0]
    s = (np.arange(size) + 0.5) * n / size - offset
    lo, hi = np.floor(s).astype(int), np.ceil(s).astype(int)
    w = s - lo
    padded = np.full((n + 2, n + 2), cval, dtype=np.float64)  # index -1 and n read cval
    padded[1:-1, 1:-1] = plane
    m = np.zeros((size, n + 2))
    np.add.at(m, (np.arange(size), np.clip(lo, -1, n) + 1), 1 - w)
    np.add.at(m, (np.arange(size), np.clip(hi, -1, n) + 1), w)
    return m @ padded @ m.T


def mean_for_net(mean: np.ndarray, mode: str = DEFAULT_MEAN_MODE, crop: int = CROP) -> np.ndarray:
    """The C x 36 x 36 training mean as step 5 subtracts it from each 32x32 crop (C x 32 x 32 float32).

    pycaffe resized it with ``caffe.io.resize_image``: min-max normalised over the whole mean, skimage
    ``resize`` (bilinear, mode 'constant', cval 0 = the global minimum), de-normalised.

    - ``skimage2015`` (default): the skimage of 2014-2015 (0.9.3, 0.10.1, 0.11.3, read from their
      source), :func:`bilinear_plane` with offset 0.5: no neighbour outside the plane is read;
    - ``edge_cval``: the reading of USECASES_3_5_7.md section 3.4 (offset 0): last row and column
      0.5625 c + 0.4375 m, corner 0.3164 c + 0.6836 m (m the global minimum);
    - ``modern``: today's skimage ``resize`` as today's pycaffe calls it (anti-aliasing on when shrinking);
    - ``center_crop``: the centre 32x32 (offset 2), what training's TEST phase subtracted.
    """
    mean = np.asarray(mean, dtype=np.float64)
    n = mean.shape[1]
    if mode == "center_crop":
        o = (n - crop) // 2
        return mean[:, o : o + crop, o : o + crop].astype(np.float32)
    if mode not in MEAN_MODES:
        raise ValueError(f"mean mode {mode!r}: choose from {', '.join(MEAN_MODES)}")
    lo, hi = float(mean.min()), float(mean.max())
    if hi <= lo:
        return np.full((mean.shape[0], crop, crop), lo, dtype=np.float32)
    std = (mean - lo) / (hi - lo)
    if mode == "modern":
        from skimage.transform import resize

        out = resize(std.transpose(1, 2, 0), (crop, crop), order=1, mode="constant").transpose(2, 0, 1)
    else:
        offset = 0.5 if mode == "skimage2015" else 0.0
        out = np.stack([bilinear_plane(p, crop, 0.0, offset) for p in std])
    return (out * (hi - lo) + lo).astype(np.float32)


def first_argmax(values: np.ndarray) -> np.ndarray:
    """numpy argmax along the last axis: the first maximum (ties go to the lowest class index)."""
    return np.asarray(values).argmax(axis=-1)


def vote(tile_votes: np.ndarray, n_classes: int = len(CLASSES)) -> tuple[list[int], int]:
    """(counts per class, image label) of an image's tile votes: ``np.argmax(counts)``, ties to
    the lowest class index (CLL before FL before MCL), as the original."""
    counts = np.bincount(np.asarray(tile_votes, dtype=int), minlength=n_classes)[:n_classes]
    return [int(x) for x in counts], int(np.argmax(counts))


_SLIDE = re.compile(r"^(?P<slide>.+)_(?P<n>\d+)$")


def slide_of(image: str) -> str:
    """The slide ID of an image name: the part before its last ``_NNN`` (``CLL/sj-03-2810_003.tif``
    -> ``sj-03-2810``); the stem itself when there is none."""
    stem = image.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    m = _SLIDE.match(stem)
    return m.group("slide") if m else stem


def class_of(image: str) -> int:
    """The label of a list line as step 5 took it: its first character C, F or M -> 0, 1, 2."""
    try:
        return "CFM".index(image.strip()[:1])
    except ValueError:
        raise ValueError(f"{image!r}: the first character names no class (C, F or M)") from None


def confusion(pairs: list[tuple[int, int]], n: int = len(CLASSES)) -> list[list[int]]:
    """The original's ``conf_matrix[pred, actual]`` (rows predicted, columns true) of (pred, true) pairs."""
    m = np.zeros((n, n), dtype=int)
    for p, t in pairs:
        m[p, t] += 1
    return m.tolist()
