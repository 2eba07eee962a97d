"""A generated mitosis cohort (NOT real tissue) in the original's layout, for the demo and the tests.

Frames ``<pp>_<ff>.tif`` at "40x" with ``<pp>_<ff>_pc.png`` (8-bit, 255 on a small disc at each
mitosis) and ``<pp>_<ff>_cmask.png`` (8-bit, blue ratio above 30 dilated twice:
:func:`pipeline.usecases.mitosis.sampling.blue_ratio_mask`). Pink stroma carries ordinary nuclei
(large, pale, oval, smooth) and a few mitosis-like figures (small, very dark, compact clumps of
chromatin). Patient ``10`` has no mitoses (as in the real data set, whose patient 10 the original
drops); the first patient has one frame without mitoses and without ``_pc.png`` (stage 1 skips it,
stage 2 samples negatives from it, as the original).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.synth import EOSIN, HEMATOXYLIN
from pipeline.usecases.mitosis.sampling import blue_ratio_mask

log = logging.getLogger(__name__)

PC_RADIUS = 2  #: px at 40x of the drawn ground-truth disc


def draw_frame(rng: np.random.RandomState, size: int, n_mitoses: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame (uint8 size x size x 3) and its mitosis centres ((n, 2) int row, col)."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.empty((size, size, 3))
    img[:] = EOSIN + rng.normal(0, 6, 3)
    for _ in range(rng.randint(size // 10, size // 6)):  # ordinary nuclei: large, pale, oval
        cy, cx = rng.uniform(0, size, 2)
        a, b, t = rng.uniform(6, 9), rng.uniform(4, 6), rng.uniform(0, np.pi)
        u, v = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t), -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1] = (HEMATOXYLIN + EOSIN) / 2 + rng.normal(0, 4, 3)
    centres = []
    for _ in range(n_mitoses):  # mitosis-like figures: small, very dark, irregular clumps
        cy, cx = rng.randint(12, size - 12, 2)
        for _ in range(5):
            dy, dx = rng.normal(0, 1.8, 2)
            img[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 <= rng.uniform(2, 3.2) ** 2] = HEMATOXYLIN * 0.5
        centres.append((cy, cx))
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), np.array(centres, dtype=np.int64).reshape(-1, 2)


def make_cohort(
    root: Path,
    patients: tuple[str, ...] = ("01", "02", "03", "04", "05", "06", "10"),
    frames: int = 2,
    size: int = 160,
    seed: int = 0,
) -> list[Path]:
    """Write the cohort under ``root``; returns the frames. Each frame of a patient other than 10
    has 1 or 2 mitoses, except the extra frame ``<first>_<frames + 1>`` (none, no ``_pc.png``)."""
    from PIL import Image

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for pi, pid in enumerate(patients):
        for f in range(1, frames + 1 + (pi == 0)):
            empty = pid == "10" or f == frames + 1
            img, centres = draw_frame(rng, size, 0 if empty else rng.randint(1, 3))
            path = root / f"{pid}_{f:02d}.tif"
            Image.fromarray(img).save(path)
            Image.fromarray((blue_ratio_mask(img) * 255).astype(np.uint8)).save(root / f"{path.stem}_cmask.png")
            if not empty:
                pc = np.zeros((size, size), np.uint8)
                for cy, cx in centres:
                    pc[(yy - cy) ** 2 + (xx - cx) ** 2 <= PC_RADIUS**2] = 255
                Image.fromarray(pc).save(root / f"{path.stem}_pc.png")
            out.append(path)
    log.info("generated mitosis cohort: %d frames of %dx%d in %s (not real tissue)", len(out), size, size, root)
    return out
