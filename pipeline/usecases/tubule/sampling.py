"""Use case 3's step 1 per image (3-tubule/step1_make_patches.m = step1): read, resize, pad,
features, pixel classifier, hard positives and negatives, patches.

1. image and annotation ``imresize(im2double(.), .25, 'near')`` (ceil sizes; 1-based output i takes
   input 4i-1), padded 32 symmetric; mask = padded annotation > 0;
2. features and posteriors (:mod:`.features`): 12,000 training pixels, LDA by default;
3. hard positives: weight P(not tubule) on the mask, the class's limit and rotations (malignant 2000,
   [0 90 180 270]; benign 1000, [0 90]); hard negatives: weight P(tubule) off the mask, limit =
   npos centres, [0 90] (:mod:`.mining`);
4. patches (``func_extraction_worker_w_rots`` with ``max_num`` Inf: every centre, in a ``randperm``
   order) named ``<id>_anno_<class>_<p|n>_<rank>_<deg>.png`` (the base is ``fname(1:end-4)``).

The shipped step 1 reads ``ilf`` where it made ``ilfo`` (step1:73): in a fresh MATLAB every image
raises "Undefined function or variable 'ilf'." inside the try, and is skipped (no patches at all).
The default is the evident intent (``ilfo``); ``literal_ilf=True`` reproduces the skip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, lists
from pipeline.imageio import BadImage, imread_matlab
from pipeline.matlab import imresize_scale
from pipeline.patches import save_png
from pipeline.sampling import HWSIZE, WSIZE, ImageResult, cut_patch, patch_name, run_image_jobs, select_centres
from pipeline.usecases.tubule import features, images, mining

log = logging.getLogger(__name__)

#: MATLAB's message for the misspelt variable (step1:73), as ``disp(err)`` showed it.
ILF_ERROR = "Undefined function or variable 'ilf'."


@dataclass(frozen=True)
class Params:
    """Step 1's parameters; defaults are the original's (the intended ``ilfo``)."""

    limit_malignant: int = 2000
    limit_benign: int = 1000
    rotations_malignant: tuple[int, ...] = (0, 90, 180, 270)
    rotations_benign: tuple[int, ...] = (0, 90)
    rotations_negative: tuple[int, ...] = (0, 90)
    resize: float = 0.25
    window: int = 32
    levels: int = 8
    clear_radius: float = 3.0
    n_train_pixels: int = 12000
    classifier: str = "lda"
    classifier_pixels: str = "padded"
    literal_ilf: bool = False
    legacy_list_parse: bool = False
    grouping: str = "name"
    benign_list: str = ""  # paths given on the command line ("" = found beside the data / released)
    malignant_list: str = ""


def read_anno(path: Path) -> np.ndarray:
    """An annotation as MATLAB's imread gives it, reduced to one plane (the first channel of a
    colour file); non-zero = tubule."""
    a = imread_matlab(path)
    return a[..., 0] if a.ndim == 3 else a


def load_pair(anno: Path, p: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """(padded uint8 RGB image, padded bool mask) at ``p.resize``; ValueError naming the files."""
    img_path = images.image_of(anno)
    if not img_path.is_file():
        raise ValueError(f"{anno}: annotation without image {img_path.name}")
    io = imread_matlab(img_path)
    if io.ndim == 2:
        io = np.repeat(io[..., None], 3, axis=2)
    if io.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected an 8-bit RGB image, got {io.dtype}")
    mask = read_anno(anno)
    if mask.shape[:2] != io.shape[:2]:
        raise ValueError(
            f"{anno}: annotation is {mask.shape[0]}x{mask.shape[1]}, image {img_path.name} is "
            f"{io.shape[0]}x{io.shape[1]}"
        )
    io = imresize_scale(io[..., :3], p.resize, method="nearest")
    mask = imresize_scale(mask, p.resize, method="nearest")
    pad = ((WSIZE, WSIZE), (WSIZE, WSIZE))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric") > 0


def hard_centres(
    io: np.ndarray, mask: np.ndarray, limit: int, p: Params, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """1-based (row, col) centres of the hard positives and hard negatives of one padded image."""
    h, w = mask.shape
    x = features.pixel_features(io, p.window, p.levels)
    labels = mask.T.ravel()
    train = features.training_pixels((h, w), p.n_train_pixels, rng, p.classifier_pixels, WSIZE)
    post = features.posterior(x, train, labels[train], p.classifier)
    hard_pos, hard_neg = hard_weights(post, mask)
    pos = mining.sample_with_clearing(hard_pos, HWSIZE, p.clear_radius, limit, rng)
    neg = mining.sample_with_clearing(hard_neg, HWSIZE, p.clear_radius, len(pos), rng)
    return pos, neg


def hard_weights(post: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sampler's weights (H x W each) from the column-major posteriors (N x 2) and the mask:
    hard positives P(not tubule) on the mask, 0 elsewhere (step1:90-91); hard negatives P(tubule)
    off the mask, 0 on it (step1:98-99)."""
    h, w = mask.shape
    return (
        np.where(mask, post[:, 0].reshape(w, h).T, 0.0),
        np.where(mask, 0.0, post[:, 1].reshape(w, h).T),
    )


