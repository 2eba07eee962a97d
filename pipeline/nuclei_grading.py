"""Per-nucleus grading of a segmentation against an incomplete nucleus annotation (pure functions).

Reproduces DLLevelTutorial/grade_single_image.m: the prediction is resized to the annotation's size
(nearest), both are labelled (8-connected, ``bwlabel``), and for every annotated nucleus g the
predicted components touching it form D:

- TP = |D & g|, FP = |D \\ g|, FN = |g \\ D|;
- F = 2 TP / (2 TP + FP + FN), TPR = TP / (TP + FN), PPV = TP / (TP + FP) when TP + FP > 0;
- detected when TP > |g| / 2.

Predicted components touching no annotated nucleus cost nothing (the annotation is incomplete).
The PPV vector keeps MATLAB's growth rule: entries of nuclei with TP + FP = 0 are 0 when a later
nucleus (in bwlabel's column-major order) has a PPV, and absent after the last one.

:func:`summarize` aggregates as find_per_level_2thresh.m does for F (the mean over an image's
nuclei, then ``nanmean`` over images) and the same way for TPR, PPV and the detection rate
(mean of DET), which the original code does not show [inferred].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.matlab import bwlabel, imresize


@dataclass
class Grade:
    """Per-nucleus vectors of one image, in bwlabel order of the annotation."""

    fscore: np.ndarray
    det: np.ndarray
    tpr: np.ndarray
    ppv: np.ndarray  # MATLAB's growth rule: see the module docstring
    tp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fn: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        """Number of annotated nuclei."""
        return len(self.fscore)


def grade_single_image(gt: np.ndarray, pred: np.ndarray) -> Grade:
    """grade_single_image(io_gt, dlob): ``gt`` non-zero = annotated nucleus (H x W), ``pred``
    boolean segmentation (any size; resized to ``gt``'s with nearest neighbour)."""
    gt = np.asarray(gt) != 0
    pred = np.asarray(pred, dtype=bool)
    if pred.shape != gt.shape:
        pred = imresize(pred, gt.shape, method="nearest")
    pl, npred = bwlabel(pred)
    gl, n = bwlabel(gt)
    if n == 0:
        z = np.zeros(0)
        return Grade(z, z, z, z, z, z, z)
    size_g = np.bincount(gl.ravel(), minlength=n + 1)[1:].astype(np.float64)
    size_p = np.bincount(pl.ravel(), minlength=npred + 1).astype(np.float64)
    both = (gl > 0) & (pl > 0)
    # TP: pixels of g that are predicted (every predicted label inside g belongs to D)
    tp = np.bincount(gl[both], minlength=n + 1)[1:].astype(np.float64)
    # |D|: sizes of the distinct predicted components touching each g
    pairs = np.unique(np.stack([gl[both], pl[both]], axis=1), axis=0) if both.any() else np.zeros((0, 2), int)
    d_size = np.bincount(pairs[:, 0], weights=size_p[pairs[:, 1]], minlength=n + 1)[1:]
    fp = d_size - tp
    fn = size_g - tp
    fscore = 2 * tp / (2 * tp + fp + fn)
    tpr = tp / (tp + fn)
    has = (tp + fp) > 0
    last = int(np.nonzero(has)[0][-1]) + 1 if has.any() else 0
    ppv = np.zeros(last)
    ppv[has[:last]] = tp[:last][has[:last]] / (tp + fp)[:last][has[:last]]
    det = (size_g / 2 < tp).astype(np.float64)
    return Grade(fscore, det, tpr, ppv, tp, fp, fn)


def _mean(v: np.ndarray) -> float:
    return float(np.mean(v)) if len(v) else float("nan")


def image_scores(g: Grade) -> dict[str, float]:
    """Means over one image's nuclei (NaN for an image without annotated nuclei or, for PPV,
    without any touched nucleus)."""
    return {
        "f_score": _mean(g.fscore),
        "tpr": _mean(g.tpr),
        "ppv": _mean(g.ppv),
        "detection_rate": _mean(g.det),
        "nuclei": g.n,
    }


def summarize(grades: list[Grade]) -> dict[str, float | int | None]:
    """nanmean over images of each image's mean per-nucleus F, TPR, PPV and detection rate."""
    per = [image_scores(g) for g in grades]
    out: dict[str, float | int | None] = {"images": len(per), "nuclei": int(sum(p["nuclei"] for p in per))}
    for key in ("f_score", "tpr", "ppv", "detection_rate"):
        vals = np.array([p[key] for p in per], dtype=np.float64)
        ok = ~np.isnan(vals)
        out[key] = float(vals[ok].mean()) if ok.any() else None
    return out
