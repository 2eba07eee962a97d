"""RADHicaL's demo cohort (``make demo-radhical``): 25 generated patients, one 800x800 image each
(:func:`pipeline.nuclei.make_cohort`), five per fold; the images of the cascade fold's test
patients are then cropped to a :data:`TEST_SIZE` x TEST_SIZE window as dense in annotated nuclei
as the whole image (image and mask alike): the test images keep the share of empty stroma the
cascade can skip, instead of a crop inside one nest of nuclei.

Why two sizes. The demo infers with the exact engine, the original's computation (one 32x32 window
and its mirror per computed pixel, create_output_image_vector.py), whose cost follows the windows the
cascade asks for, at about 2 ms a window on 2 CPU cores: a naive 800x800 image is 640,000 windows
(over 20 minutes), a 200x200 one 40,000 (about a minute). Training keeps the 800x800 images: a
level's patches need 65 px a side at that level (650 px of the image for level 4). A cropped
image has patches at levels 1 and 2 only (levels 3 and 4 are skipped and named in the patches
report); they would only have filled fold ``fold``'s test databases, which the demo's training never
reads (its test interval is beyond its iterations). The crop keeps the training images' scale
(nuclei of 9-18 by 6-12 px, nests of 80-140 px), unlike a cohort generated at the small size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import atomic, folds, nuclei

log = logging.getLogger(__name__)

#: Generated patients (one image each): five per fold, so that the demo's one validation patient
#: (``--validation 1``) leaves four test images no threshold was chosen on.
PATIENTS = 25
#: Side of the generated images (px): large enough for level-4 training patches (650 px).
SIZE = 800
#: Side of the cascade fold's test images (px) after the crop: level 4 is 20x20, level 3 50x50,
#: level 2 100x100; the naive run is 40,000 windows an image (the whole demo: about 330,000 windows).
TEST_SIZE = 200
#: Folds of the demo (the original's five).
NFOLDS = 5


def representative_window(mask: np.ndarray, size: int, step: int | None = None) -> tuple[int, int]:
    """Top-left (row, col) of the ``size`` x ``size`` window of ``mask`` (H x W, nonzero = annotated)
    whose annotated share is closest to the whole mask's, among the windows holding an annotated
    pixel (all windows when none does), at multiples of ``step`` (default size // 4) and flush with
    the bottom and right edges; the first (row-major) on ties. ValueError when the mask is smaller
    than the window."""
    h, w = mask.shape
    if h < size or w < size:
        raise ValueError(f"a {h}x{w} mask has no {size}x{size} window")
    step = step or max(1, size // 4)
    on = np.asarray(mask) != 0
    ii = np.zeros((h + 1, w + 1), dtype=np.int64)
    ii[1:, 1:] = np.cumsum(np.cumsum(on, axis=0), axis=1)
    rows = sorted(set(range(0, h - size + 1, step)) | {h - size})
    cols = sorted(set(range(0, w - size + 1, step)) | {w - size})
    r, c = np.array(rows)[:, None], np.array(cols)[None, :]
    counts = ii[r + size, c + size] - ii[r, c + size] - ii[r + size, c] + ii[r, c]
    gap = np.abs(counts / float(size * size) - on.mean())
    if counts.any():
        gap[counts == 0] = np.inf
    i, j = np.unravel_index(int(np.argmin(gap)), gap.shape)
    return rows[i], cols[j]


def crop_image(image: Path, size: int) -> bool:
    """Crop ``image`` and its mask to the :func:`representative_window` of the mask (each file replaced
    atomically, the mask kept 1-bit); False (nothing done) when the image is not larger than ``size``."""
    from PIL import Image

    mpath = nuclei.mask_path(image)
    with Image.open(image) as im:
        rgb = np.asarray(im)
    if max(rgb.shape[:2]) <= size:
        return False
    with Image.open(mpath) as im:
        mask = np.asarray(im.convert("L")) > 0
    r, c = representative_window(mask, size)
    for path, arr, mode in (
        (image, rgb[r : r + size, c : c + size], None),
        (mpath, mask[r : r + size, c : c + size], "1"),
    ):
        with atomic.atomic_path(path) as tmp:
            out = Image.fromarray(arr.astype(np.uint8) * 255 if mode else arr)
            (out.convert(mode) if mode else out).save(tmp, format="TIFF" if path.suffix == ".tif" else "PNG")
    return True


def test_patients(patients: list[str], seed: int, fold: int, nfolds: int = NFOLDS) -> list[str]:
    """The patients of fold ``fold`` (its test patients), as the folds stage assigns them
    (:func:`pipeline.folds.assign_folds` of the sorted patient IDs with the run's seed)."""
    assignment = folds.assign_folds(sorted(patients), nfolds, seed)
    return [p for p in sorted(patients) if assignment[p] == fold]


def make_cohort(
    folder: Path, seed: int, fold: int = 1, test_size: int = TEST_SIZE, n_patients: int = PATIENTS, size: int = SIZE
) -> Path:
    """The demo cohort in ``folder`` (see the module docstring): ``n_patients`` generated ``size`` x
    ``size`` images, those of fold ``fold``'s test patients cropped to ``test_size``. Made once: an
    earlier cohort of the same count is kept, and only its images larger than ``test_size`` among
    fold ``fold``'s test patients are cropped. ValueError when the folder holds another count."""
    folder = Path(folder)
    found = len(list(folder.glob(nuclei.MASK_GLOB)))
    if found and found != n_patients:
        raise ValueError(
            f"{folder}: a generated cohort of {found} images (an earlier demo); this demo makes "
            f"{n_patients}: use a new --work folder (make: WORK=...) or remove that one"
        )
    if not found:
        nuclei.make_cohort(folder, n_patients=n_patients, size=size, seed=seed)
    by_patient = nuclei.images_by_patient(folder)
    cropped = [
        img.name
        for p in test_patients(list(by_patient), seed, fold)
        for img in by_patient[p]
        if crop_image(img, test_size)
    ]
    if cropped:
        log.info(
            "demo cohort: fold %d's test images cropped to %dx%d: %s", fold, test_size, test_size, ", ".join(cropped)
        )
    log.warning("the demo cohort in %s is GENERATED (synthetic nuclei images), not real tissue", folder)
    return folder
