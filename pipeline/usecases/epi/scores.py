"""Use case 2's pixel scores (invented: the original's step 6 was a visual check), per fold and pooled, and their tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference, metrics
from pipeline.matlab import imresize_scale
from pipeline.report import Column, from_json
from pipeline.report.mdtable import MISSING, document, fixed, pipe_table
from pipeline.usecases.epi.patches import mask_path, read_mask


def truth_mask(image: Path, factor: float) -> np.ndarray:
    """The image's mask at the output magnification (MATLAB imresize as in step 1), boolean."""
    m = read_mask(mask_path(image))
    m = imresize_scale(m, factor) if factor != 1 else m
    return m.astype(bool)


def score_maps(
    out_dir: Path, images: list[Path], factor: float, stride: int | None = None, source: str = "png"
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(P(epithelium) maps, class maps, true masks) of ``images`` over the pixels step 5 computed,
    as the folder's record says (``.outputs.json``: stride, all-pixels; the original's pixels by
    default). ``stride``: only for maps that are not step-5 outputs (no record: the U-Net's), the
    original's pixels at that stride; None (step-5 folders): the record decides.

    ``source`` "png" (default) reads the _prob.png green channel / 255 and the _class.png the
    original wrote (min-max scaled by scipy.misc.imsave); "npy" the float maps.
    """
    probs, classes, truths = [], [], []
    record = inference.read_record(Path(out_dir)) if stride is None else None
    for img in images:
        p1, cls = inference.read_maps(Path(out_dir), img.stem, source)
        t = truth_mask(img, factor)
        if record is not None:
            rr, cc = record.computed(*p1.shape[:2])
        else:
            rr, cc = inference.computed_coords(p1.shape[0], stride), inference.computed_coords(p1.shape[1], stride)
        probs.append(p1[np.ix_(rr, cc)])
        classes.append(cls[np.ix_(rr, cc)])
        truths.append(t[np.ix_(rr, cc)])
    return probs, classes, truths


def score_fold(
    out_dir: Path,
    k: int,
    test: list[Path],
    val: list[Path],
    factor: float,
    val_dir: Path | None = None,
    source: str = "png",
    stride: int | None = None,
) -> dict:
    """Pixel scores of fold k's test images (maps in ``out_dir``): the class maps, and
    ``P >= threshold`` with the threshold chosen on the validation images (maps in ``val_dir``,
    default ``out_dir``). With ``source`` "png" both read the values the original's PNGs hold.
    ``stride``: only for maps without a step-5 record (:func:`score_maps`)."""
    tp, tc, tt = score_maps(out_dir, test, factor, stride, source=source)
    th = 0.5
    if val:
        vp, _, vt = score_maps(val_dir or out_dir, val, factor, stride, source=source)
        th = metrics.best_threshold(vp, vt)
    truth = np.concatenate([t.ravel() for t in tt])
    cls = metrics.pixel_scores(np.concatenate([c.ravel() for c in tc]), truth)
    thr = metrics.pixel_scores(np.concatenate([(p >= th).ravel() for p in tp]), truth)
    return {
        "fold": k,
        "threshold": th,
        "score_from": source,
        "class_map": cls,
        "thresholded": thr,
        "test_images": [i.name for i in test],
        "validation_images": [i.name for i in val],
    }


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled pixel scores beside the recalled published F-score."""
    source = {
        "png": "the 8-bit min-max scaled _class.png and _prob.png (green / 255) the original wrote",
        "npy": "the float probability maps (.npy)",
    }.get(s.get("score_from", "png"), s.get("score_from"))

    def row(label: object, threshold: str, c: dict, t: dict) -> list:
        return [label, threshold, *(fixed(e[k]) for e in (c, t) for k in ("f_score", "precision", "recall"))]

    rows = [row(f["fold"], fixed(f["threshold"], 2), f["class_map"], f["thresholded"]) for f in s["folds"]]
    rows.append(row("pooled", MISSING, s["pooled"]["class_map"], s["pooled"]["thresholded"]))
    rows.append(["published (recalled, unchecked)", "", fixed(s["published_f_recalled"], 2), "", "", "", "", ""])
    header = ["fold", "threshold", "F (class map)", "precision", "recall", "F (P >= threshold)", "precision", "recall"]
    return document(
        "### Use case 2 (epithelium), pixel level",
        f"Maps read: {source}; threshold chosen on the validation images of each fold.",
        pipe_table(header, rows),
    )


HEADLINE = [
    Column("cm_f", "F-score", group="class map (argmax)"),
    Column("cm_p", "precision", group="class map (argmax)"),
    Column("cm_r", "recall", group="class map (argmax)"),
    Column("th", "threshold", 2, group="P ≥ threshold"),
    Column("th_f", "F-score", group="P ≥ threshold"),
    Column("th_p", "precision", group="P ≥ threshold"),
    Column("th_r", "recall", group="P ≥ threshold"),
]


_KEYS = {"f": "f_score", "p": "precision", "r": "recall"}


def headline_cells(scores: dict, *path: str | int) -> dict:
    """The headline cells of one entry of the scores JSON (``folds/<i>`` or ``pooled``)."""
    entry = scores
    for p in path:
        entry = entry[p]
    cells = {
        f"{pre}_{k}": from_json(scores, "scores.json", *path, part, key)
        for pre, part in (("cm", "class_map"), ("th", "thresholded"))
        for k, key in _KEYS.items()
    }
    if "threshold" in entry:
        cells["th"] = from_json(scores, "scores.json", *path, "threshold")
    return cells
