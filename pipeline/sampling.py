"""Patch sampling from whole images, shared by the image use cases (common/func_extraction_worker_w_rots.m).

A use case turns each image into class masks; this module picks centres from them, cuts the
rotated 32x32 patches, names them, and runs the images in parallel into one stage report.

- :func:`select_centres`: centres closer than 32 px to the border dropped, the rest shuffled
  (``randperm``, seeded here; the original was unseeded), the first ``round(max_num)`` kept;
- :func:`cut_patch`: for a centre (r, c) (1-based) the 64x64 block rows r-32..r+31 is rotated
  ('crop') and its rows/cols 16..47 (1-based) kept: 0-based image rows r0-17 .. r0+14, one pixel
  off the step-5 window r0-16 .. r0+15 (reproduced, see README);
- :func:`patch_name`: ``<patient>_<image#>_<class>_<type>_<n>_<deg>.png``.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline import atomic, lists
from pipeline.matlab import find_colmajor, imrotate_crop, matlab_round
from pipeline.patches import save_png

log = logging.getLogger(__name__)

WSIZE, HWSIZE = 32, 16


def select_centres(
    r: np.ndarray, c: np.ndarray, max_num: float, rng: np.random.RandomState, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """func_extraction_worker_w_rots' selection of 1-based centres: those closer than 32 px to the
    border dropped, the rest shuffled (randperm), the first round(max_num) kept."""
    h, w = shape
    remove = (r + 2 * HWSIZE > h) | (c + 2 * HWSIZE > w) | (r - 2 * HWSIZE < 1) | (c - 2 * HWSIZE < 1)
    r, c = r[~remove], c[~remove]
    idx = rng.permutation(len(r))
    n = min(len(r), matlab_round(max_num))
    return r[idx][:n], c[idx][:n]


def sample_centres(
    mask: np.ndarray, max_num: float, rng: np.random.RandomState, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """1-based centres of ``mask`` (column-major find) selected by :func:`select_centres`."""
    r, c = find_colmajor(mask)
    return select_centres(r, c, max_num, rng, shape)


def cut_patch(io: np.ndarray, r: int, c: int, deg: int) -> np.ndarray:
    """The 32x32 patch of centre (r, c) (1-based) rotated by ``deg``: 64x64 block, rotate, keep 16..47."""
    block = io[r - 33 : r + 31, c - 33 : c + 31]
    rot = imrotate_crop(block, deg)
    n = rot.shape[0] // 2
    return rot[n - HWSIZE - 1 : n + HWSIZE - 1, n - HWSIZE - 1 : n + HWSIZE - 1]


def patch_name(base: str, label: int, kind: str, n: int, deg: int) -> str:
    """``<patient>_<image#>_<class>_<type>_<n>_<deg>.png``."""
    return f"{base}_{label}_{kind}_{n}_{deg}.png"


def extract(
    io: np.ndarray,
    mask: np.ndarray,
    max_num: float,
    label: int,
    kind: str,
    rng: np.random.RandomState,
    out_dir: Path,
    base: str,
    rotations: tuple[int, ...] = (0, 90),
) -> list[lists.Entry]:
    """func_extraction_worker_w_rots on a class mask: centres selected (:func:`sample_centres`),
    each centre's rotated patches written as PNG into ``out_dir``; list entries in the order step 2
    writes them (centre by centre, rotations in order)."""
    r, c = sample_centres(mask, max_num, rng, io.shape[:2])
    entries = []
    for n, (ri, ci) in enumerate(zip(r, c), start=1):
        for deg in rotations:
            name = patch_name(base, label, kind, n, deg)
            save_png(Path(out_dir) / name, cut_patch(io, int(ri), int(ci), deg))
            entries.append(lists.Entry(name, label))
    return entries


@dataclass
class ImageResult:
    """Entries written for one image (negatives, then positives, as step 2 lists them)."""

    patient: str
    image: str
    negatives: list[lists.Entry] = field(default_factory=list)
    positives: list[lists.Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""


def run_image_jobs(
    work: Path,
    config: dict,
    patients: list[str],
    worker: Callable[[tuple], ImageResult],
    tasks: list,
    desc: str,
    jobs: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Run ``worker`` (returning an :class:`ImageResult`) over ``tasks`` on all cores and write the
    stage report ``work/patches_report.json`` last (per-patient list entries, counts, problems).

    ``config`` is recorded in the report. Whether the stage must run at all is decided by its
    recipe (:func:`pipeline.recipes.stage`, called by the runner); this function always writes.
    """
    report_path = Path(work) / "patches_report.json"
    (Path(work) / "subs").mkdir(parents=True, exist_ok=True)
    results = map_images(worker, tasks, desc, jobs, show_progress)
    per_patient: dict[str, list[lists.Entry]] = {pid: [] for pid in patients}
    problems = []
    for r in results:
        if r.problem:
            log.warning("skipped %s", r.problem)
            problems.append(r.problem)
            continue
        per_patient[r.patient] += r.negatives + r.positives  # step 2: negatives (0) then positives (1)
    report = {
        "config": config,
        "patients": list(patients),
        "images": {r.image: r.counts for r in results if not r.problem},
        "problems": problems,
        "entries": {pid: [[e.name, e.label] for e in ents] for pid, ents in per_patient.items()},
    }
    atomic.write_text(report_path, json.dumps(report))
    return report


def finished_report(report_path: Path, config: dict) -> dict | None:
    """The stage report at ``report_path`` when it was written with ``config`` (the stage is done), else None.
    RADHicaL's patches stage uses it to reuse a finished report inside its recipe stage."""
    if Path(report_path).is_file():
        report = json.loads(Path(report_path).read_text())
        if report.get("config") == config:
            log.info("patches: already done (%s)", report_path)
            return report
    return None


def map_images(
    worker: Callable[[tuple], object], tasks: list, desc: str, jobs: int | None = None, show_progress: bool = True
) -> list:
    """``worker`` over ``tasks`` in worker processes (all cores unless ``jobs``), with a progress bar."""
    from tqdm import tqdm

    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as ex:
        return list(tqdm(ex.map(worker, tasks), total=len(tasks), desc=desc, unit="image", disable=not show_progress))


def entries_from_report(report: dict) -> dict[str, list[lists.Entry]]:
    """Per-patient list entries recorded by :func:`run_image_jobs`."""
    return {pid: [lists.Entry(n, int(lab)) for n, lab in ents] for pid, ents in report["entries"].items()}
