"""Paired comparison of two systems over the same test images (pure functions, no I/O).

Pooled pixel F over a handful of images says little about which system is better: a difference of
a few hundredths may be one image. Here each test image gives one F per system, and the pairs give:

- the mean difference (B - A) and how many images B wins, loses and ties;
- the two-sided exact sign test over the images that are not ties (binomial, p = 1/2): the
  probability of a split at least as uneven as the one seen when neither system is better;
- a percentile bootstrap 95% interval of the mean difference (images resampled with replacement,
  seeded: one seed gives one interval).

With 2 test images the sign test cannot go below p = 0.5 and the interval is two points wide:
the table says so by its numbers rather than by hiding them.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Bootstrap resamples of the interval.
N_BOOT = 10000


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value of ``wins`` against ``losses`` (ties left out before):
    ``min(1, 2 * P(X <= min(wins, losses)))`` for X ~ Binomial(wins + losses, 1/2); 1.0 for no pairs."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def bootstrap_ci(
    diffs: Sequence[float], seed: int = 1, n_boot: int = N_BOOT, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``diffs`` (None for no diffs): ``n_boot``
    resamples of len(diffs) values drawn with replacement by ``numpy.random.default_rng(seed)``."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return None
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def compare(
    a: dict[str, float | None], b: dict[str, float | None], seed: int = 1, n_boot: int = N_BOOT
) -> dict[str, object]:
    """Per-image scores of system A and system B (image name -> F, None when undefined) compared over
    the images both score: {"n", "images", "mean_a", "mean_b", "mean_diff" (B - A), "wins" (B > A),
    "losses", "ties", "sign_p", "ci95" ([lo, hi] of the mean difference, or None), "left_out"
    (images without a score on either side)}."""
    names = sorted(n for n in set(a) & set(b) if a[n] is not None and b[n] is not None)
    left_out = sorted((set(a) | set(b)) - set(names))
    da = np.array([a[n] for n in names], dtype=np.float64)
    db = np.array([b[n] for n in names], dtype=np.float64)
    d = db - da
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    ci = bootstrap_ci(d, seed, n_boot)
    return {
        "n": len(names),
        "images": names,
        "mean_a": float(da.mean()) if names else None,
        "mean_b": float(db.mean()) if names else None,
        "mean_diff": float(d.mean()) if names else None,
        "wins": wins,
        "losses": losses,
        "ties": len(names) - wins - losses,
        "sign_p": sign_test(wins, losses),
        "ci95": list(ci) if ci else None,
        "left_out": left_out,
    }
