"""RADHicaL step 1: patches of every image at the four levels (DLLevelTutorial/step1_levels_make_patches_3class.m).

Per image (``<pid>_<fi>``, fi counting the patient's ``<pid>_*.tif`` in name order): the image
``imresize(io, s)`` (MATLAB bicubic, antialiased, uint8) at each level; the mask
``double(imread(mask))`` (quirk Q3: see :func:`pipeline.nuclei.mask_values`); makeNegativeMask of the
base image once. Class masks per level from :mod:`.levels`; centres, rotations (0, 90), the border
rule and names from :mod:`pipeline.sampling`; no padding (unlike use case 1). Up to 500 patches
per class and level; the level-1 caps use the requested 500, not the positives found (as the
original). Patches go to ``WORK/subs_<level>/`` named ``<pid>_<fi>_<class>_<kind>_<k>_<deg>.png``
(kind p/e/b at level 1, p2/p1/n0 at levels 2-4).

The stage report (``WORK/patches_report.json``, written last) holds per level and patient the list
entries in step 2's order (class 2, class 1, class 0; at level 1 class 1 then 0), counts per image
and level, the kinds of mask files found, and every problem naming its file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, nuclei, sampling
from pipeline.matlab import imresize_scale
from pipeline.patches import read_rgb_like_matlab
from pipeline.usecases.radhical.levels import FACTORS, LEVELS, MIN_LEVEL_SIZE, base_classes, coarse_classes, level_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    max_positive: int = 500  # npositive_samples_per_image (every class cap derives from it)
    ratio_edge: float = 1.0  # ratio_nuclei_dilation
    ratio_background: float = 0.3
    rotations: tuple[int, ...] = (0, 90)
    negative_rule: str = "faithful"  # Q2: faithful (J == 0) or corrected (J/255 < .3)
    mask_values: str = "faithful"  # Q3: faithful (as read, 0/255 for 8-bit) or binary (0/1)
    patch_dim: int = 50  # makeNegativeMask's window


def _process(task: tuple) -> dict:
    """All levels of one image (worker process)."""
    image, base, work, p, seed = task
    image, work = Path(image), Path(work)
    res: dict = {
        "patient": base.split("_")[0],
        "image": image.name,
        "counts": {},
        "entries": {},
        "problems": [],
        "mask_kind": None,
    }
    try:
        io = read_rgb_like_matlab(image)
        if io.ndim != 3:
            raise ValueError(f"{image}: a grey image; RGB is expected")
        mask = nuclei.read_mask(nuclei.mask_path(image), io.shape[:2])
    except (nuclei.BadMask, OSError, ValueError) as exc:
        res["problems"].append(str(exc))
        return res
    res["mask_kind"] = mask.kind
    m = nuclei.mask_values(mask, p.mask_values)
    negative = nuclei.negative_mask(io, p.patch_dim, p.negative_rule)
    rng = np.random.RandomState(seed)
    for lv in LEVELS:
        io_l = io if lv == 1 else imresize_scale(io, FACTORS[lv])
        if min(io_l.shape[:2]) < MIN_LEVEL_SIZE:
            res["problems"].append(
                f"{image}: level {lv} (x{FACTORS[lv]:g}) is {io_l.shape[0]}x{io_l.shape[1]}, smaller than "
                f"{MIN_LEVEL_SIZE}x{MIN_LEVEL_SIZE}: no 32x32 patch centre fits (images need at least "
                f"{int(np.ceil(MIN_LEVEL_SIZE / FACTORS[lv]))} px a side for level {lv}); no level-{lv} patches"
            )
            res["counts"][str(lv)], res["entries"][str(lv)] = {}, []
            continue
        out = work / f"subs_{lv}"
        if lv == 1:
            cls = base_classes(m, negative, nuclei.edge_ring(m, 3))
            plan = [
                ("p", 1, p.max_positive),
                ("e", 0, p.max_positive * p.ratio_edge),
                ("b", 0, p.max_positive * p.ratio_background),
            ]
        else:
            cls = coarse_classes(level_mask(m, lv), negative, lv)
            plan = [("p2", 2, p.max_positive), ("p1", 1, p.max_positive), ("n0", 0, p.max_positive)]
        entries, counts = [], {}
        for kind, label, cap in plan:
            ents = sampling.extract(io_l, cls[kind], cap, label, kind, rng, out, base, p.rotations)
            counts[kind] = len(ents) // len(p.rotations)
            entries += [[e.name, e.label] for e in ents]
        res["counts"][str(lv)], res["entries"][str(lv)] = counts, entries
    return res


def run_patches(
    folder: Path,
    by_patient: dict[str, list[Path]],
    work: Path,
    p: Params = Params(),
    seed: int = 1,
    jobs: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Patches of every image at every level; the stage report (reused when its config matches)."""
    work = Path(work)
    report_path = work / "patches_report.json"
    config = {"data": str(Path(folder).resolve()), "params": json.loads(json.dumps(asdict(p))), "seed": seed}
    done = sampling.finished_report(report_path, config)
    if done is not None:
        return done
    for lv in LEVELS:
        (work / f"subs_{lv}").mkdir(parents=True, exist_ok=True)
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(work), p, seed * 100003 + len(tasks)))
    results = sampling.map_images(_process, tasks, "patches (RADHicaL, 4 levels)", jobs, show_progress)
    entries: dict[str, dict[str, list]] = {str(lv): {pid: [] for pid in by_patient} for lv in LEVELS}
    kinds: dict[str, int] = {}
    problems: list[str] = []
    for r in results:
        problems += r["problems"]
        for msg in r["problems"]:
            log.warning("%s", msg)
        if r["mask_kind"]:
            kinds[r["mask_kind"]] = kinds.get(r["mask_kind"], 0) + 1
        for lv, ents in r["entries"].items():
            entries[lv][r["patient"]] += ents
    if kinds.get("8-bit 0/255") and p.mask_values == "faithful":
        log.warning(
            "%d mask(s) are 8-bit 0/255: read as double(imread) like the original, levels 2-4 class "
            "values run to 255, so almost every partly positive pixel is class 2 and class 1 nearly "
            "vanishes (quirk Q3); --mask-values binary uses 0/1",
            kinds["8-bit 0/255"],
        )
    report = {
        "config": config,
        "patients": list(by_patient),
        "mask_kinds": kinds,
        "problems": problems,
        "images": {r["image"]: r["counts"] for r in results if r["counts"]},
        "entries": entries,
    }
    atomic.write_text(report_path, json.dumps(report))
    return report
