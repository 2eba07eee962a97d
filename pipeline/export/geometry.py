"""Shapes of step-5 results (pure functions): polygons of a class map's regions, points, squares.

Frames. A map's pixel (r, c) covers the square [c, c+1) x [r, r+1) of its *edge frame* (QuPath's:
pixel centres at half-integers). Step 5 resized the image by ``resize`` (model pixels per source
pixel) and the scores map a map pixel's centre r back to the source's 0-based u = (r + 0.5) /
resize - 0.5 (MATLAB imresize and caffe.io.resize_image alike); in the edge frame (u + 0.5) that is
a plain scaling, edge_source = edge_map / resize. So every shape is made in the map's edge frame
and scaled by ``to_source`` = 1 / resize (for a whole slide: level-0 pixels per model pixel, the
plan's downsample), after adding the tile's offset.

Polygons trace pixel edges exactly: a region's polygon is the union of its pixels' squares (one box
per run of a row, merged by GEOS's union), so rasterising it back (a pixel is inside
when its centre is) gives the region's pixels exactly. Regions are 8-connected (MATLAB's bwlabel
default, as the nuclei grading labels them): two parts touching only at a corner are one region,
one MultiPolygon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

#: 8-connectivity of :func:`scipy.ndimage.label`.
EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class Region:
    """One connected region of a mask: its polygon (map edge frame, before any scaling), its
    pixels, the sum of a value map over them, and whether it touches the mask's border."""

    geometry: BaseGeometry
    pixels: int
    value_sum: float
    on_border: bool

    @property
    def mean_value(self) -> float:
        return self.value_sum / self.pixels if self.pixels else float("nan")


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, first column, end column) of every run of True pixels of an H x W mask, row-major."""
    m = np.pad(np.asarray(mask, dtype=np.int8), ((0, 0), (1, 1)))
    d = np.diff(m, axis=1)
    r0, c0 = np.nonzero(d == 1)
    _, c1 = np.nonzero(d == -1)
    return r0, c0, c1


def union_boxes(boxes: np.ndarray) -> BaseGeometry:
    """The union of non-overlapping boxes (edge-sharing pixel runs): Polygon or MultiPolygon with
    collinear vertices removed."""
    if len(boxes) == 1:
        g = boxes[0]
    else:
        g = shapely.union_all(boxes)  # not coverage_union: runs of adjacent rows share edges, not vertices
    return shapely.simplify(g, 0.0)


def regions(mask: np.ndarray, values: np.ndarray | None = None) -> list[Region]:
    """The 8-connected regions of an H x W boolean mask, in label order (row-major first pixel), each
    with its exact pixel-edge polygon (map edge frame), pixel count, sum of ``values`` (H x W, or
    None: 0) and whether it touches the mask's border."""
    mask = np.asarray(mask, dtype=bool)
    lab, n = ndimage.label(mask, structure=EIGHT)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    sums = np.asarray(ndimage.sum_labels(values, lab, idx), dtype=np.float64) if values is not None else np.zeros(n)
    border = np.zeros(n + 1, dtype=bool)
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        border[edge] = True
    r, c0, c1 = runs(mask)
    labels = lab[r, c0]
    boxes = shapely.box(c0, r, c1, r + 1)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], idx, side="left").tolist() + [len(order)]
    out = []
    for i in range(n):
        g = union_boxes(boxes[order[bounds[i] : bounds[i + 1]]])
        out.append(Region(g, int(counts[i]), float(sums[i]), bool(border[i + 1])))
    return out


def to_source(geom: BaseGeometry, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> BaseGeometry:
    """A shape of a map's edge frame in the source's edge frame: (x + offset_x) * factor,
    (y + offset_y) * factor (``offset`` (x, y): a tile's origin in the map; ``factor``: source pixels per
    map pixel, 1 / resize)."""
    off = np.array(offset, dtype=np.float64)
    return shapely.transform(geom, lambda xy: (xy + off) * factor)


def peak_points(peaks: np.ndarray, resize: float) -> np.ndarray:
    """(N, 2) x, y of the source's edge frame of peaks given as (N, 2) 0-based (row, col) of a map
    resized by ``resize``: the scores' u = (r + 0.5) / resize - 0.5, plus 0.5 (pixel centres)."""
    p = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    return ((p + 0.5) / resize)[:, ::-1]


def rasterise(geoms: list[BaseGeometry], shape: tuple[int, int], factor: float = 1.0) -> np.ndarray:
    """H x W bool: the pixels of a map (shapes in the source's edge frame, ``factor`` source pixels
    per map pixel) whose centres lie inside any of ``geoms``: the inverse of :func:`regions` and
    :func:`to_source`, for checks."""
    h, w = shape
    out = np.zeros((h, w), dtype=bool)
    for g in geoms:
        x0, y0, x1, y1 = (v / factor for v in g.bounds)
        r0, r1 = max(0, int(np.floor(y0 - 0.5))), min(h, int(np.ceil(y1 + 0.5)))
        c0, c1 = max(0, int(np.floor(x0 - 0.5))), min(w, int(np.ceil(x1 + 0.5)))
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        inside = shapely.contains_xy(g, (xx.ravel() + 0.5) * factor, (yy.ravel() + 0.5) * factor)
        out[r0:r1, c0:c1] |= inside.reshape(r1 - r0, c1 - c0)
    return out
