"""Use case 2, epithelium segmentation: patches (MATLAB step 1 ported) and patient folds (step 2).

Input: <patient>_<n>.tif with <patient>_<n>_mask.png (white = epithelium), 1000x1000 at 20x.
Per image (2-epi/step1_make_patches.m, common/func_extraction_worker_w_rots.m):

- image and mask ``imresize(., .5)`` (10x apparent magnification), padded 32 px symmetric;
- background: ``im2double(rgb2gray(io)) > .8``; positive: mask and not background;
  stroma: not (positive dilated 3 times, 3x3) and not background;
  edge: mask dilated 2 times minus the mask;
- centres ``[r, c] = find(class mask)`` (column-major), those closer than 32 px to the padded border
  dropped, shuffled (seeded here; ``randperm`` was unseeded), the first ``round(max_num)`` taken:
  up to 5000 positives, edge ``npos * 1``, stroma ``npos * 0.3``;
- for a centre (r, c) (1-based) the 64x64 block rows r-32..r+31 is rotated by 0 and 90 degrees
  ('crop') and its rows/cols 16..47 (1-based) kept: 0-based image rows r0-17 .. r0+14, one pixel
  off the step-5 window r0-16 .. r0+15 (reproduced, see README);
- names ``<patient>_<image#>_<class>_<type>_<n>_<deg>.png``: image# is the 1-based index among the
  patient's images, type p (positive, class 1), e (edge, class 0), b (stroma/background, class 0).
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import atomic, folds, lists
from pipeline.matlab import (bwmorph_dilate, find_colmajor, imresize_scale, imrotate_crop, matlab_round,
                             rgb2gray)
from pipeline.patches import save_png

log = logging.getLogger(__name__)

WSIZE, HWSIZE = 32, 16
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
    """A mask as MATLAB's imread gives it: bool for a 1-bit PNG, else uint8 (first channel)."""
    from PIL import Image
    with Image.open(path) as im:
        if im.mode == "1":
            return np.asarray(im, dtype=bool)
        arr = np.asarray(im.convert("L") if im.mode not in ("L", "I;16") else im)
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


