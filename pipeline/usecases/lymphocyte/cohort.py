"""Use case 4's generated demo cohort: lymphocyte-like blobs among other nuclei, with centre annotations."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.synth import EOSIN, HEMATOXYLIN

log = logging.getLogger(__name__)


def make_cohort(root: Path, n_images: int = 10, size: int = 60, seed: int = 0) -> list[Path]:
    """Generated images ``im<N>.tif`` with small dark round "lymphocytes" (and larger, paler nuclei
    as distractors) on stroma, and masks ``<N>m.tif`` (RGBA, alpha 255 at each lymphocyte centre)."""
    from PIL import Image

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for i in range(1, n_images + 1):
        img = np.empty((size, size, 3))
        img[:] = EOSIN + rng.normal(0, 8, 3)
        alpha = np.zeros((size, size), np.uint8)
        for _ in range(rng.randint(3, 7)):  # distractor nuclei: large, pale, oval
            cy, cx = rng.uniform(0, size, 2)
            nuc = ((yy - cy) / 5.5) ** 2 + ((xx - cx) / 3.5) ** 2 <= 1
            img[nuc] = (HEMATOXYLIN + EOSIN) / 2
        for _ in range(rng.randint(3, 8)):  # lymphocytes: small, dark, round
            cy, cx = rng.randint(4, size - 4, 2)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 3.5**2] = HEMATOXYLIN * 0.7
            alpha[cy, cx] = 255
        img += rng.normal(0, 5, img.shape)
        path = root / f"im{i}.tif"
        Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(path)
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., 3] = alpha
        Image.fromarray(rgba, mode="RGBA").save(root / f"{i}m.tif")
        out.append(path)
    log.info("generated lymphocyte cohort: %d images of %dx%d in %s (not real tissue)", n_images, size, size, root)
    return out
