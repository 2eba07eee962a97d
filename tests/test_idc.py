"""Use case 6 step 1: crop indices, names, rotations, skipped patches, list formats, counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline import lists
from pipeline.matlab import imresize
from pipeline.patches import center_crop_matlab
from pipeline.usecases.idc import patches as idc


def test_crop_indices_of_a_50x50_patch():
    a = np.arange(50 * 50).reshape(50, 50)
    assert np.array_equal(center_crop_matlab(a), a[8:40, 8:40])  # MATLAB 9..40


@pytest.mark.parametrize("shape,rows", [((50, 35), (8, 40)), ((41, 50), (3, 35)), ((34, 34), (0, 32))])
def test_crop_from_the_patch_own_centre(shape, rows):
    a = np.arange(shape[0] * shape[1]).reshape(shape)
    r2, c2 = shape[0] // 2, shape[1] // 2
    out = center_crop_matlab(a)
    assert out.shape == (32, 32)
    assert np.array_equal(out, a[r2 - 17 : r2 + 15, c2 - 17 : c2 + 15]) and (r2 - 17, r2 + 15) == rows


def test_crop_leaving_the_image_raises():
    with pytest.raises(IndexError):
        center_crop_matlab(np.zeros((50, 33)))


def test_output_names():
    assert idc.output_name("10253_idx5_x1001_y1001_class0.png", 1) == "10253_idx5_x1001_y1001_class01.png"
    assert idc.output_name("10253_idx5_x1001_y1001_class1.png", 3) == "10253_idx5_x1001_y1001_class13.png"


def test_variants_rotations():
    assert idc.VARIANTS["crop"].rotations == ((0, 90), (0, 90))
    assert idc.VARIANTS["crop-morerot"].rotations == ((0, 90), (0, 45, 90))
    assert idc.VARIANTS["resize"].method == "resize"


def test_make_patches_crop_rotations_and_resize():
    rng = np.random.RandomState(1)
    img = rng.randint(0, 256, (50, 50, 3)).astype(np.uint8)
    out = idc.make_patches(img, idc.VARIANTS["crop"], 0)
    assert [k for k, _, _ in out] == [1, 2]
    assert np.array_equal(out[0][1], img[8:40, 8:40]) and np.array_equal(out[1][1], np.rot90(img)[8:40, 8:40])
    more = idc.make_patches(img, idc.VARIANTS["crop-morerot"], 1)
    assert [k for k, _, _ in more] == [1, 2, 3] and np.array_equal(more[2][1], np.rot90(img)[8:40, 8:40])
    res = idc.make_patches(img, idc.VARIANTS["resize"], 1)
    assert np.array_equal(res[0][1], imresize(img, (32, 32)))
    grey = idc.make_patches(img[:, :, 0], idc.VARIANTS["crop"], 0)
    assert all(sub is None and "not 32x32x3" in why for _, sub, why in grey)


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's bicubic kernel (Keys, a = -0.5), as its documentation and imresize.m write it."""
    a = np.abs(x)
    return np.where(a <= 1, 1.5 * a**3 - 2.5 * a**2 + 1, np.where(a <= 2, -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2, 0.0))


def _matlab_row(v: np.ndarray, out_len: int) -> np.ndarray:
    """One 1-D shrink as imresize.m's contributions() does it (antialiasing: the kernel stretched by
    1/scale), written out here independently of pipeline.matlab: output pixel u (1-based) sits at
    x = u/scale + (1 - 1/scale)/2; it takes the ceil(4/scale) + 2 input pixels from floor(x - 2/scale) + 1,
    weighted scale * cubic(scale * (x - j)), normalised to sum 1; indices outside mirror symmetrically."""
    n = len(v)
    scale = out_len / n
    out = []
    for u in range(1, out_len + 1):
        x = u / scale + 0.5 * (1 - 1 / scale)
        left = np.floor(x - 2 / scale)
        j = left + np.arange(1, int(np.ceil(4 / scale)) + 3)
        w = scale * _cubic(scale * (x - j))
        w /= w.sum()
        mirror = np.concatenate([np.arange(1, n + 1), np.arange(n, 0, -1)])
        src = mirror[((j - 1) % (2 * n)).astype(int)]
        out.append(float(w @ v[src - 1]))
    return np.array(out)


def test_resize_variant_equals_matlab_kernel_weights_by_hand():
    """The resize variant (50x50 -> 32x32, bicubic with antialiasing, uint8) on an image whose rows are
    constant: the column pass leaves each row as it is (the weights sum to 1), so every output column
    is the 1-D shrink of the row values, rounded to uint8 -- computed above from MATLAB's kernel."""
    v = np.array([(37 * i * i + 11 * i) % 256 for i in range(50)], dtype=np.float64)  # rough, not smooth
    img = np.repeat(np.repeat(v[:, None, None], 50, axis=1), 3, axis=2).astype(np.uint8)
    sub = idc.make_patches(img, idc.VARIANTS["resize"], 1)[0][1]
    want = np.clip(np.floor(_matlab_row(v, 32) + 0.5), 0, 255).astype(np.uint8)  # MATLAB rounds half up here (>= 0)
    assert sub.shape == (32, 32, 3)
    for c in range(3):
        for col in (0, 13, 31):
            assert sub[:, col, c].tolist() == want.tolist()
    grey = idc.make_patches(img[:, :, 0], idc.VARIANTS["crop"], 0)
    assert all(sub is None and "not 32x32x3" in why for _, sub, why in grey)


def test_published_split_ships_with_the_project():
    s = idc.load_split()
    assert [len(s[c]) for c in idc.CASES] == [84, 29, 49]
    assert len(set(sum(s.values(), []))) == 162


