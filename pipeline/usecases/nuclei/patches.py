"""Use case 1's step 1: nucleus and non-nucleus regions (makeNegativeMask), patch sampling per image."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import nuclei, sampling
from pipeline.patches import read_rgb_like_matlab

log = logging.getLogger(__name__)


ROTATIONS = (0, 90)


PAD = 32


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    max_positive: int = 2500
    ratio_edge: float = 1.0
    ratio_background: float = 0.3
    edge_dilation: int = 3
    patch_dim: int = 50
    negative_rule: str = "faithful"


def class_masks(io: np.ndarray, mask: np.ndarray, p: Params = Params()) -> dict[str, np.ndarray]:
    """Positive, edge and background masks of a padded image and its padded mask."""
    return {
        "positive": mask != 0,
        "edge": nuclei.edge_ring(mask, p.edge_dilation),
        "background": nuclei.negative_mask(io, p.patch_dim, p.negative_rule),
    }


def load_pair(image: Path) -> tuple[np.ndarray, np.ndarray]:
    """Image (uint8 RGB) and mask, both padded 32 px symmetric; errors name the file."""
    io = read_rgb_like_matlab(image)
    if io.ndim != 3:
        raise ValueError(f"{image}: a grey image; RGB is expected")
    mask = nuclei.read_mask(nuclei.mask_path(image), io.shape[:2]).values
    pad = ((PAD, PAD), (PAD, PAD))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


def _process_image(args) -> sampling.ImageResult:
    image, base, out_dir, p, seed = args
    image = Path(image)
    res = sampling.ImageResult(base.split("_")[0], image.name)
    try:
        io, mask = load_pair(image)
    except (nuclei.BadMask, OSError, ValueError) as exc:
        res.problem = str(exc)
        return res
    masks = class_masks(io, mask, p)
    rng = np.random.RandomState(seed)
    res.positives = sampling.extract(io, masks["positive"], p.max_positive, 1, "p", rng, out_dir, base, ROTATIONS)
    npos = len(res.positives) // len(ROTATIONS)
    edge = sampling.extract(io, masks["edge"], npos * p.ratio_edge, 0, "e", rng, out_dir, base, ROTATIONS)
    back = sampling.extract(io, masks["background"], npos * p.ratio_background, 0, "b", rng, out_dir, base, ROTATIONS)
    res.negatives = edge + back
    res.counts = {"p": npos, "e": len(edge) // len(ROTATIONS), "b": len(back) // len(ROTATIONS)}
    if npos == 0:
        log.warning("%s: no positive centres (empty mask?)", image)
    return res


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Every image's patches into ``work/subs``; report (with per-patient entries) in patches_report.json."""
    by_patient = nuclei.images_by_patient(folder)
    if not by_patient:
        raise FileNotFoundError(f"{folder}: no *_mask.png files (expected {nuclei.LAYOUT})")
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(subs), p, seed * 100003 + len(tasks)))
    return sampling.run_image_jobs(
        work, config, list(by_patient), _process_image, tasks, "patches (nuclei)", jobs, show_progress
    )
