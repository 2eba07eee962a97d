"""Shared patch sampling from whole images: geometry, names, centre selection (hand cases)."""

from __future__ import annotations

import numpy as np

from pipeline import folds, sampling


def test_patch_geometry_is_one_pixel_off_the_step5_window():
    io = np.arange(200 * 200 * 3, dtype=np.int64).reshape(200, 200, 3) % 997
    r, c = 100, 120  # 1-based centre; 0-based (99, 119)
    patch = sampling.cut_patch(io, r, c, 0)
    assert patch.shape == (32, 32, 3)
    assert np.array_equal(patch, io[99 - 17 : 99 + 15, 119 - 17 : 119 + 15])  # rows r0-17 .. r0+14
    rot = sampling.cut_patch(io, r, c, 90)
    block = io[r - 33 : r + 31, c - 33 : c + 31]
    assert np.array_equal(rot, np.rot90(block)[15:47, 15:47])


def test_names():
    assert sampling.patch_name("10256_1", 0, "e", 1, 90) == "10256_1_0_e_1_90.png"
    assert folds.patient_of("10256_1_0_e_1_90.png") == "10256"


def test_sample_centres_border_and_count():
    mask = np.zeros((100, 100), bool)
    mask[10, 50] = True  # 1-based row 11: too close to the border
    mask[50:53, 50] = True
    r, c = sampling.sample_centres(mask, 2.4, np.random.RandomState(0), mask.shape)
    assert len(r) == 2 and set(r) <= {51, 52, 53} and set(c) == {51}
    r, c = sampling.sample_centres(mask, 100, np.random.RandomState(0), mask.shape)
    assert sorted(r) == [51, 52, 53]  # take what exists