def _cohort(root, tmp_path):
    """Small layout with an odd-sized patch, a too-small one, a bad PNG and a missing patient."""
    from pipeline.usecases.idc.dataset import make_cohort

    split = make_cohort(root, n_patients=4, per_class=(3, 2), seed=5, split=(2, 1, 1))
    p = split["train"][0]
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 256, (50, 35, 3)).astype(np.uint8)).save(
        root / p / "0" / f"{p}_idx5_x9_y9_class0.png"
    )
    Image.fromarray(rng.randint(0, 256, (30, 50, 3)).astype(np.uint8)).save(
        root / p / "1" / f"{p}_idx5_x8_y8_class1.png"
    )
    lists.write_names(root / "cases_test.txt", split["test"] + ["99999"])
    return split


def test_run_patches_lists_and_report(tmp_path):
    root = tmp_path / "data"
    split = _cohort(root, tmp_path)
    work = tmp_path / "work"
    rep = idc.run_patches(root, work, "crop", split_dir=root, jobs=2, show_progress=False)
    assert rep["missing_patients"] == ["99999"]
    p = split["train"][0]
    skipped = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in rep["skipped"]}
    assert list(skipped) == [f"{p}_idx5_x8_y8_class1.png"] and "exceed" in skipped[f"{p}_idx5_x8_y8_class1.png"]
    # counts: train patient 0 has 4 class-0 and 2 class-1 usable sources; others 3 and 2; 2 rotations each
    assert rep["counts"]["train"] == {
        "patches_class0": 14,
        "patches_class1": 8,
        "sources_class0": 7,
        "sources_class1": 4,
    }
    lines = (work / "lists" / "train_32w_1.txt").read_text().splitlines()
    # files in ASCII name order, as MATLAB's dir: "x101_" < "x1_" ('0' < '_'); rotations 1, 2 per file
    assert lines[:4] == [
        f"{p}_idx5_x101_y1_class01.png\t0",
        f"{p}_idx5_x101_y1_class02.png\t0",
        f"{p}_idx5_x1_y1_class01.png\t0",
        f"{p}_idx5_x1_y1_class02.png\t0",
    ]
    assert all("\t" in ln for ln in lines)
    parents = (work / "lists" / "train_32w_parent_1.txt").read_text().splitlines()
    assert parents[:2] == [f"{p}_idx5_x101_y1_class0.png\t0", f"{p}_idx5_x1_y1_class0.png\t0"]
    assert len(parents) == 11
    merged = lists.read_list(work / "lists" / "train_w32_1.txt")
    assert len(merged) == 22 + 10  # train + val (1 patient, 3+2 sources, 2 rotations)
    assert (work / "lists" / "test_w32_1.txt").read_text() == (work / "lists" / "test_32w_1.txt").read_text()
    odd = Image.open(work / "subs" / f"{p}_idx5_x9_y9_class01.png")
    assert odd.size == (32, 32)
    assert json.loads((work / "patches_report.json").read_text())["written"] == 42
    # a rerun gives the same report (whether it must run at all is the stage recipe's business)
    assert idc.run_patches(root, work, "crop", split_dir=root, show_progress=False) == rep


def test_unreadable_png_names_the_file_or_is_skipped(tmp_path):
    root = tmp_path / "data"
    split = _cohort(root, tmp_path)
    bad = root / split["val"][0] / "0" / f"{split['val'][0]}_idx5_x7_y7_class0.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="x7_y7_class0.png: unreadable PNG"):
        idc.run_patches(root, tmp_path / "w1", "crop", split_dir=root, jobs=1, show_progress=False)
    rep = idc.run_patches(root, tmp_path / "w2", "crop", split_dir=root, jobs=1, skip_bad=True, show_progress=False)
    assert any(s["file"] == str(bad) and s["reason"].startswith("unreadable") for s in rep["skipped"])


def test_hand_written_png_decodes_to_the_same_pixels(tmp_path):
    from pipeline.patches import save_png

    rng = np.random.RandomState(2)
    for arr in (rng.randint(0, 256, (32, 32, 3)).astype(np.uint8), rng.randint(0, 256, (7, 5)).astype(np.uint8)):
        save_png(tmp_path / "x.png", arr)
        with Image.open(tmp_path / "x.png") as im:
            assert np.array_equal(np.asarray(im), arr)


def test_artefact_names_of_use_case_6_as_the_original_spelled_them(tmp_path):
    """The released files (uc6-idc) and the step-1 lists, named through pipeline/artefacts.py."""
    from pipeline import artefacts
    from pipeline.usecases.idc import regression

    assert [(m.model, m.mean) for m in regression.IDC_MODELS] == [
        ("1_caffenet_train_w32_iter_600000.caffemodel", "DB_train_w32.binaryproto"),
        ("1_caffenet_train_w32_noresize_iter_600000.caffemodel", "DB_train_w32_noresize.binaryproto"),
        ("1_caffenet_train_w32_noresize_morerot_iter_600000.caffemodel", "DB_train_w32_noresize_morerot.binaryproto"),
        ("1_caffenet_train_w32_dropout_iter_600000.caffemodel", "DB_train_w32.binaryproto"),  # the resize mean
    ]
    assert artefacts.variant_snapshot("w32_noresize", dropout=True) == "caffenet_train_w32_noresize_dropout"
    assert [artefacts.split_list(c) for c in idc.CASES] == ["train_32w_1.txt", "val_32w_1.txt", "test_32w_1.txt"]
    assert artefacts.split_list("val", parent=True) == "val_32w_parent_1.txt"
    assert artefacts.space_list_path(tmp_path, "test", 1) == tmp_path / "lists" / "space" / "test_w32_1.txt"