def select_centres(r: np.ndarray, c: np.ndarray, max_num: float, rng: np.random.RandomState,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """func_extraction_worker_w_rots' selection of 1-based centres: those closer than 32 px to the
    border dropped, the rest shuffled (randperm), the first round(max_num) kept."""
    h, w = shape
    remove = (r + 2 * HWSIZE > h) | (c + 2 * HWSIZE > w) | (r - 2 * HWSIZE < 1) | (c - 2 * HWSIZE < 1)
    r, c = r[~remove], c[~remove]
    idx = rng.permutation(len(r))
    n = min(len(r), matlab_round(max_num))
    return r[idx][:n], c[idx][:n]


def sample_centres(mask: np.ndarray, max_num: float, rng: np.random.RandomState,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """1-based centres of ``mask`` (column-major find) selected by :func:`select_centres`."""
    r, c = find_colmajor(mask)
    return select_centres(r, c, max_num, rng, shape)


def cut_patch(io: np.ndarray, r: int, c: int, deg: int) -> np.ndarray:
    """The 32x32 patch of centre (r, c) (1-based) rotated by ``deg``: 64x64 block, rotate, keep 16..47."""
    block = io[r - 33:r + 31, c - 33:c + 31]
    rot = imrotate_crop(block, deg)
    n = rot.shape[0] // 2
    return rot[n - HWSIZE - 1:n + HWSIZE - 1, n - HWSIZE - 1:n + HWSIZE - 1]


def patch_name(base: str, label: int, kind: str, n: int, deg: int) -> str:
    """``<patient>_<image#>_<class>_<type>_<n>_<deg>.png``."""
    return f"{base}_{label}_{kind}_{n}_{deg}.png"


@dataclass
class ImageResult:
    """Entries written for one image (negatives, then positives, as step 2 lists them)."""
    patient: str
    image: str
    negatives: list[lists.Entry] = field(default_factory=list)
    positives: list[lists.Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""


def load_pair(image: Path, p: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its mask, resize both and pad 32 symmetric. Raises BadPair naming files."""
    from pipeline.patches import read_rgb_like_matlab
    mask_path = image.with_name(image.stem + "_mask.png")
    if not mask_path.is_file():
        raise BadPair(f"{image}: no mask {mask_path.name}")
    io = read_rgb_like_matlab(image)
    mask = read_mask(mask_path)
    if io.shape[:2] != mask.shape[:2]:
        raise BadPair(f"{mask_path}: mask is {mask.shape[:2]}, image {image.name} is {io.shape[:2]}")
    if io.ndim == 2:
        io = np.repeat(io[:, :, None], 3, axis=2)
    if p.resize != 1:
        io = imresize_scale(io, p.resize)
        mask = imresize_scale(mask, p.resize)
    pad = ((WSIZE, WSIZE), (WSIZE, WSIZE))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


def _process_image(args) -> ImageResult:
    image, base, out_dir, p, seed = args
    image = Path(image)
    res = ImageResult(base.split("_")[0], image.name)
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
        r, c = sample_centres(mask_, max_num, rng, io.shape[:2])
        entries = []
        for n, (ri, ci) in enumerate(zip(r, c), start=1):
            for deg in ROTATIONS:
                name = patch_name(base, label, kind, n, deg)
                save_png(out / name, cut_patch(io, int(ri), int(ci), deg))
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


def images_by_patient(data: Path) -> dict[str, list[Path]]:
    """Patients (prefix before the first underscore of each *_mask.png) and their .tif images, in name order."""
    data = Path(data)
    masks = sorted(data.glob("*_mask.png"))
    patients = sorted({folds.patient_of(m.name) for m in masks})
    out = {}
    for pid in patients:
        out[pid] = sorted(q for q in data.glob(f"{pid}_*.tif") if q.is_file())
    orphans = sorted(q.name for q in data.glob("*.tif") if folds.patient_of(q.name) not in out)
    for o in orphans:
        log.warning("%s: image without a mask (no %s_*_mask.png); skipped", o, folds.patient_of(o))
    return out


def run_image_jobs(work: Path, config: dict, patients: list[str], worker, tasks: list, desc: str,
                   jobs: int | None = None, show_progress: bool = True) -> dict:
    """Run ``worker`` (returning an :class:`ImageResult`) over ``tasks`` on all cores and write the
    stage report ``work/patches_report.json`` last (per-patient list entries, counts, problems).

    Shared by the image use cases; a report with the same ``config`` means the stage is done.
    """
    from tqdm import tqdm
    report_path = Path(work) / "patches_report.json"
    if report_path.is_file() and json.loads(report_path.read_text()).get("config") == config:
        log.info("patches: already done (%s)", report_path)
        return json.loads(report_path.read_text())
    (Path(work) / "subs").mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as ex:
        results = list(tqdm(ex.map(worker, tasks), total=len(tasks), desc=desc, unit="image",
                            disable=not show_progress))
    per_patient: dict[str, list[lists.Entry]] = {pid: [] for pid in patients}
    problems = []
    for r in results:
        if r.problem:
            log.warning("skipped %s", r.problem)
            problems.append(r.problem)
            continue
        per_patient[r.patient] += r.negatives + r.positives     # step 2: negatives (0) then positives (1)
    report = {"config": config, "patients": list(patients),
              "images": {r.image: r.counts for r in results if not r.problem}, "problems": problems,
              "entries": {pid: [[e.name, e.label] for e in ents] for pid, ents in per_patient.items()}}
    atomic.write_text(report_path, json.dumps(report))
    return report


def run_patches(data: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None,
                show_progress: bool = True) -> dict:
    """Write every image's patches to ``work/subs`` and the per-patient lists; report in patches_report.json."""
    by_patient = images_by_patient(data)
    config = {"data": str(Path(data).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(subs), p, seed * 100003 + len(tasks)))
    return run_image_jobs(work, config, list(by_patient), _process_image, tasks, "patches (epi)", jobs, show_progress)


def entries_from_report(report: dict) -> dict[str, list[lists.Entry]]:
    """Per-patient list entries recorded by :func:`run_patches`."""
    return {pid: [lists.Entry(n, int(lab)) for n, lab in ents] for pid, ents in report["entries"].items()}
