"""Nuclei data set (use case 1 and RADHicaL): MATLAB helpers, makeNegativeMask, masks, grading, use case 1."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline import crossval, lists, nuclei, nuclei_grading
from pipeline.matlab import (
    bwareaopen,
    bwlabel,
    imadjust,
    imfill_holes,
    imfilter,
    imresize,
    imresize_scale,
    roundn,
    stretchlim,
)
from pipeline.usecases import nuclei as uc1

# --------------------------------------------------------------------------- MATLAB helpers


def test_imfilter_correlates_with_matlab_centre():
    a = np.zeros((4, 5))
    a[1, 2] = 1
    # even kernel: centre floor((2+1)/2) = 1 (1-based), so out(i, j) = sum h(p, q) a(i+p-1, j+q-1):
    # the impulse at (1, 2) appears at out(1-p+1, 2-q+1) with weight h(p, q)
    out = imfilter(a, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert out[0, 1] == 4 and out[0, 2] == 3 and out[1, 1] == 2 and out[1, 2] == 1 and out.sum() == 10
    # odd kernel: correlation, not convolution: out(0, 1) sees a(1, 2) through h(3, 3)
    out3 = imfilter(a, np.arange(1, 10, dtype=float).reshape(3, 3))
    assert out3[0, 1] == 9 and out3[2, 3] == 1
    # 4x4 box: centre 2, so rows i-1..i+2 and columns j-1..j+2; zero padding outside
    box = imfilter(a, np.ones((4, 4)) / 16)
    assert (box[0:3, 0:4] == 1 / 16).all() and box[3].sum() == 0 and box[:, 4].sum() == 0
    assert imfilter(np.ones((3, 3), bool), np.ones((2, 2))).tolist() == [[4, 4, 2], [4, 4, 2], [2, 2, 1]]


def test_roundn_halves_away_from_zero():
    # round(12.5) = 13 (MATLAB), 99.4 -> 99, -12.5 -> -13
    assert roundn(np.array([0.125, 0.994, -0.125, 0.0]), -2).tolist() == [0.13, 0.99, -0.13, 0.0]


def test_stretchlim_and_imadjust_by_hand():
    # 20 pixels: one 0, one 10, eight 50, ten 100: cdf(0) = .05 is not > .05, cdf(10) = .10 is,
    # so low = 10/255; cdf(50) = .5 >= .5, so high = 50/255
    img = np.array([0, 10] + [50] * 8 + [100] * 10, np.uint8).reshape(4, 5)
    lo, hi = stretchlim(img, (0.05, 0.5))
    assert (lo, hi) == (10 / 255, 50 / 255)
    j = imadjust(img, (lo, hi))
    # (v - 10) / 40 clipped to [0, 1], x 255, rounded: 0 -> 0, 10 -> 0, 30 -> 127.5 -> 128, 50 -> 255
    assert imadjust(np.array([[0, 10, 30, 50, 100]], np.uint8), (lo, hi)).tolist() == [[0, 0, 128, 255, 255]]
    assert j.dtype == np.uint8
    assert stretchlim(np.full((3, 3), 7, np.uint8), (0.05, 0.5)) == (0.0, 1.0)  # flat image


def test_bwlabel_numbers_components_in_column_major_order():
    bw = np.array([[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    lab, n = bwlabel(bw)
    assert n == 3 and lab[2, 0] == 1 and lab[0, 1] == 2 and lab[1, 3] == 3
    # diagonal pixels are one component with 8-connectivity, two with 4
    diag = np.eye(3, dtype=bool)
    assert bwlabel(diag)[1] == 1 and bwlabel(diag, conn=4)[1] == 3


def test_bwareaopen_and_imfill_holes():
    bw = np.zeros((10, 10), bool)
    bw[0:3, 0:3] = True  # 9 pixels
    bw[5:9, 5:9] = True  # 16 pixels
    assert bwareaopen(bw, 10).sum() == 16 and bwareaopen(bw, 9).sum() == 25
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    assert imfill_holes(ring)[3, 3]
    # a background pixel touching the outside only diagonally is a hole for 4-connected background
    corner = np.zeros((4, 4), bool)
    corner[0, 1] = corner[1, 0] = corner[1, 2] = corner[2, 1] = True
    assert imfill_holes(corner)[1, 1] and not imfill_holes(corner, conn=8)[1, 1]


def test_imresize_bilinear_and_nearest_by_hand():
    row = np.array([[0.0, 0, 1, 1, 1, 1, 0, 0]])
    # shrink by .5, antialiased triangle of half-width 2: output 1 at u = 1.5 takes
    # .125 v0 + .375 v1 + .375 v2 + .125 v3 (1-based, v0 mirrored to v1) = .5 v1 + .375 v2 + .125 v3
    out = imresize_scale(row, 0.5, method="bilinear")
    np.testing.assert_allclose(out, [[0.125, 0.875, 0.875, 0.125]])
    # nearest (no antialiasing): output x samples input floor(x/s + .5(1 - 1/s) + .5) = 2x (1-based)
    assert imresize_scale(np.arange(8.0)[None, :], 0.5, method="nearest").tolist() == [[1.0, 3.0, 5.0, 7.0]]
    # x0.1: input 10x - 4.5 + .5 -> 6, 16 (1-based)
    assert imresize_scale(np.arange(20.0)[None, :], 0.1, method="nearest").tolist() == [[5.0, 15.0]]
    # logical images: im2uint8, resized as uint8, > 128 (MATLAB imresize.m)
    m = np.array([[0, 0, 1, 1, 1, 1, 0, 0]], bool)
    assert imresize(m, (1, 4), method="bilinear").tolist() == [[False, True, True, False]]


# --------------------------------------------------------------------------- makeNegativeMask


def _negative_image() -> np.ndarray:
    red = np.full((120, 120), 200, np.uint8)
    red[50:62, 50:62] = 20  # dark square, 144 px (kept: >= 100)
    red[10:13, 10:13] = 20  # dark speck, 9 px (removed: < 100)
    red[10:24, 80:94] = 20  # ring 14x14 of width 3 (132 px) around a bright 8x8 hole
    red[13:21, 83:91] = 200
    red[100:110, 0:60] = 100  # band A, 600 px
    red[112:117, 0:60] = 120  # band B, 300 px
    return np.dstack([red, np.full_like(red, 150), np.full_like(red, 180)])


def test_negative_mask_faithful_and_corrected_by_hand():
    io = _negative_image()
    # cdf(20) = 285/14400 = .0198, cdf(100) = 885/14400 = .0615 > .05: low = 100/255; high = 200/255.
    # Faithful (Q2): J is uint8, J < .3 means J == 0: red <= 100 (square, speck, ring, band A).
    dark = nuclei.dark_regions(io)
    assert dark[55, 55] and dark[105, 10] and not dark[114, 10]
    assert not dark[11, 11]  # speck removed (9 < 100 px)
    assert dark[16, 86]  # the ring's hole is filled
    # corrected: J / 255 < .3, i.e. (red - 100) / 100 < .3 after rounding: band B (120 -> J = 51) too
    assert nuclei.dark_regions(io, rule="corrected")[114, 10]
    neg = nuclei.negative_mask(io)
    # 50x50 window: rows r-24 .. r+25, columns c-24 .. c+25. Row 24 above the square (rows 50..61)
    # sees rows 0..49: clear; row 25 sees row 50: not negative. Column 40 sees columns 16..65: the
    # square, not the speck (10..12) nor the ring (80..93).
    assert neg[24, 40] and not neg[25, 40]
    assert not neg[70, 30]  # the square is within reach
    assert neg[35, 20]  # only the (removed) speck is near
    with pytest.raises(ValueError, match="negative-rule"):
        nuclei.negative_mask(io, rule="other")


def test_edge_ring_is_three_dilations_minus_mask():
    m = np.zeros((11, 11))
    m[5, 5] = 255.0
    ring = nuclei.edge_ring(m, 3)
    assert ring.sum() == 48 and not ring[5, 5] and ring[2:9, 2:9].sum() == 48


def test_read_mask_kinds_and_errors(tmp_path):
    a = np.zeros((6, 8), np.uint8)
    a[2:4, 2:5] = 255
    Image.fromarray(a).save(tmp_path / "x_mask.png")
    Image.fromarray(a > 0).convert("1").save(tmp_path / "y_mask.png")
    m8 = nuclei.read_mask(tmp_path / "x_mask.png")
    m1 = nuclei.read_mask(tmp_path / "y_mask.png")
    assert m8.kind == "8-bit 0/255" and m8.values.max() == 255 and m1.kind == "1-bit" and m1.values.max() == 1
    assert nuclei.mask_values(m8, "binary").max() == 1 and nuclei.mask_values(m8, "faithful").max() == 255
    with pytest.raises(nuclei.BadMask, match="x_mask.png: mask is 6x8, its image is 7x8"):
        nuclei.read_mask(tmp_path / "x_mask.png", (7, 8))
    with pytest.raises(nuclei.BadMask, match="does not exist"):
        nuclei.read_mask(tmp_path / "z_mask.png")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "rgb_mask.png")
    with pytest.raises(nuclei.BadMask, match="3 channels"):
        nuclei.read_mask(tmp_path / "rgb_mask.png")


# --------------------------------------------------------------------------- grading


def test_grade_single_image_by_hand():
    gt = np.zeros((10, 10), bool)
    gt[1:3, 1:3] = True  # A: 4 px, label 1 (first in column 1)
    gt[6, 5:8] = True  # B: 3 px, label 2 (column 5)
    gt[0, 9] = True  # C: 1 px, label 3 (column 9)
    pred = np.zeros((10, 10), bool)
    pred[1:4, 2:4] = True  # touches A at (1,2), (2,2): TP 2, D = 6 px -> FP 4, FN 2
    pred[0, 9] = True  # exactly C
    pred[8, 0] = True  # touches nothing: costs nothing
    g = nuclei_grading.grade_single_image(gt, pred)
    # A: F = 4 / (4 + 4 + 2) = .4, TPR .5, PPV 2/6, not detected (TP 2 is not > 4/2);
    # B: nothing, F 0, TPR 0, PPV unset -> 0 because C after it has one; C: F 1, detected
    np.testing.assert_allclose(g.fscore, [0.4, 0.0, 1.0])
    np.testing.assert_allclose(g.tpr, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(g.ppv, [1 / 3, 0.0, 1.0])
    assert g.det.tolist() == [0, 0, 1]
    s = nuclei_grading.summarize([g])
    assert s["f_score"] == pytest.approx(1.4 / 3) and s["detection_rate"] == pytest.approx(1 / 3)
    assert s["ppv"] == pytest.approx(4 / 9) and s["nuclei"] == 3
    # without C, B is the last nucleus: its PPV is absent, not 0 (MATLAB's growing vector)
    gt[0, 9] = pred[0, 9] = False
    assert nuclei_grading.grade_single_image(gt, pred).ppv.tolist() == [pytest.approx(1 / 3)]


def test_grading_counts_a_component_for_every_nucleus_it_touches_and_resizes_nearest():
    gt = np.zeros((4, 8), bool)
    gt[1, 1:3] = True
    gt[1, 5:7] = True
    pred = np.zeros((4, 8), bool)
    pred[1, 1:7] = True  # one component of 6 px over both: each gets TP 2, FP 4
    g = nuclei_grading.grade_single_image(gt, pred)
    assert g.tp.tolist() == [2, 2] and g.fp.tolist() == [4, 4] and g.fn.tolist() == [0, 0]
    # a half-size prediction is resized with nearest neighbour to the annotation's size
    small = np.zeros((2, 4), bool)
    small[0, 0:2] = True
    assert nuclei_grading.grade_single_image(gt, small).tp.tolist() == [2, 0]
    empty = nuclei_grading.grade_single_image(np.zeros((3, 3)), pred[:3, :3])
    assert empty.n == 0 and nuclei_grading.summarize([empty])["f_score"] is None


# --------------------------------------------------------------------------- use case 1


def test_usecase1_patches_and_lists_on_a_generated_cohort(tmp_path):
    data = tmp_path / "data"
    nuclei.make_cohort(data, n_patients=5, size=160, seed=2)
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(data / "10254_500_f00001_mask.png")  # wrong size
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(data / "7777_500_f00001_original.tif")  # no mask
    cfg = crossval.Config(data=data, work=tmp_path / "w", params=uc1.Params(max_positive=20), show_progress=False)
    out = crossval.run(uc1.Nuclei(), cfg, stages=("patches", "folds"))
    assert any("10254_500_f00001_mask.png: mask is 50x50, its image is 160x160" in p for p in out["problems"])
    assert set(out["folds"]) == {"10250", "10251", "10252", "10253", "10254"}
    counts = out["images"]["10250_500_f00001_original.tif"]
    assert counts["p"] == 20 and counts["e"] == 20 and counts["b"] <= 6  # round(20 * .3) at most
    names = lists.read_list(tmp_path / "w" / "lists" / "train_w32_1.txt") + lists.read_list(
        tmp_path / "w" / "lists" / "test_w32_1.txt"
    )
    assert {e.name.split("_")[3] for e in names} >= {"p", "e"}
    assert all((tmp_path / "w" / "subs" / e.name).is_file() for e in names)
    first = next(e for e in names if e.name.startswith("10250_1_1_p_1_"))
    assert first.name == "10250_1_1_p_1_0.png" and first.label == 1
    with Image.open(tmp_path / "w" / "subs" / first.name) as im:
        assert im.size == (32, 32)


def test_regress_released_nuclei_models_on_a_generated_image(tmp_path):
    from tests.conftest import RELEASED, need

    rel = need(RELEASED / "uc1-nuclei")
    from pipeline import released

    assert "uc1-nuclei" in released.folders()
    files = released.fetch(["uc1-nuclei"], tmp_path / "rel", from_dir=RELEASED, show_progress=False)
    assert len(files) == 10
    img = nuclei.make_cohort(tmp_path / "data", n_patients=1, size=96, seed=9)[0]
    models = [
        ("released fold 1", rel / "1_caffenet_train_w32_iter_600000.caffemodel", rel / "DB_train_w32_1.binaryproto"),
        ("copy of fold 1", files[0], files[5]),
    ]
    rep = uc1.regress_models(models, [img], tmp_path / "out", uc1.Params(max_positive=30), "fcn")
    a, b = rep["rows"]
    assert rep["patches"] > 30 and a["patch"] == b["patch"] and a["pixel"] == b["pixel"]
    assert a["patch"]["tp"] + a["patch"]["fn"] == 30  # the positives sampled
    assert "| released fold 1 |" in (tmp_path / "out" / "regress_nuclei.md").read_text()


def test_usecase1_outputs_leave_nucleus_polygons_for_qupath(tmp_path):
    """Issue 29: fold 1 of a tiny generated cohort through step 5 (the real tools, 10 iterations): each
    test image's class map as polygons beside its maps, exact when rasterised back at step 5's scale."""
    from tests.conftest import run_tiny_usecase
    from tests.geojson_checks import load_checked, raster

    data, work = tmp_path / "data", tmp_path / "w"
    nuclei.make_cohort(data, n_patients=5, size=96, seed=2)
    run_tiny_usecase("usecase1", data, work, 10, "--folds", "1", "--stages", "patches,folds,dbs,prototxt,train,outputs")
    maps = sorted((work / "output" / "1").glob("*_class.png"))
    assert maps
    for m in maps:
        f = m.with_name(m.name[: -len("_class.png")] + ".geojson")
        fc = load_checked(f)
        assert {ft["properties"]["classification"]["name"] for ft in fc["features"]} <= {"Nucleus"}
        cls = np.load(m.with_name(f.stem + "_prob.npy")).argmax(axis=2) == 1
        assert np.array_equal(raster(fc, cls.shape, fc["pipeline"]["record"]["resize"]), cls)
