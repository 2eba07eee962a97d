"""MATLAB imresize / imrotate ports against values computed by hand."""

import numpy as np
import pytest

from pipeline.matlab import contributions, imresize, imrotate_crop


def test_contributions_halving_by_hand():
    # in 4 -> out 2, antialiased bicubic: kernel 0.5*cubic(0.5 x), 8 taps after trimming,
    # weights normalised by their sum (2.0); border indices mirrored (aux = 1 2 3 4 4 3 2 1).
    w, idx = contributions(4, 2, 0.5)
    np.testing.assert_allclose(
        w[0], [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875]
    )
    assert idx[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 3]


def test_imresize_row_by_hand():
    # out1 = .546875 v1 + .3984375 v2 + .1015625 v3 - .046875 v4 (see test above)
    row = np.array([[0, 0, 255, 255]], dtype=np.float64)
    np.testing.assert_allclose(imresize(row, (1, 2)), [[13.9453125, 241.0546875]])
    assert imresize(row.astype(np.uint8), (1, 2)).tolist() == [[14, 241]]


def test_imresize_constant_and_shape():
    a = np.full((50, 50, 3), 77, dtype=np.uint8)
    out = imresize(a, (32, 32))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out == 77).all()


def test_imresize_rounds_between_passes():
    # uint8 input: rows then columns, each pass rounded to uint8 (MATLAB imresizemex keeps the class)
    rng = np.random.RandomState(0)
    a = rng.randint(0, 256, (50, 50)).astype(np.uint8)
    from pipeline.matlab import _resize_along

    two_pass = _resize_along(_resize_along(a, 0, 32, True), 1, 32, True)
    assert np.array_equal(imresize(a, (32, 32)), two_pass)


def test_imrotate_multiples_of_90_exact():
    a = np.arange(50 * 50 * 3, dtype=np.int64).reshape(50, 50, 3) % 251
    assert np.array_equal(imrotate_crop(a, 90), np.rot90(a, 1))
    assert np.array_equal(imrotate_crop(a, 0), a)
    assert np.array_equal(imrotate_crop(a, 180), a[::-1, ::-1])


@pytest.mark.parametrize("angle", [90.0000001, 270.0000001])
def test_imrotate_general_path_matches_rot90(angle):
    a = np.arange(36).reshape(6, 6)
    assert np.array_equal(imrotate_crop(a, angle), np.rot90(a, round(angle / 90)))


def test_imrotate_45_nearest_crop():
    a = np.ones((5, 5), dtype=np.uint8)
    out = imrotate_crop(a, 45)
    # the corners fall outside the rotated square: zero; the centre cross stays
    assert out[0, 0] == 0 and out[4, 4] == 0 and out[2, :].all() and out[:, 2].all()


# ----------------------------------------------------------------- imrotate(A, 90*k, 'crop') on non-square A
# imrotate.m's 90-degree branch: imbegin = (max(size) == size) * abs(diff(floor(size/2))), vec = 1:min(size);
# B = zeros(size); B(imbegin(1)+vec, imbegin(2)+vec, :) = rot90(A(same), k). With a[r, c] = 100 r + c:


def _grid(h, w):
    return (100 * np.arange(h)[:, None] + np.arange(w)[None, :]).astype(np.int64)


def test_imrotate_90_crop_49x50_by_hand():
    # floor(49/2) = 24, floor(50/2) = 25: d = 1 column in (W is the larger side); the 49x49 square is
    # a[:, 1:50]; rot90: out[i, 1 + j] = a[j, 1 + 48 - i] = a[j, 49 - i]; column 0 stays 0.
    out = imrotate_crop(_grid(49, 50), 90)
    assert out.shape == (49, 50) and not out[:, 0].any()
    assert out[0, :4].tolist() == [0, 49, 149, 249]  # a[0,49], a[1,49], a[2,49]
    assert out[48, 49] == 4801 and out[1, 1] == 48  # a[48, 1], a[0, 48]
    # 270 degrees = k 3: rot90(S, 3)[i, j] = S[48 - j, i] -> out[i, 1 + j] = a[48 - j, 1 + i]
    cw = imrotate_crop(_grid(49, 50), -90)
    assert np.array_equal(cw, imrotate_crop(_grid(49, 50), 270)) and not cw[:, 0].any()
    assert cw[0, 1] == 4801 and cw[0, 49] == 1 and cw[48, 1] == 4849


