"""Use case 5, stage 1: frames, blue ratio, patient selection and the first stage's patches.

Ported from ``DL tutorial Code/5-mitosis/step1_make_patches.m`` (choosehappy/public):

- patients are the first two characters of ``*.tif``, minus ``10`` ("there are no mitosis in
  patient 10", line 9); here also every patient none of whose frames has a mitosis pixel, said so;
- each frame ``<pp>_<ff>.tif`` (2000x2000 at 40x) with its ground truth ``<pp>_<ff>_pc.png`` and
  its computational mask ``<pp>_<ff>_cmask.png`` ("blue ratio segmented image post dilation", made
  by the authors: the original reads it, it never computes a blue ratio) is resized by MATLAB
  ``imresize(.5)`` (bicubic, antialiased; a 1-bit mask stays logical, an 8-bit one spills a little
  past its edge) and padded 32 symmetric; a frame missing a file is skipped (the original's
  ``try``/``catch``);
- positives: every non-zero pixel of the resized padded mask, class 1, type ``p``, rotations
  0 45 90 135 180 215 270 (215 sic; ``rot225`` gives 225);
- negatives: the cmask minus ``bwmorph(mask, 'dilate', 10)``, round(2.5 npos) of its pixels, where
  npos counts the mask pixels of the pad too (``npos_in_image_only`` counts the frame's only),
  type ``n``, rotations 0 90 180 270. The class in their *file names* is 1 as in the code that made
  the released models (issue #5 of the original repository, fixed in 1c0ef41, 2020); their list
  label is 0 either way (common step 2 labels by list), so ``negative_class_in_name=0`` changes
  names only.

:func:`blue_ratio` (Chang et al. 2012, the transform the cmask files are named after) makes the
generated cohort's cmask files; a real data set brings its own.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, lists
from pipeline.matlab import bwmorph_dilate, find_colmajor, imresize_scale, matlab_round
from pipeline.patches import save_png
from pipeline.sampling import ImageResult, cut_patch, patch_name, run_image_jobs, select_centres

log = logging.getLogger(__name__)

PAD = 32  #: padarray(..., [wsize wsize], 'symmetric')
SCALE = 0.5  #: imresize(.5): 40x frames seen at 20x
DILATE = 10  #: bwmorph(mask, 'dilate', 10): a 21x21 square around each mitosis pixel
NEG_RATIO = 2.5  #: round(2.5 * npos) negatives
ROTATIONS_POS = (0, 45, 90, 135, 180, 215, 270)  #: step1 line 47, 215 sic
ROTATIONS_POS_225 = (0, 45, 90, 135, 180, 225, 270)  #: what was evidently meant (option rot225)
ROTATIONS_NEG = (0, 90, 180, 270)
DROPPED_PATIENTS = ("10",)  #: step1 line 9
FRAME = re.compile(r"^(\d\d)_.+\.tif$")


@dataclass(frozen=True)
class Params:
    """Both stages' sampling parameters; defaults are the original's (stage 2 in ``stage2.py``)."""

    scale: float = SCALE
    neg_ratio: float = NEG_RATIO
    rot225: bool = False
    negative_class_in_name: int = 1  # 1: the code that made the released models (issue #5); 0: after the fix
    npos_in_image_only: bool = False
    drop_patients: tuple[str, ...] = DROPPED_PATIENTS
    stage2_negatives: int = 3636  # num_neg_samples of step 6
    stage2_replace: bool = True  # datasample's default: with replacement

    def stage1(self) -> dict:
        """The options that change stage 1's patches (its recipe)."""
        keys = ("scale", "neg_ratio", "rot225", "negative_class_in_name", "npos_in_image_only", "drop_patients")
        return {k: getattr(self, k) for k in keys}

    def stage2(self) -> dict:
        """The options that change stage 2's patches (its recipe)."""
        return {k: getattr(self, k) for k in ("scale", "stage2_negatives", "stage2_replace")}


# --------------------------------------------------------------------------- blue ratio (pure)


