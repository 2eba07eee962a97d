"""The merger: finished tiles -> pyramidal tiled TIFFs of probability and class, and an overlay PNG.

Outputs, at the model's magnification, encoded as step 5's PNGs were
(:func:`pipeline.inference.encode_outputs`):

- ``<stem>_prob.tif``: RGB uint8, R = P(class 0), G = P(class 1), B = 0 (P(class 2) with three
  classes), round(255 p); black where nothing was computed (no tissue, the first row and column);
- ``<stem>_class.tif``: uint8, the argmax as 0/255 (two classes) or the class index;
- ``<stem>_overlay.png``: the slide at most 2048 pixels a side, tinted red by P(class 1) where
  computed, greyed where not (the tiles without tissue).

The TIFFs are tiled (256 x 256, deflate), one full-resolution directory then reduced-resolution
ones (every 2nd, 4th, ... pixel: nearest neighbour, so class maps stay class maps) down to one
tile, with the resolution tags set (OpenSlide reports their mpp); they are written strip by strip
from the tile files, never the whole slide in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pipeline import atomic
from pipeline.inference import encode_outputs
from pipeline.wsi.store import TileStore
from pipeline.wsi.tiling import Tile

log = logging.getLogger(__name__)

TIFF_TILE = 256


def gather(
    tiles: dict[tuple[int, int], Tile],
    store: TileStore,
    tile_size: int,
    rows: np.ndarray,
    cols: np.ndarray,
    n_classes: int,
) -> np.ndarray:
    """Probabilities at model pixels ``rows`` x ``cols`` (sorted global coordinates), len(rows) x
    len(cols) x n_classes float32; 0 where no tile was computed."""
    out = np.zeros((len(rows), len(cols), n_classes), dtype=np.float32)
    if not len(rows) or not len(cols):
        return out
    trow, tcol = rows // tile_size, cols // tile_size
    for r in np.unique(trow):
        ri = np.nonzero(trow == r)[0]
        for c in np.unique(tcol):
            t = tiles.get((int(r), int(c)))
            if t is None:
                continue
            ci = np.nonzero(tcol == c)[0]
            a = store.load(t)
            out[np.ix_(ri, ci)] = a[np.ix_(rows[ri] - t.y0, cols[ci] - t.x0)]
    return out


def pyramid_steps(shape: tuple[int, int], tile: int = TIFF_TILE) -> list[int]:
    """Subsampling steps of the pyramid's levels: 1, 2, 4, ... until the level fits in one tile."""
    steps = [1]
    while max(-(-shape[0] // steps[-1]), -(-shape[1] // steps[-1])) > tile:
        steps.append(steps[-1] * 2)
    return steps


def _tiles_of(strips: Iterator[np.ndarray], width: int, tile: int) -> Iterator[np.ndarray]:
    """Cut strips (<= tile rows x width [x S]) into tile x tile blocks, row-major, zero-padded at the edges."""
    for strip in strips:
        for x in range(0, width, tile):
            block = np.zeros((tile, tile) + strip.shape[2:], dtype=strip.dtype)
            part = strip[:, x : x + tile]
            block[: part.shape[0], : part.shape[1]] = part
            yield block


def write_pyramid(
    path: Path,
    shape: tuple[int, int],
    samples: int,
    strip: Callable[[np.ndarray, np.ndarray], np.ndarray],
    mpp: float | None = None,
    tile: int = TIFF_TILE,
) -> list[tuple[int, int]]:
    """Write a pyramidal tiled TIFF atomically; ``strip(rows, cols)`` returns the uint8 pixels at those
    full-resolution coordinates (len(rows) x len(cols) [x samples]). Returns the levels' (rows, columns)."""
    import tifffile

    h, w = shape
    levels = []
    res = {} if mpp is None else {"resolutionunit": "CENTIMETER"}
    with atomic.atomic_path(Path(path)) as tmp, tifffile.TiffWriter(tmp, bigtiff=h * w * samples > 2**31) as tw:
        for k, step in enumerate(pyramid_steps(shape, tile)):
            cols = np.arange(0, w, step)
            rows_all = np.arange(0, h, step)
            strips = (strip(rows_all[y : y + tile], cols) for y in range(0, len(rows_all), tile))
            lshape = (len(rows_all), len(cols)) + ((samples,) if samples > 1 else ())
            if mpp is not None:
                res["resolution"] = (1e4 / (mpp * step), 1e4 / (mpp * step))
            tw.write(
                _tiles_of(strips, len(cols), tile),
                shape=lshape,
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb" if samples == 3 else "minisblack",
                compression="zlib",
                subfiletype=1 if k else 0,
                metadata=None,
                **res,
            )
            levels.append(lshape[:2])
    return levels


def overlay(thumb: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """The thumbnail (h x w x 3 uint8) tinted red by P(class 1) of ``prob`` (h x w x classes) where any
    probability was computed, and greyed (mean of channels, lightened) where none was."""
    computed = prob.sum(axis=2) > 0
    t = thumb.astype(np.float32)
    p1 = prob[:, :, 1] if prob.shape[2] > 1 else prob[:, :, 0]
    alpha = (0.65 * p1)[:, :, None]
    red = np.array([255, 0, 0], dtype=np.float32)
    tinted = t * (1 - alpha) + red * alpha
    grey = (t.mean(axis=2, keepdims=True) * 0.5 + 127.5).repeat(3, axis=2)
    return np.floor(np.where(computed[:, :, None], tinted, grey) + 0.5).astype(np.uint8)


def encode_strip(prob: np.ndarray, which: str) -> np.ndarray:
    """Step 5's encoding of a probability strip: "prob" (RGB uint8) or "class" (uint8)."""
    prob_rgb, cls = encode_outputs(prob)
    return prob_rgb if which == "prob" else cls