def test_imrotate_90_crop_50x49_by_hand():
    # H is the larger side: the square is a[1:50, :], one row in; out[1 + i, j] = a[1 + j, 48 - i]; row 0 stays 0
    out = imrotate_crop(_grid(50, 49), 90)
    assert out.shape == (50, 49) and not out[0].any()
    assert out[1, :3].tolist() == [148, 248, 348] and out[49, 48] == 4900


def test_imrotate_90_crop_48x51_by_hand():
    # floor(48/2) = 24, floor(51/2) = 25: d = 1; square a[:, 1:49], columns 0, 49, 50 stay 0 (not centred:
    # MATLAB's offset is the difference of the floored halves, not (51 - 48) / 2)
    out = imrotate_crop(_grid(48, 51), 90)
    assert not out[:, [0, 49, 50]].any()
    assert out[0, 1] == 48 and out[47, 48] == 4701 and out[0, 48] == 4748


def test_imrotate_90_then_idc_crop_of_a_49x50_patch():
    from pipeline.patches import center_crop_matlab

    # crop rows floor(49/2)-16 .. +15 = 8..39 (1-based) -> 7..38, cols 9..40 -> 8..39 (0-based);
    # with out[y, x] = a[x - 1, 49 - y]: crop[i, j] = a[7 + j, 42 - i]
    crop = center_crop_matlab(imrotate_crop(_grid(49, 50), 90))
    assert crop.shape == (32, 32) and crop[0, 0] == 742 and crop[31, 31] == 3811 and crop[0, 31] == 3842


def test_imrotate_45_non_square_by_hand():
    # 3x4, centre (1, 1.5) 0-based. Output (y, x) samples the input at
    # (1 + c (dx + dy), 1.5 + c (dx - dy)), c = cos 45 = sin 45 = 0.7071, dy = y - 1, dx = x - 1.5,
    # rounded to the nearest pixel (no ties: dx +- dy is never 0), 0 outside. E.g. (0, 1): dx - dy = 0.5,
    # dx + dy = -1.5 -> (1 - 1.061, 1.5 + 0.354) = (-0.06, 1.85) -> a[0, 2] = 3; (0, 0) -> row -0.77: outside.
    a = np.arange(1, 13).reshape(3, 4)
    assert imrotate_crop(a, 45).tolist() == [[0, 3, 8, 8], [1, 6, 7, 12], [5, 5, 10, 0]]


# ----------------------------------------------------------------- imresize of a logical mask


def test_imresize_logical_goes_through_uint8_and_128():
    from pipeline.matlab import imresize_scale

    a = np.array([[1, 1, 1, 1], [0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0]], dtype=bool)
    # MATLAB: uint8 0/255, halved rows then columns (bicubic, antialiased), rounded after each pass, > 128.
    # Per-index weights of output 2 of 4 -> 2 (mirrored taps): .546875 (idx 3), .3984375 (2), .1015625 (1),
    # -.046875 (0); output 1 mirrors them. Rows pass, output row 2: column 0 = 255 (-.046875 + .546875)
    # = 127.5 -> 128; col 1 = 255 (.3984375 - .046875) = 89.6 -> 90; col 2 = 255 .8984375 = 229.1 -> 229;
    # col 3 = 255 .0546875 = 13.9 -> 14. Columns pass, output (2, 1): .546875*128 + .3984375*90
    # + .1015625*229 - .046875*14 = 128.46 -> 128, not > 128: False. Resized as doubles it is 0.5022 > 0.5.
    assert imresize_scale(a, 0.5).tolist() == [[True, True], [False, False]]
    assert imresize(a, (2, 2)).tolist() == [[True, True], [False, False]]


# ----------------------------------------------------------------- fspecial('disk', r)


