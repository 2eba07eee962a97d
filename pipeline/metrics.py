"""Patch- and pixel-level metrics (pure functions). Class 1 is the positive class."""

from __future__ import annotations

import numpy as np


def confusion(truth, pred) -> dict[str, int]:
    """tp, fp, fn, tn of binary labels (arrays of 0/1)."""
    t = np.asarray(truth).astype(bool)
    p = np.asarray(pred).astype(bool)
    return {"tp": int(np.sum(t & p)), "fp": int(np.sum(~t & p)), "fn": int(np.sum(t & ~p)), "tn": int(np.sum(~t & ~p))}


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def scores(c: dict[str, int]) -> dict[str, float | int | None]:
    """Counts plus F-score of class 1, precision, recall (TPR), TNR, balanced accuracy, accuracy.

    A ratio with a zero denominator is None (e.g. recall of a patient with no positives).
    """
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    tpr = _div(tp, tp + fn)
    tnr = _div(tn, tn + fp)
    bal = None if tpr is None or tnr is None else (tpr + tnr) / 2
    return {
        **c,
        "n": tp + fp + fn + tn,
        "f_score": _div(2 * tp, 2 * tp + fp + fn),
        "precision": _div(tp, tp + fp),
        "recall": tpr,
        "specificity": tnr,
        "balanced_accuracy": bal,
        "accuracy": _div(tp + tn, tp + fp + fn + tn),
    }


def pixel_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float | int | None]:
    """:func:`scores` of two boolean maps of the same shape (pixel level)."""
    return scores(confusion(np.asarray(truth).ravel(), np.asarray(pred).ravel()))


def best_threshold(probs: list[np.ndarray], truths: list[np.ndarray], grid: np.ndarray | None = None) -> float:
    """The threshold on P(class 1) maximising the pooled pixel F-score (ties: the lowest).

    ``grid`` defaults to 0.05, 0.10, ..., 0.95.
    """
    grid = np.round(np.arange(0.05, 1.0, 0.05), 2) if grid is None else grid
    p = np.concatenate([x.ravel() for x in probs])
    t = np.concatenate([x.ravel() for x in truths]).astype(bool)
    best, best_f = 0.5, -1.0
    for th in grid:
        f = pixel_scores(p >= th, t)["f_score"] or 0.0
        if f > best_f:
            best, best_f = float(th), f
    return best
