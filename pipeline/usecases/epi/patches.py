"""Use case 2's step 1 (step1_make_patches.m): masks, the positive, edge and stroma regions, patch sampling per image."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import folds, lists, sampling
from pipeline.imageio import imread_matlab
from pipeline.matlab import bwmorph_dilate, imresize_scale, rgb2gray
from pipeline.patches import read_rgb_like_matlab, save_png

log = logging.getLogger(__name__)


ROTATIONS = (0, 90)


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    max_positive: int = 5000
    ratio_edge: float = 1.0
    ratio_background: float = 0.3
    edge_dilation: int = 2
    stroma_dilation: int = 3
    resize: float = 0.5
    gray_threshold: float = 0.8


class BadPair(ValueError):
    """An image without a usable mask; the message names the files."""


def read_mask(path: Path) -> np.ndarray:
    """A mask as MATLAB's ``imread`` gives it (:func:`pipeline.imageio.imread_matlab`): bool for a
    1-bit PNG, palette indices for an indexed PNG, else the stored grey values (first channel of a
    colour mask). Non-zero counts as epithelium downstream (MATLAB's ``&`` and ``bwmorph``)."""
    arr = imread_matlab(path)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr


def class_masks(io: np.ndarray, mask: np.ndarray, p: Params = Params()) -> dict[str, np.ndarray]:
    """Background, positive, stroma and edge masks of a padded image and its (padded) mask."""
    m = mask.astype(bool) if mask.dtype != bool else mask
    gray = rgb2gray(io)
    iob = (gray.astype(np.float64) / (255.0 if gray.dtype == np.uint8 else 1.0)) > p.gray_threshold
    iot = m & ~iob
    ios = ~bwmorph_dilate(iot, p.stroma_dilation) & ~iob
    edge = bwmorph_dilate(m, p.edge_dilation) & ~m
    return {"background": iob, "positive": iot, "stroma": ios, "edge": edge}


def mask_path(image: Path) -> Path:
    """``<patient>_<n>.tif`` -> ``<patient>_<n>_mask.png`` beside it."""
    return image.with_name(image.stem + "_mask.png")


def load_pair(image: Path, p: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its mask, resize both and pad 32 symmetric. Raises BadPair naming files."""
    mpath = mask_path(image)
    if not mpath.is_file():
        raise BadPair(f"{image}: no mask {mpath.name}")
    io = read_rgb_like_matlab(image)
    mask = read_mask(mpath)
    if io.shape[:2] != mask.shape[:2]:
        raise BadPair(f"{mpath}: mask is {mask.shape[:2]}, image {image.name} is {io.shape[:2]}")
    if io.ndim == 2:
        io = np.repeat(io[:, :, None], 3, axis=2)
    if p.resize != 1:
        io = imresize_scale(io, p.resize)
        mask = imresize_scale(mask, p.resize)
    pad = ((sampling.WSIZE, sampling.WSIZE), (sampling.WSIZE, sampling.WSIZE))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


def _process_image(args) -> sampling.ImageResult:
    image, base, out_dir, p, seed = args
    image = Path(image)
    res = sampling.ImageResult(base.split("_")[0], image.name)
    try:
        io, mask = load_pair(image, p)
    except (BadPair, OSError, ValueError) as exc:
        res.problem = str(exc)
        return res
    masks = class_masks(io, mask, p)
    if not masks["positive"].any():
        log.warning("%s: empty mask (no positive pixels)", image)
    rng = np.random.RandomState(seed)
    out = Path(out_dir)

    def extract(mask_, max_num, label, kind) -> list[lists.Entry]:
        r, c = sampling.sample_centres(mask_, max_num, rng, io.shape[:2])
        entries = []
        for n, (ri, ci) in enumerate(zip(r, c), start=1):
            for deg in ROTATIONS:
                name = sampling.patch_name(base, label, kind, n, deg)
                save_png(out / name, sampling.cut_patch(io, int(ri), int(ci), deg))
                entries.append(lists.Entry(name, label))
        return entries

    res.positives = extract(masks["positive"], p.max_positive, 1, "p")
    npos = len(res.positives) // len(ROTATIONS)
    edge = extract(masks["edge"], npos * p.ratio_edge, 0, "e")
    stroma = extract(masks["stroma"], npos * p.ratio_background, 0, "b")
    res.negatives = edge + stroma
    res.counts = {"p": npos, "e": len(edge) // 2, "b": len(stroma) // 2}
    if npos < p.max_positive:
        log.info("%s: %d positive centres available (asked %d): took what exists", image.name, npos, p.max_positive)
    return res


def images_by_patient(folder: Path) -> dict[str, list[Path]]:
    """Patients (prefix before the first underscore of each *_mask.png) and their .tif images, in name order."""
    folder = Path(folder)
    masks = sorted(folder.glob("*_mask.png"))
    patients = sorted({folds.patient_of(m.name) for m in masks})
    out = {}
    for pid in patients:
        out[pid] = sorted(q for q in folder.glob(f"{pid}_*.tif") if q.is_file())
    orphans = sorted(q.name for q in folder.glob("*.tif") if folds.patient_of(q.name) not in out)
    for o in orphans:
        log.warning("%s: image without a mask (no %s_*_mask.png); skipped", o, folds.patient_of(o))
    return out


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Write every image's patches to ``work/subs`` and the per-patient lists; report in patches_report.json."""
    by_patient = images_by_patient(folder)
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(subs), p, seed * 100003 + len(tasks)))
    return sampling.run_image_jobs(
        work, config, list(by_patient), _process_image, tasks, "patches (epi)", jobs, show_progress
    )
