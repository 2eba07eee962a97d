"""Use case 5, stage 2: negatives re-sampled by stage-1 probability (hard examples).

Ported from ``DL tutorial Code/5-mitosis/step6_make_patches_probs_based_blue_ratio.m``. For fold
``k`` it reads each training frame's stage-1 map ``<f>_prob.png`` (step 5 of stage-1 model ``k`` on
the fold's training frames, at the 0.5x scale; not resized again):

- frame, ground truth (zeros when ``_pc.png`` is missing: such frames count here, unlike stage 1)
  and cmask ``imresize(.5)``; all four padded 32 symmetric;
- positives: every non-zero ground-truth pixel (npos counts the pad's copies), class 1, rotations
  0:15:345 (24);
- weights: ``double(prob(:,:,2)) / 255`` (P(mitosis) of the 8-bit min-max scaled PNG), set to 0
  within ``bwmorph(gt, 'dilate', 10)`` and outside the cmask;
- ``3636 - npos`` indices of the pixels with weight > 0 drawn with ``datasample(..., 'Weights', w)``:
  with replacement (a pixel drawn twice gives two patches), ``stage2_replace=False`` without; draws
  in the pad are lost to the border rule; rotations 0 90 180 270, class 0;
- the list ``train_w32_<k>_2nd.txt`` (the original: ``train_w32_1_2nd_stage.txt``, fold 1
  hard-coded, TAB-separated) lists positives then negatives, frame by frame, space-separated.

The original wrote these patches into stage 1's ``./subs/`` (overwriting the stage-1 patches whose
names collide); here they go to ``subs_2nd/<k>/``, one folder per fold (see the deviations table).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pipeline import atomic, lists
from pipeline.matlab import bwmorph_dilate, find_colmajor
from pipeline.sampling import ImageResult, map_images
from pipeline.usecases.mitosis.sampling import DILATE, PAD, ROTATIONS_NEG, Params, read_frame, write_patches

log = logging.getLogger(__name__)

ROTATIONS_POS2 = tuple(range(0, 360, 15))  #: [0:15:359]: 24 rotations


def prob_weights(prob_green: np.ndarray, gt: np.ndarray, cmask: np.ndarray) -> np.ndarray:
    """Sampling weights of step 6 (all arrays padded, H x W): ``prob_green / 255``, zero within
    ``bwmorph(gt, 'dilate', 10)`` and where ``cmask`` is zero. float64."""
    w = np.asarray(prob_green, dtype=np.float64) / 255.0
    w[bwmorph_dilate(np.asarray(gt) != 0, DILATE)] = 0
    w[np.asarray(cmask) == 0] = 0
    return w


def n_draws(npos: int, total: int = 3636) -> int:
    """``num_neg_samples - npos``: the negative draws of a frame; ValueError when negative (the
    original's datasample fails there)."""
    if npos > total:
        raise ValueError(f"{npos} positive pixels exceed the {total} samples per frame")
    return total - npos


def draw_negatives(
    weights: np.ndarray, n: int, rng: np.random.RandomState, replace: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``idx = find(w > 0); datasample(idx, n, 'Weights', w(idx))`` with or without replacement;
    1-based (rows, cols) of the draws (``ind2sub``). Empty when no weight is positive."""
    flat = weights.T.ravel()  # column-major, as find
    idx = np.flatnonzero(flat > 0)
    if not len(idx) or n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not replace:
        n = min(n, len(idx))
    pick = rng.choice(idx, size=n, replace=replace, p=flat[idx] / flat[idx].sum())
    h = weights.shape[0]
    return pick % h + 1, pick // h + 1


def read_prob_green(path: Path) -> np.ndarray:
    """The green channel (P(mitosis), 0..255) of a step-5 ``_prob.png``; uint8 H x W."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))[..., 1]


def _stage2(args) -> ImageResult:
    image, prob_dir, out_dir, p, seed = args
    image = Path(image)
    res = ImageResult(image.name[:2], image.name)
    prob = Path(prob_dir) / f"{image.stem}_prob.png"
    try:
        io, gt, cmask = read_frame(image, p.scale, empty_gt=True)
        if not prob.is_file():
            raise ValueError(f"{prob}: no stage-1 probability map of {image.name}")
        green = read_prob_green(prob)
        if green.shape != (io.shape[0] - 2 * PAD, io.shape[1] - 2 * PAD):
            raise ValueError(
                f"{prob}: {green.shape[1]}x{green.shape[0]}, but {image.name} at x{p.scale:g} is "
                f"{io.shape[1] - 2 * PAD}x{io.shape[0] - 2 * PAD}"
            )
    except (ValueError, OSError) as exc:
        res.problem = str(exc)
        return res
    green = np.pad(green, PAD, mode="symmetric")
    rng = np.random.RandomState(seed)
    pr, pc = find_colmajor(gt != 0)
    npos = len(pr)
    res.positives = write_patches(io, pr, pc, npos, 1, "p", ROTATIONS_POS2, rng, out_dir, image.stem, 1)
    try:
        n = n_draws(npos, p.stage2_negatives)
    except ValueError as exc:
        res.problem = f"{image}: {exc}; frame skipped"
        return res
    r, c = draw_negatives(prob_weights(green, gt, cmask), n, rng, p.stage2_replace)
    if not len(r):
        log.warning("%s: no pixel with stage-1 probability > 0 inside the cmask: no stage-2 negatives", image.name)
    res.negatives = write_patches(io, r, c, p.stage2_negatives, 0, "n", ROTATIONS_NEG, rng, out_dir, image.stem, 0)
    res.counts = {"npos": npos, "draws": len(r), "n": len(res.negatives) // len(ROTATIONS_NEG)}
    return res


def run_stage2(
    images: list[Path],
    prob_dir: Path,
    out_dir: Path,
    list_path: Path,
    p: Params = Params(),
    seed: int = 1,
    jobs: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Stage-2 patches of ``images`` (a fold's training frames) into ``out_dir``; their list (space
    separated, positives then negatives per frame) at ``list_path``; returns and writes the stage
    report (``<list>.json``: counts per frame, problems)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(str(q), str(prob_dir), str(out_dir), p, seed * 100019 + i) for i, q in enumerate(images)]
    results = map_images(_stage2, tasks, "patches (mitosis, stage 2)", jobs, show_progress)
    entries, problems = [], []
    for r in results:
        if r.problem:
            log.warning("skipped %s", r.problem)
            problems.append(r.problem)
            continue
        entries += r.positives + r.negatives
    if not entries:
        raise ValueError(f"{prob_dir}: stage 2 made no patches ({len(problems)} frame(s) skipped)")
    lists.write_list(list_path, entries, sep=" ")
    report = {
        "images": {r.image: r.counts for r in results if not r.problem},
        "problems": problems,
        "patches": len(entries),
    }
    atomic.write_text(Path(list_path).with_suffix(".json"), json.dumps(report, indent=1))
    return report
