"""Benchmark: use case 3's mining features (GLCM statistics of every pixel's 32x32 window).

Times, on the same generated gland image at 0.25 (padded as step 1 pads it), the vectorised
``pipeline.matlab.glcm_features`` over every pixel against the naive per-pixel loop
(``pipeline.matlab.nlfilter`` calling graycomatrix + graycoprops per window, as nlfilter_aj.m does)
over the first rows only (it is slow), checks that both give the same values there, and prints
features per second and the ratio measured in this one run; then the whole step 1 of the image.

    python bench/tubule.py [--size 775x522] [--loop-rows 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import matlab  # noqa: E402
from pipeline.usecases.tubule import demo, features, mining  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="775x522", help="WxH of the generated image at 40x (the data set's 775x522)")
    ap.add_argument("--loop-rows", type=int, default=4, help="rows of the padded image the per-pixel loop computes")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    rng = np.random.RandomState(0)
    img, anno = demo.draw(rng, max(w, h), 5)
    img, anno = img[:h, :w], anno[:h, :w]
    io = matlab.imresize_scale(img, 0.25, method="nearest")
    io = np.pad(io, ((32, 32), (32, 32), (0, 0)), mode="symmetric")
    c1 = matlab.colour_deconvolution(io)[0]
    n_all = c1.shape[0] * c1.shape[1]

    t = time.perf_counter()
    fast = matlab.glcm_features(c1)
    t_fast = time.perf_counter() - t

    t = time.perf_counter()
    slow = _loop_rows(c1, a.loop_rows)
    t_slow = time.perf_counter() - t
    n_slow = slow.shape[0] * slow.shape[1]
    same = np.array_equal(np.isnan(fast[: a.loop_rows]), np.isnan(slow)) and np.allclose(
        np.nan_to_num(fast[: a.loop_rows]), np.nan_to_num(slow), rtol=0, atol=1e-12
    )

    x = features.pixel_features(io)
    mask = np.pad(matlab.imresize_scale(anno, 0.25, method="nearest"), 32, mode="symmetric")
    t = time.perf_counter()
    x = features.pixel_features(io)
    t_feat = time.perf_counter() - t
    t = time.perf_counter()
    train = features.training_pixels(mask.shape, 12000, rng)
    post = features.posterior(x, train, mask.T.ravel()[train])
    t_lda = time.perf_counter() - t
    hh, ww = mask.shape
    t = time.perf_counter()
    pos = mining.sample_with_clearing(np.where(mask, post[:, 0].reshape(ww, hh).T, 0), 16, 3, 2000, rng)
    t_samp = time.perf_counter() - t

    print(
        f"\n{'step (one image, ' + str(c1.shape[0]) + 'x' + str(c1.shape[1]) + ' padded at 0.25)':<52} "
        f"{'pixels':>8} {'seconds':>9} {'pixels/s':>11} {'vs loop':>9}"
    )
    base = n_slow / t_slow
    for name, n, dt in (
        ("GLCM, per-pixel loop (nlfilter_aj as MATLAB runs it)", n_slow, t_slow),
        ("GLCM, vectorised (box sums), every pixel", n_all, t_fast),
    ):
        print(f"{name:<52} {n:>8} {dt:>9.3f} {n / dt:>11.0f} {n / dt / base:>8.1f}x")
    print(f"{'all 7 features (colour deconvolution + GLCM)':<52} {n_all:>8} {t_feat:>9.3f} {n_all / t_feat:>11.0f}")
    print(f"{'LDA on 12,000 pixels, posteriors of all':<52} {n_all:>8} {t_lda:>9.3f}")
    print(f"{'sampler, hard positives (limit 2000)':<52} {len(pos):>8} {t_samp:>9.3f}")
    print(f"\nsame values as the loop on its rows: {same}; machine: {os.cpu_count()} cores")
    print(
        f"RESULT glcm_features_per_s={n_all / t_fast:.0f} loop_features_per_s={base:.0f} ratio={n_all / t_fast / base:.1f}"
    )
    return 0 if same else 1


def _loop_rows(c1: np.ndarray, n_rows: int) -> np.ndarray:
    """nlfilter_aj's loop (:func:`pipeline.matlab.nlfilter`: graycomatrix + graycoprops of each window
    of the zero-padded image) over the first ``n_rows`` rows only, the whole image around them."""
    aa = matlab.nlfilter_pad(c1, (32, 32))
    out = np.zeros((n_rows, c1.shape[1], 4))
    for i in range(n_rows):
        for j in range(c1.shape[1]):
            out[i, j] = matlab.glcm_window_features(aa[i : i + 32, j : j + 32])
    return out


if __name__ == "__main__":
    sys.exit(main())