def blue_ratio(rgb: np.ndarray) -> np.ndarray:
    """Blue ratio of an H x W x 3 RGB image (0..255 values): ``100 B / (1 + R + G) * 256 / (1 + R + G + B)``
    (Chang et al. 2012), float64 H x W. High on haematoxylin (nuclei, mitoses), low on eosin."""
    x = np.asarray(rgb, dtype=np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return (100.0 * b / (1.0 + r + g)) * (256.0 / (1.0 + r + g + b))


def blue_ratio_mask(rgb: np.ndarray, threshold: float = 30.0, dilate: int = 2) -> np.ndarray:
    """A computational mask as the authors describe theirs ("blue ratio segmented image post
    dilation"): blue ratio above ``threshold``, dilated ``dilate`` times by a 3x3 square. The
    threshold and dilation are this project's (the authors' are unpublished); bool H x W."""
    return bwmorph_dilate(blue_ratio(rgb) > threshold, dilate)


# --------------------------------------------------------------------------- frames


def companions(image: Path) -> tuple[Path, Path]:
    """``<f>.tif`` -> (``<f>_pc.png`` ground truth, ``<f>_cmask.png`` computational mask)."""
    return image.with_name(image.stem + "_pc.png"), image.with_name(image.stem + "_cmask.png")


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as MATLAB ``imread`` gives it: logical for a 1-bit PNG, else the first band
    (uint8 or uint16). H x W."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode == "1":
            return np.asarray(im, dtype=bool)
        a = np.asarray(im)
    return a[..., 0] if a.ndim == 3 else a


def read_rgb(path: Path) -> np.ndarray:
    """An image as uint8 H x W x 3."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def check_size(path: Path, a: np.ndarray, shape: tuple[int, int], image: Path) -> None:
    """ValueError naming ``path`` when its annotation does not fit the frame (another size)."""
    if a.shape[:2] != shape:
        raise ValueError(
            f"{path}: annotation is {a.shape[1]}x{a.shape[0]}, its frame {image.name} is {shape[1]}x{shape[0]}: "
            "annotations outside the frame; frame skipped"
        )


def read_frame(image: Path, scale: float = SCALE, empty_gt: bool = False) -> tuple[np.ndarray, ...]:
    """(image uint8, ground truth, cmask) of a frame, each ``imresize(scale)`` and padded 32 symmetric.

    A missing ``_pc.png`` raises ValueError (stage 1 skips such frames) unless ``empty_gt`` (stage
    2: zeros). A missing cmask or image, or a mask of another size, raises ValueError naming it.
    """
    pc, cm = companions(image)
    if not image.is_file():
        raise ValueError(f"{image}: no such frame")
    io = read_rgb(image)
    shape = io.shape[:2]
    if pc.is_file():
        gt = read_mask(pc)
        check_size(pc, gt, shape, image)
    elif empty_gt:
        gt = np.zeros(shape, np.uint8)
    else:
        raise ValueError(
            f"{image}: no annotation {pc.name} (frame without annotations): skipped in stage 1, as the original"
        )
    if not cm.is_file():
        raise ValueError(f"{image}: no computational mask {cm.name}: frame skipped")
    cmask = read_mask(cm)
    check_size(cm, cmask, shape, image)
    out = []
    for a in (io, gt, cmask):
        a = imresize_scale(a, scale)
        out.append(np.pad(a, ((PAD, PAD), (PAD, PAD)) + ((0, 0),) * (a.ndim - 2), mode="symmetric"))
    return tuple(out)


def has_mitosis(image: Path) -> bool:
    """The frame's ``_pc.png`` exists and has a non-zero pixel."""
    pc = companions(image)[0]
    if not pc.is_file():
        return False
    try:
        return bool(np.any(read_mask(pc)))
    except OSError as exc:  # the frame is reported (and skipped) by the patch stage
        log.warning("%s: unreadable (%s)", pc, exc)
        return False


def annotation_misfit(image: Path, why: list[str]) -> bool:
    """Whether the frame's ``_pc.png`` has another size than the frame (read from the headers);
    the reason is appended to ``why``. Unreadable files are left to the patch stage to report."""
    from PIL import Image

    pc = companions(image)[0]
    if not pc.is_file():
        return False
    try:
        with Image.open(image) as a, Image.open(pc) as b:
            (w, h), (mw, mh) = a.size, b.size
    except OSError:
        return False
    if (w, h) == (mw, mh):
        return False
    why.append(
        f"{pc}: annotation is {mw}x{mh}, its frame {image.name} is {w}x{h}: annotations outside the frame; frame skipped"
    )
    return True


def images_by_patient(
    folder: Path, drop: tuple[str, ...] = DROPPED_PATIENTS
) -> tuple[dict[str, list[Path]], list[str]]:
    """Frames ``<pp>_*.tif`` per patient ``pp`` (sorted as MATLAB's ``dir``), and why frames and
    patients were left out: frames whose annotation does not fit them, patients in ``drop`` (the
    original's patient 10) and those with no mitosis in any frame."""
    by: dict[str, list[Path]] = {}
    why = []
    for p in sorted(Path(folder).glob("*.tif")):
        m = FRAME.match(p.name)
        if m and not annotation_misfit(p, why):
            by.setdefault(m.group(1), []).append(p)
    for pid in list(by):
        if pid in drop:
            why.append(f"patient {pid}: dropped by name, as the original drops patient 10 (no mitoses)")
            del by[pid]
        elif not any(has_mitosis(i) for i in by[pid]):
            why.append(f"patient {pid}: no mitosis in any frame's _pc.png; dropped, as the original drops patient 10")
            del by[pid]
    return by, why


# --------------------------------------------------------------------------- stage 1 (pure selection)


def stage1_candidates(
    gt: np.ndarray, cmask: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """1-based (rows, cols) of the positive pixels (``find(mask)``) and of the negative candidates
    (``cmask`` with ``bwmorph(mask, 'dilate', 10)`` cleared), both column-major, of padded arrays."""
    neg = np.asarray(cmask).copy()
    neg[bwmorph_dilate(gt != 0, DILATE)] = 0
    return find_colmajor(gt != 0), find_colmajor(neg != 0)


def npos_of(gt: np.ndarray, in_image_only: bool = False) -> int:
    """npos of step 1: the mask pixels of the padded mask (the pad's mirrored copies counted, as
    the original), or of the frame only."""
    return int(np.count_nonzero(gt[PAD:-PAD, PAD:-PAD] if in_image_only else gt))


def n_negatives(npos: int, ratio: float = NEG_RATIO) -> int:
    """round(2.5 npos): how many negative centres stage 1 keeps."""
    return matlab_round(ratio * npos)


def write_patches(io, r, c, max_num, cls, kind, rots, rng, out, base, label) -> list[lists.Entry]:
    """func_extraction_worker_w_rots: centres selected (border rule, shuffle, first round(max_num)),
    each centre's rotations written as ``<base>_<cls>_<kind>_<n>_<deg>.png``; list entries labelled ``label``."""
    r, c = select_centres(np.asarray(r), np.asarray(c), max_num, rng, io.shape[:2])
    ents = []
    for n, (ri, ci) in enumerate(zip(r, c), start=1):
        for deg in rots:
            name = patch_name(base, cls, kind, n, deg)
            save_png(Path(out) / name, cut_patch(io, int(ri), int(ci), deg))
            ents.append(lists.Entry(name, label))
    return ents


def _stage1(args) -> ImageResult:
    image, out_dir, p, seed = args
    image = Path(image)
    res = ImageResult(image.name[:2], image.name)
    try:
        io, gt, cmask = read_frame(image, p.scale)
    except (ValueError, OSError) as exc:
        res.problem = str(exc)
        return res
    rng = np.random.RandomState(seed)
    (pr, pc), (nr, nc) = stage1_candidates(gt, cmask)
    npos = npos_of(gt, p.npos_in_image_only)
    rots = ROTATIONS_POS_225 if p.rot225 else ROTATIONS_POS
    res.positives = write_patches(io, pr, pc, len(pr), 1, "p", rots, rng, out_dir, image.stem, 1)
    nneg = n_negatives(npos, p.neg_ratio)
    res.negatives = write_patches(
        io, nr, nc, nneg, p.negative_class_in_name, "n", ROTATIONS_NEG, rng, out_dir, image.stem, 0
    )
    res.counts = {"npos": npos, "p": len(res.positives) // len(rots), "n": len(res.negatives) // len(ROTATIONS_NEG)}
    return res


def run_stage1(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Stage-1 patches of every frame of the kept patients into ``work/subs``; the stage report
    (patients, per-patient list entries, counts, problems: dropped patients and skipped frames
    first) in ``work/patches_report.json``."""
    by, dropped = images_by_patient(folder, p.drop_patients)
    for why in dropped:
        log.warning("%s", why)
    if not by:
        raise ValueError(f"{folder}: no patient with mitoses (frames <pp>_<ff>.tif with <pp>_<ff>_pc.png)")
    frames = [q for v in by.values() for q in v]
    tasks = [(str(q), str(Path(work) / "subs"), p, seed * 100003 + i) for i, q in enumerate(frames)]
    config = {"data": str(Path(folder).resolve()), "params": p.stage1(), "seed": seed}
    report = run_image_jobs(work, config, list(by), _stage1, tasks, "patches (mitosis, stage 1)", jobs, show_progress)
    report["problems"] = dropped + report["problems"]
    atomic.write_text(Path(work) / "patches_report.json", json.dumps(report))
    return report
