"""Use case 2's generated demo cohort: epithelium-like regions on stroma-like texture, with masks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.synth import EOSIN, EOSIN_DENSE, HEMATOXYLIN

log = logging.getLogger(__name__)


def make_cohort(root: Path, n_patients: int = 6, size: int = 160, seed: int = 0, first_id: int = 8001) -> list[Path]:
    """Generated epithelium-like images <patient>_<n>.tif and masks <patient>_<n>_mask.png.

    Epithelium: blobs of dense purple nuclei on a purple background (the mask, white); stroma: pink
    with sparse nuclei; a little white background in a corner. Deterministic for a seed.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    out = []
    for i in range(n_patients):
        pid = str(first_id + i)
        field = gaussian_filter(rng.rand(size, size), sigma=size / 12)
        mask = field > np.quantile(field, 0.62)
        img = np.empty((size, size, 3))
        img[:] = EOSIN
        img[mask] = EOSIN_DENSE
        yy, xx = np.mgrid[0:size, 0:size]
        for _ in range(int(size * size / 40)):
            cy, cx = rng.randint(0, size, 2)
            if not mask[cy, cx] and rng.rand() > 0.25:
                continue
            r = rng.uniform(1.5, 3.0)
            nuc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            img[nuc] = HEMATOXYLIN
        img[: size // 8, : size // 8] = 245  # white background (gray > 0.8)
        img += rng.normal(0, 6, img.shape)
        arr = np.clip(np.round(img), 0, 255).astype(np.uint8)
        path = root / f"{pid}_00001.tif"
        Image.fromarray(arr).save(path)
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / f"{pid}_00001_mask.png")
        out.append(path)
    log.info("generated epithelium cohort: %d images of %dx%d in %s (not real tissue)", n_patients, size, size, root)
    return out
