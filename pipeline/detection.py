"""Detection on probability maps: greedy peaks, the step-5 resize's inverse, one-to-one matching (pure).

Shared by the detection use cases (use case 4's lymphocytes, use case 5's mitoses): the peak search
is use case 4's ``step5_identify_peak_in_probs.m`` (disk smoothing after symmetric padding, greedy
maxima above a threshold with a disk cleared around each); each use case passes its own numbers.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate
from scipy.optimize import linear_sum_assignment

from pipeline.matlab import fspecial_disk

__all__ = [
    "argmax_colmajor",
    "detect_peaks",
    "greedy_peaks",
    "match_detections",
    "match_pairs",
    "sort_centres",
    "to_original_scale",
]


def argmax_colmajor(a: np.ndarray) -> tuple[int, int]:
    """0-based (row, col) of MATLAB's ``[~, ind] = max(a(:))`` (first maximum in column-major order)."""
    ind = int(np.argmax(a.T.ravel()))
    return ind % a.shape[0], ind // a.shape[0]


def greedy_peaks(
    val: np.ndarray, radius: float, limit: int | None = None, threshold: float | None = None
) -> list[tuple[int, int]]:
    """Greedy maxima: take the largest value, zero a disk of ``radius`` around it, repeat.

    Stops after ``limit`` picks, when nothing non-zero is left (limit mode) or when the maximum is
    not above ``threshold``. Returns 0-based (row, col).
    """
    v = val.astype(np.float64).copy()
    yy, xx = np.mgrid[0 : v.shape[0], 0 : v.shape[1]]
    out = []
    while True:
        if limit is not None and (len(out) >= limit or not np.count_nonzero(v)):
            break
        r, c = argmax_colmajor(v)
        if threshold is not None and not v[r, c] > threshold:
            break
        out.append((r, c))
        v[(yy - r) ** 2 + (xx - c) ** 2 <= radius**2] = 0
    return out


def to_original_scale(points: np.ndarray, scale: float) -> np.ndarray:
    """0-based (row, col) at an image resized by ``scale`` -> 0-based coordinates of the original.

    The inverse of the resize's pixel mapping (MATLAB imresize and skimage/caffe.io.resize_image
    both put output pixel x (0-based) at input u = (x + 0.5) / scale - 0.5; 1-based
    u = x / scale + 0.5 (1 - 1 / scale), 0.375 px from x / scale for scale 4).
    """
    return (np.asarray(points, dtype=np.float64) + 0.5) / scale - 0.5


def detect_peaks(
    prob: np.ndarray, threshold: float, clear_radius: float, disk_radius: int, pad: int = 16
) -> list[tuple[int, int]]:
    """Centres (0-based row, col) of a probability map in [0, 1]: ``imfilter`` with
    ``fspecial('disk', disk_radius)`` after symmetric padding by ``pad`` (a correlation, zero outside
    the padded image), then greedy maxima above ``threshold`` with ``clear_radius`` cleared around
    each (step5_identify_peak_in_probs.m)."""
    padded = np.pad(prob.astype(np.float64), pad, mode="symmetric")
    smooth = correlate(padded, fspecial_disk(disk_radius), mode="constant", cval=0.0)[pad:-pad, pad:-pad]
    return greedy_peaks(smooth, clear_radius, threshold=threshold)


def match_pairs(pred: np.ndarray, truth: np.ndarray, radius: float) -> list[tuple[int, int]]:
    """One-to-one matches (index into ``pred``, index into ``truth``) of predicted and true centres
    ((N, 2) row, col) within ``radius``: Hungarian assignment maximising the number of matches, then
    minimising the summed distance."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    if not len(pred) or not len(truth):
        return []
    d = np.sqrt(((pred[:, None, :] - truth[None, :, :]) ** 2).sum(-1))
    big = 1e6
    cost = np.where(d <= radius, d, big)
    r, c = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(r, c) if cost[i, j] < big]


def match_detections(pred: np.ndarray, truth: np.ndarray, radius: float) -> dict:
    """One-to-one matching of predicted and true centres within ``radius`` (:func:`match_pairs`);
    tp, fp, fn, precision, recall, F."""
    n_pred, n_truth = len(np.asarray(pred).reshape(-1, 2)), len(np.asarray(truth).reshape(-1, 2))
    tp = len(match_pairs(pred, truth, radius))
    fp, fn = n_pred - tp, n_truth - tp
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
    return {"tp": tp, "fp": fp, "fn": fn, "precision": prec, "recall": rec, "f_score": f}


def sort_centres(peaks: np.ndarray, truth: np.ndarray, scale: float, radius: float) -> dict[str, np.ndarray]:
    """Detections ``peaks`` (at the output scale) and true centres (original scale), both (N, 2)
    row, col, sorted as scoring matches them (:func:`match_pairs` at the original scale, the peaks
    mapped back by :func:`to_original_scale`), returned at the output scale (the truth mapped
    forward by the resize's pixel mapping, x = (u + 0.5) scale - 0.5): "truth_matched",
    "truth_missed", "pred_matched", "pred_false"."""
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    pairs = match_pairs(to_original_scale(peaks, scale), truth, radius)
    pi, ti = {i for i, _ in pairs}, {j for _, j in pairs}
    shown = (truth + 0.5) * scale - 0.5
    return {
        "truth_matched": shown[sorted(ti)],
        "truth_missed": shown[[j for j in range(len(truth)) if j not in ti]],
        "pred_matched": peaks[sorted(pi)],
        "pred_false": peaks[[i for i in range(len(peaks)) if i not in pi]],
    }
