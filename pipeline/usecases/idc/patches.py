"""Use case 6, invasive ductal carcinoma: patches and lists (MATLAB step 1, ported).

Input: ROOT/PATIENT/{0,1}/<patient>_idx5_x<X>_y<Y>_class<C>.png (50x50, a few smaller). Patients
come from cases_{train,val,test}.txt (84/29/49). For each file and each rotation r of its class
(class 0: [0 90]; class 1: [0 90], or [0 45 90] for the "more rotations" variant) the patch is
``imrotate(io, r, 'crop')`` and then either the centre crop (rows/cols floor(n/2)-16 .. +15,
1-based, of the patch's own size) or ``imresize(., [32 32])``. It is written as the source name with
".png" replaced by "<k>.png" (k = 1-based rotation index). Results that are not 32x32x3 are skipped
and reported; a file whose crop leaves the image (MATLAB index error) is skipped entirely.
Lists: "<name>\\t<class>" per output patch, and the parent list "<source name>\\t<class>" per
source file, in patient order of the cases file, class 0 then 1, files in name order.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import artefacts, atomic, lists
from pipeline.matlab import imresize, imrotate_crop
from pipeline.patches import PATCH, center_crop_matlab, read_rgb_like_matlab, save_png
from pipeline.usecases.idc.dataset import CASES, load_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One published patch variant."""

    name: str
    method: str  # "crop" or "resize"
    rotations: tuple[tuple[int, ...], tuple[int, ...]]  # per class 0, 1
    released: str  # name of the released model / mean ("w32_noresize", ...)


VARIANTS: dict[str, Variant] = {
    "crop": Variant("crop", "crop", ((0, 90), (0, 90)), "w32_noresize"),
    "resize": Variant("resize", "resize", ((0, 90), (0, 90)), "w32"),
    "crop-morerot": Variant("crop-morerot", "crop", ((0, 90), (0, 45, 90)), "w32_noresize_morerot"),
}


def output_name(source_name: str, k: int) -> str:
    """MATLAB ``strrep(fname, '.png', sprintf('%d.png', k))``."""
    return source_name.replace(".png", f"{k}.png")


def make_patches(img: np.ndarray, variant: Variant, label: int) -> list[tuple[int, np.ndarray | None, str]]:
    """Patches of one source image: (k, patch or None, reason) per rotation, k 1-based.

    Raises IndexError when the crop leaves the image (the original then skipped the whole file).
    """
    out = []
    for k, rot in enumerate(variant.rotations[label], start=1):
        ior = imrotate_crop(img, rot)
        sub = center_crop_matlab(ior) if variant.method == "crop" else imresize(ior, (PATCH, PATCH))
        if sub.size != PATCH * PATCH * 3:
            out.append((k, None, f"result has shape {sub.shape}, not 32x32x3"))
        else:
            out.append((k, sub, ""))
    return out


