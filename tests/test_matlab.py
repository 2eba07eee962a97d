"""MATLAB imresize / imrotate ports against values computed by hand."""
import numpy as np
import pytest

from pipeline.matlab import contributions, imresize, imrotate_crop


def test_contributions_halving_by_hand():
    # in 4 -> out 2, antialiased bicubic: kernel 0.5*cubic(0.5 x), 8 taps after trimming,
    # weights normalised by their sum (2.0); border indices mirrored (aux = 1 2 3 4 4 3 2 1).
    w, idx = contributions(4, 2, 0.5)
    np.testing.assert_allclose(w[0], [-0.01171875, -0.03515625, 0.11328125, 0.43359375,
                                      0.43359375, 0.11328125, -0.03515625, -0.01171875])
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
