"""Generated cohorts for demos and tests (clearly not real tissue).

The IDC cohort mimics the dataset's layout and naming: ROOT/PATIENT/{0,1}/
<patient>_idx5_x<X>_y<Y>_class<C>.png, 50x50 RGB, H&E-like colours. Class 1 (IDC-like) patches are
denser in dark purple, nucleus-like blobs on a more purple background; class 0 patches are
pink stroma with few blobs, so a small network can learn the difference in a few hundred
iterations.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import lists

log = logging.getLogger(__name__)

EOSIN = np.array([236, 170, 200], dtype=np.float64)       # pink stroma
EOSIN_DENSE = np.array([200, 140, 195], dtype=np.float64)  # purpler, cellular background
HEMATOXYLIN = np.array([75, 45, 130], dtype=np.float64)   # nuclei


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


def make_idc_cohort(root: Path, n_patients: int = 12, per_class: tuple[int, int] = (60, 30),
                    seed: int = 0, first_id: int = 90001,
                    split: tuple[int, int, int] = (7, 2, 3)) -> dict[str, list[str]]:
    """Write a generated IDC-like cohort under ``root`` and its cases_{train,val,test}.txt.

    Returns the split {case: [patient ids]}. Deterministic for a given seed.
    """
    root = Path(root)
    rng = np.random.RandomState(seed)
    ids = [str(first_id + i) for i in range(n_patients)]
    for pid in ids:
        for label in (0, 1):
            d = root / pid / str(label)
            d.mkdir(parents=True, exist_ok=True)
            for j in range(per_class[label]):
                x, y = 1 + 50 * (j % 20), 1 + 50 * (j // 20) + 1000 * label
                patch = he_patch(rng, label)
                Image.fromarray(patch).save(d / f"{pid}_idx5_x{x}_y{y}_class{label}.png")
    n_train, n_val, _ = split
    out = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}
    for case, pids in out.items():
        lists.write_names(root / f"cases_{case}.txt", pids)
    log.info("generated IDC cohort: %d patients x %s patches in %s (not real tissue)", n_patients, per_class, root)
    return out


def make_epi_cohort(root: Path, n_patients: int = 6, size: int = 160, seed: int = 0,
                    first_id: int = 8001) -> list[Path]:
    """Generated epithelium-like images <patient>_<n>.tif and masks <patient>_<n>_mask.png.

    Epithelium: blobs of dense purple nuclei on a purple background (the mask, white); stroma: pink
    with sparse nuclei; a little white background in a corner. Deterministic for a seed.
    """
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
        img[: size // 8, : size // 8] = 245          # white background (gray > 0.8)
        img += rng.normal(0, 6, img.shape)
        arr = np.clip(np.round(img), 0, 255).astype(np.uint8)
        path = root / f"{pid}_00001.tif"
        Image.fromarray(arr).save(path)
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / f"{pid}_00001_mask.png")
        out.append(path)
    log.info("generated epithelium cohort: %d images of %dx%d in %s (not real tissue)", n_patients, size, size, root)
    return out


def make_lymphocyte_cohort(root: Path, n_images: int = 10, size: int = 60, seed: int = 0) -> list[Path]:
    """Generated images ``im<N>.tif`` with small dark round "lymphocytes" (and larger, paler nuclei
    as distractors) on stroma, and masks ``<N>m.tif`` (RGBA, alpha 255 at each lymphocyte centre)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for i in range(1, n_images + 1):
        img = np.empty((size, size, 3))
        img[:] = EOSIN + rng.normal(0, 8, 3)
        alpha = np.zeros((size, size), np.uint8)
        for _ in range(rng.randint(3, 7)):                       # distractor nuclei: large, pale, oval
            cy, cx = rng.uniform(0, size, 2)
            nuc = ((yy - cy) / 5.5) ** 2 + ((xx - cx) / 3.5) ** 2 <= 1
            img[nuc] = (HEMATOXYLIN + EOSIN) / 2
        for _ in range(rng.randint(3, 8)):                       # lymphocytes: small, dark, round
            cy, cx = rng.randint(4, size - 4, 2)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 3.5 ** 2] = HEMATOXYLIN * 0.7
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
