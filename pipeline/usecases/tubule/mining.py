"""Use case 3's hard-example sampler (select_rc_maximum_values_with_clearning_probability.m and
remove_border.m), pure but for the seeded draws.

Despite its name the function samples: while fewer than ``limit`` centres are taken and any weight
is left, it draws one pixel with probability proportional to its weight (``datasample``), records
it and zeroes the disk ``dr^2 + dc^2 <= radius^2`` around it (29 pixels for radius 3). Its
``[~, ind] = max(...)`` is unused. Before the loop ``remove_border`` keeps only rows and columns
33..N-32 (1-based), the unpadded image.

Step 1 calls it twice (step1:90-101): hard positives with weight P(not tubule) on annotated pixels
and the class's limit (2000 malignant, 1000 benign); hard negatives with weight P(tubule) off the
annotation and limit npos, the number of positive centres.
"""

from __future__ import annotations

import numpy as np

from pipeline.matlab import datasample_weighted


def remove_border(val: np.ndarray, hwsize: int = 16) -> np.ndarray:
    """remove_border.m: ``val`` with every value whose 1-based (r, c) has r + 2h > H, c + 2h > W,
    r - 2h < 1 or c - 2h < 1 set to 0 (a copy, float64)."""
    out = np.zeros(val.shape, dtype=np.float64)
    h, w = val.shape
    b = 2 * hwsize
    out[b : h - b, b : w - b] = val[b : h - b, b : w - b]
    return out


def sample_with_clearing(
    val: np.ndarray, hwsize: int, clear_radius: float, limit: int, rng: np.random.RandomState
) -> np.ndarray:
    """The sampler: (n, 2) 1-based (row, col) centres in the order drawn, n <= ``limit``."""
    v = remove_border(val, hwsize)
    h, w = v.shape
    wt = np.ascontiguousarray(v.T)  # column-major order of val(:) as rows of wt
    flat = wt.ravel()
    rad = int(np.floor(clear_radius))
    dr, dc = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    disk = dr**2 + dc**2 <= clear_radius**2
    dr, dc = dr[disk], dc[disk]
    out = []
    while len(out) < limit and np.count_nonzero(flat):
        ind = datasample_weighted(flat, rng)
        r, c = ind % h, ind // h
        out.append((r + 1, c + 1))
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        wt[cc[ok], rr[ok]] = 0
    return np.array(out, dtype=np.int64).reshape(-1, 2)
