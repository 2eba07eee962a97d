"""A generated tubule-like cohort (not real tissue): glands -- a pale lumen ringed by epithelium
with dark nuclei -- on pink stroma with scattered nuclei, in the published layout: ``<id>.bmp``
with ``<id>_anno.bmp`` (255 = tubule: lumen and its epithelial ring), and ``benign.txt`` /
``malignant.txt``. Ids follow the real ones' shape (``<case>-<block>-<n>``, and one m-name with a
space, ``m90_1 T3N2a``), so the grouping ``name(1:end-11)`` and names with spaces are exercised.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.synth import EOSIN, EOSIN_DENSE, HEMATOXYLIN

log = logging.getLogger(__name__)

LUMEN = np.array([245, 235, 240], dtype=np.float64)

#: (id, malignant) of the demo images: 6 groups (5 blocks and one m-name) of 1-2 images.
DEMO_IMAGES = (
    ("90-101-01-1", False),
    ("90-101-01-2", False),
    ("90-102-02-1", True),
    ("90-102-02-2", True),
    ("90-103-01-1", False),
    ("90-104-03-1", True),
    ("90-105-01-1", False),
    ("m90_1 T3N2a", True),
)


def draw(rng: np.random.RandomState, size: int, n_glands: int) -> tuple[np.ndarray, np.ndarray]:
    """One generated image (size x size x 3 uint8) and its tubule annotation (bool)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.empty((size, size, 3))
    img[:] = EOSIN + rng.normal(0, 6, 3)
    anno = np.zeros((size, size), bool)
    for _ in range(int(size * size / 900)):  # stromal nuclei
        cy, cx = rng.uniform(0, size, 2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(4, 9) ** 2] = HEMATOXYLIN + rng.normal(0, 10, 3)
    for _ in range(n_glands):
        r_out = rng.uniform(0.09, 0.15) * size
        cy, cx = rng.uniform(r_out + 4, size - r_out - 4, 2)
        ay, ax = rng.uniform(0.8, 1.2, 2)
        d = np.sqrt(((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2)
        gland = d <= r_out
        img[gland] = EOSIN_DENSE
        r_in = r_out * rng.uniform(0.45, 0.6)
        n_nuc = int(2 * np.pi * (r_in + r_out) / 2 / 9)
        for t in np.linspace(0, 2 * np.pi, n_nuc, endpoint=False) + rng.uniform(0, 1):
            rad = (r_in + r_out) / 2 + rng.normal(0, 1.5)
            ny, nx = cy + ay * rad * np.sin(t), cx + ax * rad * np.cos(t)
            img[(yy - ny) ** 2 + (xx - nx) ** 2 <= rng.uniform(3.5, 5.5) ** 2] = HEMATOXYLIN + rng.normal(0, 8, 3)
        img[d <= r_in] = LUMEN
        anno |= gland
    img += rng.normal(0, 5, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), anno


def make_cohort(root: Path, size: int = 480, seed: int = 0, ids=DEMO_IMAGES) -> list[Path]:
    """Write the generated images, annotations and the two lists under ``root``; returns the images."""
    from PIL import Image

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    out = []
    for name, _ in ids:
        img, anno = draw(rng, size, n_glands=rng.randint(3, 6))
        Image.fromarray(img).save(root / f"{name}.bmp")
        Image.fromarray((anno * 255).astype(np.uint8)).save(root / f"{name}_anno.bmp")
        out.append(root / f"{name}.bmp")
    (root / "benign.txt").write_text("".join(f"{n}.bmp\n" for n, m in ids if not m))
    (root / "malignant.txt").write_text("".join(f"{n}.bmp\n" for n, m in ids if m))
    log.info("generated tubule cohort: %d images of %dx%d in %s (not real tissue)", len(ids), size, size, root)
    return out