def write_patches(
    io: np.ndarray, centres: np.ndarray, base: str, label: int, kind: str, rots, rng, out: Path
) -> list[lists.Entry]:
    """func_extraction_worker_w_rots with max_num Inf: border rule, randperm order, every centre."""
    r, c = centres[:, 0], centres[:, 1]
    r, c = select_centres(r, c, len(r), rng, io.shape[:2])
    entries = []
    for n, (ri, ci) in enumerate(zip(r, c), start=1):
        for deg in rots:
            name = patch_name(base, label, kind, n, deg)
            save_png(out / name, cut_patch(io, int(ri), int(ci), deg))
            entries.append(lists.Entry(name, label))
    return entries


def process_image(args) -> ImageResult:
    """Step 1 of one annotation: (anno path, group, out dir, Params, seed, malignant?) -> ImageResult."""
    anno, group, out_dir, p, seed, malignant = args
    anno = Path(anno)
    res = ImageResult(group, anno.name)
    if p.literal_ilf:
        res.problem = f"{anno}: {ILF_ERROR} (step1_make_patches.m line 73, --literal-ilf: skipped as the original)"
        return res
    try:
        io, mask = load_pair(anno, p)
    except (ValueError, BadImage, OSError) as exc:
        res.problem = str(exc)
        return res
    rng = np.random.RandomState(seed)
    limit, rots = (p.limit_malignant, p.rotations_malignant) if malignant else (p.limit_benign, p.rotations_benign)
    try:
        pos, neg = hard_centres(io, mask, limit, p, rng)
    except ValueError as exc:  # MATLAB's classify errors and index errors: caught, image skipped
        res.problem = f"{anno}: skipped ({exc})"
        return res
    base = anno.name[:-4]  # fname(1:end-4): "<id>_anno"
    out = Path(out_dir)
    res.positives = write_patches(io, pos, base, 1, "p", rots, rng, out)
    res.negatives = write_patches(io, neg, base, 0, "n", p.rotations_negative, rng, out)
    res.counts = {"p": len(pos), "n": len(neg), "malignant": int(bool(malignant))}
    return res


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Step 1 over every annotated image into ``work/subs``; the report in patches_report.json
    (its ``warnings``: list problems, named in one line each)."""
    import json

    by_group = images.images_by_group(folder, p.grouping)
    annos = [a for v in by_group.values() for a in v]
    cls = images.find_class_lists(folder, p.benign_list, p.malignant_list)
    warnings = images.check_class_lists(cls, images.annotations(folder))
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = [
        (str(a), g, str(subs), p, seed * 100003 + i, cls.is_malignant(a))
        for i, (g, a) in enumerate((g, a) for g, v in by_group.items() for a in v)
    ]
    if not annos:
        raise FileNotFoundError(f"{folder}: no *_anno.bmp annotations (use case 3 reads <id>.bmp with <id>_anno.bmp)")
    report = run_image_jobs(work, config, list(by_group), process_image, tasks, "patches (tubule)", jobs, show_progress)
    report["warnings"] = warnings
    atomic.write_text(Path(work) / "patches_report.json", json.dumps(report))
    if p.literal_ilf:
        raise ValueError(
            f'--literal-ilf: all {len(annos)} images skipped with MATLAB\'s "{ILF_ERROR}" (step1_make_patches.m '
            "line 73), as the shipped step 1 does: no patches, nothing to train (drop --literal-ilf for the intended ilfo)"
        )
    return report
