"""Generated H&E-like tissue for demos, tests and benchmarks (clearly not real tissue).

Colours and a patch generator shared by the use cases' demo cohorts (each use case writes its own
layout: ``make_cohort`` in its module). Class 1 (IDC-like) patches are denser in dark purple,
nucleus-like blobs on a more purple background; class 0 patches are pink stroma with few blobs, so
a small network can learn the difference in a few hundred iterations.
"""

from __future__ import annotations

import numpy as np

EOSIN = np.array([236, 170, 200], dtype=np.float64)  # pink stroma
EOSIN_DENSE = np.array([200, 140, 195], dtype=np.float64)  # purpler, cellular background
HEMATOXYLIN = np.array([75, 45, 130], dtype=np.float64)  # nuclei


def he_patch(rng: np.random.RandomState, label: int, size: tuple[int, int] = (50, 50)) -> np.ndarray:
    """One H&E-like uint8 patch (H x W x 3); class 1 has about twice the nuclei and a slightly
    purpler background, with enough overlap between the classes that a classifier makes mistakes."""
    h, w = size
    base = EOSIN if label == 0 else (EOSIN + EOSIN_DENSE) / 2
    img = np.tile(base + rng.normal(0, 12, 3), (h, w, 1))
    yy, xx = np.mgrid[0:h, 0:w]
    n_nuclei = rng.poisson(5 if label == 0 else 10)
    for _ in range(n_nuclei):
        cy, cx = rng.uniform(-3, h + 3), rng.uniform(-3, w + 3)
        ry, rx = rng.uniform(2.0, 4.5, size=2)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        img[mask] = HEMATOXYLIN + rng.normal(0, 10, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
