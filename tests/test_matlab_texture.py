"""MATLAB ports of use case 3's texture features (pipeline/matlab.py): graycomatrix, graycoprops,
nlfilter's border, colour_deconvolution, rgb2gray, the nearest 0.25 resize; values computed by hand.

graycomatrix/graycoprops/nlfilter/rgb2gray follow MATLAB's documented definitions (no MATLAB was
run); colour_deconvolution follows the mex source of the original (Misc-Utils/colour_deconvolution.c).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline import matlab


def test_gray_levels_of_uint8_eight_levels():
    # slope 8/255: level = floor(8 v / 255) + 1, clipped to 8: 31 -> 0.97 -> 1; 32 -> 1.004 -> 2; 255 -> 9 -> 8
    v = np.array([0, 31, 32, 63, 64, 254, 255], np.uint8)
    assert matlab.gray_levels(v).tolist() == [1, 1, 2, 2, 3, 8, 8]


def test_graycomatrix_symmetric_by_hand():
    # levels [[1 1 8], [1 8 8]]; right-neighbour pairs (1,1), (1,8), (1,8), (8,8); plus the transpose
    w = np.array([[0, 0, 255], [0, 255, 255]], np.uint8)
    g = matlab.graycomatrix(w, 8, symmetric=True)
    want = np.zeros((8, 8))
    want[0, 0], want[0, 7], want[7, 0], want[7, 7] = 2, 2, 2, 2
    assert np.array_equal(g, want)
    assert np.array_equal(matlab.graycomatrix(w, 8), _asym())  # not symmetric: the four pairs as they are


def _asym() -> np.ndarray:
    g = np.zeros((8, 8))
    g[0, 0], g[0, 7], g[7, 7] = 1, 2, 1
    return g


def test_graycoprops_by_hand():
    # p = 1/4 at (1,1), (1,8), (8,1), (8,8): contrast 2 * 49 / 4; mu 4.5, sigma 3.5, covariance
    # (12.25 + 12.25 - 12.25 - 12.25) / 4 = 0; energy 4 / 16; homogeneity 1/4 + 1/4 + 2 (1/4) / 8
    p = matlab.graycoprops(matlab.graycomatrix(np.array([[0, 0, 255], [0, 255, 255]], np.uint8), 8, symmetric=True))
    assert p == {"Contrast": 24.5, "Correlation": 0.0, "Energy": 0.25, "Homogeneity": 0.5625}
    # one pair (1,8) made symmetric: p = 1/2 at (1,8) and (8,1): covariance -12.25 = -sigma^2: correlation -1
    q = matlab.graycoprops(matlab.graycomatrix(np.array([[0, 255]], np.uint8), 8, symmetric=True))
    assert q["Contrast"] == 49 and q["Correlation"] == pytest.approx(-1, abs=1e-15)
    assert q["Energy"] == 0.5 and q["Homogeneity"] == 0.125


def test_graycoprops_of_a_constant_window_has_nan_correlation():
    p = matlab.graycoprops(matlab.graycomatrix(np.full((4, 4), 100, np.uint8), 8, symmetric=True))
    assert p["Contrast"] == 0 and p["Energy"] == 1 and p["Homogeneity"] == 1 and math.isnan(p["Correlation"])


def test_nlfilter_pads_with_zeros_15_before_16_after():
    a = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
    aa = matlab.nlfilter_pad(a, (4, 4))  # floor((4 - 1) / 2) = 1 before, 2 after
    assert aa.shape == (6, 6) and np.array_equal(aa[1:4, 1:4], a) and aa.sum() == a.sum()
    aa = matlab.nlfilter_pad(a, (32, 32))
    assert aa.shape == (34, 34) and aa[15, 15] == 1 and aa[17, 17] == 9


def test_glcm_features_of_one_white_pixel_in_the_zero_padding():
    # a 1x1 image of 255 in its 32x32 window: 15 zero rows above, 16 below; 32 x 31 right-neighbour
    # pairs, two of them touch the pixel: (1,8) and (8,1); the other 990 are (1,1). Symmetric: 1980
    # (1,1), 2 (1,8), 2 (8,1), total 1984
    f = matlab.glcm_features(np.array([[255]], np.uint8))[0, 0]
    n = 1984
    p11, p18 = 1980 / n, 2 / n
    mu = 1 * (p11 + p18) + 8 * p18
    var = (1 - mu) ** 2 * (p11 + p18) + (8 - mu) ** 2 * p18
    cov = p11 * (1 - mu) ** 2 + 2 * p18 * (1 - mu) * (8 - mu)
    want = [4 * 49 / n, cov / var, p11**2 + 2 * p18**2, p11 + 2 * p18 / 8]
    assert f == pytest.approx(want, rel=1e-12)


def test_glcm_window_orientation_with_an_even_window():
    # window 4: rows i-1..i+2, columns j-1..j+2; a lone 255 at (3, 3) is seen by pixels 1..4 x 1..4 only
    a = np.zeros((6, 6), np.uint8)
    a[3, 3] = 255
    seen = matlab.glcm_features(a, window=4)[..., 0] > 0
    want = np.zeros((6, 6), bool)
    want[1:5, 1:5] = True
    assert np.array_equal(seen, want)


@pytest.mark.parametrize("window", [5, 8, 32])
def test_glcm_features_equal_the_per_pixel_nlfilter_loop(window):
    rng = np.random.RandomState(0)
    a = rng.randint(0, 256, (11, 13)).astype(np.uint8)
    a[:6, :6] = 40  # constant corner: NaN correlations where a window sees only it
    fast = matlab.glcm_features(a, window)
    slow = matlab.nlfilter(a, (window, window), matlab.glcm_window_features, 4)
    assert np.array_equal(np.isnan(fast), np.isnan(slow))
    assert np.allclose(np.nan_to_num(fast), np.nan_to_num(slow), rtol=0, atol=1e-12)


def test_colour_deconvolution_haematoxylin_by_hand():
    # the mex's formula per pixel (OD -255 ln((v+1)/255)/ln 255; q row 1; exp(-(sum - 255) ln 255 / 255),
    # capped at 255, floor(x + .5)): white 255, black 9, grey 128 -> 168, (100, 50, 150) -> 64
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [128, 128, 128], [100, 50, 150]]], np.uint8)
    h, e, third = matlab.colour_deconvolution(rgb)
    assert h.tolist() == [[255, 9, 168, 64]] and h.dtype == np.uint8
    # the q matrix is the inverse of the normalised stain vectors (H, E, their complement)
    cos = np.array([v / np.linalg.norm(v) for v in matlab.HE_STAINS[:2]])
    third_v = np.sqrt(np.clip(1 - (cos**2).sum(0), 0, None))
    m = np.vstack([cos, third_v / np.linalg.norm(third_v)])
    assert np.allclose(matlab.stain_matrix_q(), np.linalg.inv(m).T, atol=1e-12)


def test_rgb2gray_rounds_uint8():
    # 0.298936021293775*100 + 0.587043074451121*50 + 0.114020904255103*150 = 76.349 -> 76
    assert matlab.rgb2gray(np.array([[[100, 50, 150]]], np.uint8)).tolist() == [[76]]
    assert matlab.rgb2gray(np.array([[[1.0, 0.0, 0.0]]]))[0, 0] == pytest.approx(0.298936021293775)


def test_nearest_quarter_resize_takes_4i_minus_1_and_reflects():
    # imresize(., .25, 'near'): ceil(H/4) rows; 1-based output i takes input 4i-1; past the end reflects
    col = np.arange(9, dtype=np.uint8)[:, None]
    assert matlab.imresize_scale(col, 0.25, method="nearest").ravel().tolist() == [2, 6, 7]
    rows = np.arange(522, dtype=np.uint16)[:, None]
    out = matlab.imresize_scale(rows, 0.25, method="nearest").ravel()
    assert len(out) == 131 and out[0] == 2 and out[-2] == 518 and out[-1] == 521


def test_datasample_weighted_takes_the_only_nonzero_weight():
    w = np.array([0, 0, 3.0, 0])
    rng = np.random.RandomState(0)
    assert {matlab.datasample_weighted(w, rng) for _ in range(20)} == {2}