def test_fspecial_disk_radius_1_closed_form():
    import math

    from pipeline.matlab import fspecial_disk

    # r = 1: the middle pixel lies inside (area 1); an edge pixel [0.5, 1.5] x [-0.5, 0.5] holds
    # int_{-1/2}^{1/2} (sqrt(1 - t^2) - 1/2) dt = pi/6 + sqrt(3)/4 - 1/2; a corner pixel
    # int_{1/2}^{sqrt(3)/2} (sqrt(1 - t^2) - 1/2) dt = pi/12 - (sqrt(3) - 1)/4. They sum to pi (the whole disk).
    edge = math.pi / 6 + math.sqrt(3) / 4 - 0.5
    corner = math.pi / 12 - (math.sqrt(3) - 1) / 4
    assert 1 + 4 * edge + 4 * corner == pytest.approx(math.pi, abs=1e-14)
    expect = np.array([[corner, edge, corner], [edge, 1, edge], [corner, edge, corner]]) / math.pi
    np.testing.assert_allclose(fspecial_disk(1), expect, rtol=0, atol=1e-15)


def _disk_area_in_pixel(r: float, cy: float, cx: float) -> float:
    """Exact area of the disk of radius r (centre 0) inside the unit pixel centred at (cy, cx), by
    adaptive quadrature of the covered chord length between its kinks (independent of fspecial.m)."""
    import math
    import warnings

    from scipy.integrate import quad

    x0, x1, y0, y1 = cx - 0.5, cx + 0.5, cy - 0.5, cy + 0.5

    def chord(x):
        h = math.sqrt(max(r * r - x * x, 0.0))
        return max(0.0, min(y1, h) - max(y0, -h))

    kinks = [s * math.sqrt(r * r - v * v) for v in (abs(y0), abs(y1)) if v <= r for s in (1, -1)] + [r, -r]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quad(
            chord, x0, x1, points=sorted(p for p in kinks if x0 < p < x1) or None, epsabs=1e-15, epsrel=1e-15, limit=200
        )[0]


def test_fspecial_disk_6_is_the_exact_pixel_areas():
    import math

    from pipeline.matlab import fspecial_disk

    # fspecial.m's piecewise formula gives each pixel's exact share of the disk; for radius 6 its
    # axis-end correction does not apply (36 >= 5.5^2 + 0.25), so h = area / (36 pi).
    k = fspecial_disk(6)
    assert k.shape == (13, 13)
    areas = np.array([[_disk_area_in_pixel(6, i - 6, j - 6) for j in range(13)] for i in range(13)])
    assert areas.sum() == pytest.approx(36 * math.pi, abs=1e-11)
    np.testing.assert_allclose(k, areas / (36 * math.pi), rtol=0, atol=1e-12)
    # corner of the kernel: pixel (6, 6) is outside (5.5^2 + 5.5^2 > 36), its neighbours straddle the arc
    assert k[0, 0] == 0 and k[0, 6] > 0


def test_fspecial_disk_small_radius_axis_correction():
    # r = 0.7: crad = 1 and 0.49 < 0.5^2 + 0.25, so fspecial.m replaces the four axis-end pixels with
    # sg0 (the disk's cap beyond x = 0.5); the result is still the exact areas.
    import math

    from pipeline.matlab import fspecial_disk

    areas = np.array([[_disk_area_in_pixel(0.7, i - 1, j - 1) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(fspecial_disk(0.7), areas / (math.pi * 0.49), rtol=0, atol=1e-12)


# ----------------------------------------------------------------- classify (Statistics Toolbox), type 'linear'


def test_classify_linear_two_features_by_hand():
    from pipeline.matlab import classify_linear

    # groups at (1, 1) and (5, 5), each a 2x2 square of points +-1 around its mean: pooled covariance
    # 8 / (8 - 2) I = 4/3 I (classify.m divides by n - groups). Log posterior odds with the uniform prior:
    # (4, 4) . x / (4/3) - (50 - 2) / (2 * 4/3) = 3 (x1 + x2) - 18: 0 at (3, 3), 3 at (3, 4).
    sq = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], dtype=float)
    training = np.vstack([sq + 1, sq + 5])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    cls, post = classify_linear(np.array([[3.0, 3.0], [3.0, 4.0], [0.0, 0.0]]), training, group)
    np.testing.assert_allclose(post[:, 1], [0.5, 1 / (1 + np.exp(-3)), 1 / (1 + np.exp(18))], rtol=1e-12, atol=1e-15)
    assert cls.tolist() == [0, 1, 0]  # a tie goes to the first group (MATLAB max)
    with pytest.raises(ValueError, match="positive definite"):
        classify_linear(training, np.c_[training[:, 0], training[:, 0]], group)  # rank-1 pooled covariance
