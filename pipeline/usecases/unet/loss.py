"""The loss of train_unet_albumentations.py: class-weighted per-pixel cross-entropy, edges boosted.

- class weights ``w_c = 1 - n_c / sum(n)`` from the training pytable's ``numpixels[1, 0:2]``
  (computed in float64, then float32 as ``torch.FloatTensor``);
- edge ring: ``binary_dilation(mask == 1, iterations=2) & ~mask`` with scipy's default cross
  structuring element; ``~`` on a uint8 0/1 mask is 255/254, so the ring is the pixels added by the
  dilation (outside the mask), 1 there and 0 elsewhere;
- ``nn.CrossEntropyLoss(weight=w, ignore_index=-100, reduce=False)`` per pixel, times
  ``edge_weight ** ring`` (1.1 on the ring), then a plain mean over N x H x W (not normalised by the
  weights).
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100


def edge_ring(mask: np.ndarray, iterations: int = 2) -> np.ndarray:
    """The ring a 2-step cross dilation adds around the mask: H x W uint8 in {0, 1}."""
    from scipy.ndimage import binary_dilation

    return (binary_dilation(mask == 1, iterations=iterations) & (mask == 0)).astype(np.uint8)


def class_weights(numpixels: np.ndarray) -> np.ndarray:
    """``1 - n / sum(n)`` of ``numpixels[1, 0:2]``: float32 (2,). ValueError if no pixel is counted."""
    n = np.asarray(numpixels, dtype=np.float64)[1, 0:2]
    if n.sum() <= 0:
        raise ValueError("numpixels counts no pixel: the training masks are empty")
    return (1 - n / n.sum()).astype(np.float32)


def weighted_loss(logits, target, ring, weights, edge_weight: float):
    """Mean over N x H x W of ``CE(logits, target; weights)[n, y, x] * edge_weight ** ring[n, y, x]``.

    logits N x C x H x W float, target N x H x W int64, ring N x H x W float (0/1), weights (C,) float.
    """
    import torch
    from torch import nn

    ce = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_INDEX, reduction="none")
    return (ce(logits, target) * torch.pow(torch.as_tensor(edge_weight, device=ring.device), ring)).mean()


def confusion(target: np.ndarray, pred: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """Pixel confusion matrix (rows = truth, columns = prediction), float64 n_classes x n_classes,
    as sklearn's ``confusion_matrix(y, pred, labels=range(n_classes))``."""
    idx = np.asarray(target, dtype=np.int64).ravel() * n_classes + np.asarray(pred, dtype=np.int64).ravel()
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.float64)