@dataclass
class PatientResult:
    """What one patient produced."""

    patient: str
    entries: list[lists.Entry] = field(default_factory=list)
    parents: list[lists.Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    written: int = 0
    missing: bool = False


def _process_patient(args: tuple[str, str, str, str, bool]) -> PatientResult:
    root, patient, out_dir, variant_name, skip_bad = args
    variant = VARIANTS[variant_name]
    res = PatientResult(patient)
    pdir = Path(root) / patient
    if not pdir.is_dir():
        res.missing = True
        return res
    out = Path(out_dir)
    for label in (0, 1):
        cdir = pdir / str(label)
        if not cdir.is_dir():
            continue
        for fname in sorted(p.name for p in cdir.iterdir() if p.name.endswith(".png")):
            try:
                img = read_rgb_like_matlab(cdir / fname)
            except Exception as exc:
                if not skip_bad:
                    raise ValueError(
                        f"{cdir / fname}: unreadable PNG ({exc}); rerun with --skip-bad to record it and go on"
                    ) from exc
                res.skipped.append((str(cdir / fname), f"unreadable: {exc}"))
                continue
            if img.shape[:2] != (50, 50):
                log.debug("not 50x50: %s %s", fname, img.shape)
            try:
                patches = make_patches(img, variant, label)
            except IndexError as exc:
                res.skipped.append((str(cdir / fname), f"skipped file: {exc}"))
                continue
            for k, sub, reason in patches:
                name = output_name(fname, k)
                if sub is None:
                    res.skipped.append((name, reason))
                    continue
                save_png(out / name, sub)
                res.written += 1
                res.entries.append(lists.Entry(name, label))
            res.parents.append(lists.Entry(fname, label))
    return res


def run_patches(
    data_root: Path,
    work: Path,
    variant: str = "crop",
    split_dir: Path | None = None,
    jobs: int | None = None,
    skip_bad: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write the variant's patches into ``work/subs`` and the faithful lists into ``work/lists``.

    Lists (TAB-separated, names of the original MATLAB): ``<case>_32w_1.txt`` and
    ``<case>_32w_parent_1.txt`` for train/val/test; then ``train_w32_1.txt`` (train + val, as the
    tutorial concatenated them) and ``test_w32_1.txt``. Returns the report (also written to
    ``work/patches_report.json``, last). Whether the stage must run is the recipe's business
    (:mod:`pipeline.recipes`, called by the runner); this function always writes.
    """
    from tqdm import tqdm

    work = Path(work)
    report_path = work / "patches_report.json"
    split = load_split(split_dir)
    config = {"variant": variant, "data": str(Path(data_root).resolve()), "split": split}
    subs = work / "subs"
    list_dir = work / "lists"
    subs.mkdir(parents=True, exist_ok=True)
    list_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(str(data_root), p, str(subs), variant, skip_bad) for case in CASES for p in split[case]]
    results: dict[str, PatientResult] = {}
    jobs = jobs or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        it = ex.map(_process_patient, tasks, chunksize=1)
        for r in tqdm(it, total=len(tasks), desc=f"patches ({variant})", unit="patient", disable=not show_progress):
            results[r.patient] = r
    counts: dict[str, dict[str, int]] = {}
    missing, skipped = [], []
    for case in CASES:
        entries, parents = [], []
        for p in split[case]:
            r = results[p]
            if r.missing:
                missing.append(p)
            entries += r.entries
            parents += r.parents
            skipped += r.skipped
        lists.write_list(list_dir / artefacts.split_list(case), entries)
        lists.write_list(list_dir / artefacts.split_list(case, parent=True), parents)
        counts[case] = {
            "patches_class0": sum(e.label == 0 for e in entries),
            "patches_class1": sum(e.label == 1 for e in entries),
            "sources_class0": sum(e.label == 0 for e in parents),
            "sources_class1": sum(e.label == 1 for e in parents),
        }
    # train + val merged (as the tutorial did), test as it is: train_w32_1.txt, test_w32_1.txt and their parents
    for parent, merged in ((False, artefacts.patch_list), (True, artefacts.parent_list)):
        train = [
            e for case in ("train", "val") for e in lists.read_list(list_dir / artefacts.split_list(case, 1, parent))
        ]
        lists.write_list(list_dir / merged("train", 1), train)
        lists.write_list(
            list_dir / merged("test", 1), lists.read_list(list_dir / artefacts.split_list("test", 1, parent))
        )
    for p in missing:
        log.warning("patient %s of the split is missing from %s", p, data_root)
    for f, why in skipped:
        log.warning("skipped %s: %s", f, why)
    report = {
        "config": config,
        "counts": counts,
        "missing_patients": missing,
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "written": sum(r.written for r in results.values()),
    }
    atomic.write_text(report_path, json.dumps(report, indent=1))
    log.info("patches: %s", ", ".join(f"{c}: {v['patches_class0']}+{v['patches_class1']}" for c, v in counts.items()))
    return report
