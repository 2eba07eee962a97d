"""Use case 3's scores (invented: the original shipped no evaluation; the paper reports F 0.83
"from 795 tubules" without saying how it matched them).

- Truth: the annotation as step 1 saw it, ``imresize(anno, .25, 'near') > 0`` (ceil sizes), cropped
  to the step-5 map (caffe.io's floor sizes, one row/column fewer for 522x775) -- invented.
- Pixel level: the class map (``_class.png`` non-zero: argmax, P >= .5) against the truth over the
  pixels step 5 computes; tp, fp, fn summed per fold and pooled over the folds.
- Object level (per tubule) -- invented: 8-connected components (MATLAB ``bwlabel``) of the truth
  and of the class map; a predicted object and a true tubule match when their overlap is more than
  half of each (so every match is one to one); precision = matched / predicted objects, recall =
  matched / true tubules, F their harmonic mean; summed per fold and pooled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference, metrics
from pipeline.matlab import bwlabel, imresize_scale
from pipeline.usecases.tubule.images import image_id, image_of
from pipeline.usecases.tubule.sampling import read_anno


def truth_mask(anno: Path, shape: tuple[int, int] | None = None, factor: float = 0.25) -> np.ndarray:
    """The annotation at ``factor`` (MATLAB nearest, ceil sizes), non-zero, cropped to ``shape``."""
    t = imresize_scale(read_anno(anno), factor, method="nearest") > 0
    return t if shape is None else t[: shape[0], : shape[1]]


def object_counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """tp, fp, fn of objects: components (8-connected) matched one to one when the overlap is more
    than half of both the predicted object and the true tubule."""
    lp, n_p = bwlabel(pred, 8)
    lt, n_t = bwlabel(truth, 8)
    if n_p == 0 or n_t == 0:
        return {"tp": 0, "fp": n_p, "fn": n_t}
    both = (lp > 0) & (lt > 0)
    overlap = np.zeros((n_p + 1, n_t + 1), dtype=np.int64)
    np.add.at(overlap, (lp[both], lt[both]), 1)
    size_p = np.bincount(lp.ravel(), minlength=n_p + 1)
    size_t = np.bincount(lt.ravel(), minlength=n_t + 1)
    match = (2 * overlap > size_p[:, None]) & (2 * overlap > size_t[None, :])
    match[0, :] = match[:, 0] = False
    tp = int(match.sum())
    return {"tp": tp, "fp": n_p - tp, "fn": n_t - tp}


def prf(c: dict[str, int]) -> dict:
    """Counts plus precision, recall and F (None where a denominator is 0)."""
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return {
        **c,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f_score": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
    }


def image_scores(pred: np.ndarray, anno: Path, rows=None, cols=None) -> dict:
    """Pixel and object scores of one class map against its annotation (pixel scores over the
    computed ``rows`` x ``cols`` when given; objects over the whole map)."""
    truth = truth_mask(anno, pred.shape)
    h, w = truth.shape
    pred = pred[:h, :w]
    rr = np.arange(h) if rows is None else rows[rows < h]
    cc = np.arange(w) if cols is None else cols[cols < w]
    pix = metrics.confusion(truth[np.ix_(rr, cc)].ravel(), pred[np.ix_(rr, cc)].ravel())
    return {"pixel": prf(pix), "object": prf(object_counts(pred, truth))}


def sum_scores(parts: list[dict]) -> dict:
    """Pixel and object counts summed over ``parts`` (images or folds), with their P, R, F."""
    out = {}
    for level in ("pixel", "object"):
        keys = ("tp", "fp", "fn", "tn") if level == "pixel" else ("tp", "fp", "fn")
        out[level] = prf({k: sum(p[level].get(k, 0) for p in parts) for k in keys})
    return out


def score_fold(
    out_dir: Path, k: int, test: list[Path], stride: int = 1, source: str = "png", anno_dir: Path | None = None
) -> dict:
    """Scores of fold ``k``'s test images (their maps in ``out_dir``; ``test`` are the images step 5
    read, their annotations ``<stem>_anno.bmp`` beside them or in ``anno_dir``)."""
    per = []
    for img in test:
        anno = Path(anno_dir or img.parent) / f"{img.stem}_anno.bmp"
        _, cls = inference.read_maps(Path(out_dir), img.stem, source)
        rows = inference.computed_coords(cls.shape[0], stride)
        cols = inference.computed_coords(cls.shape[1], stride)
        per.append({"image": image_of(anno).name, "id": image_id(anno), **image_scores(cls, anno, rows, cols)})
    return {"fold": k, **sum_scores(per), "images": per}
