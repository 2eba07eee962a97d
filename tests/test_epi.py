"""Use case 2 (epithelium): class masks, folds, pixel scores and the patches stage on hand cases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline import artefacts, crossval, folds, lists, metrics
from pipeline.usecases import epi


def test_class_masks_by_hand():
    io = np.full((12, 12, 3), 120, np.uint8)
    io[0:2, 0:2] = 250  # white background (gray 250 > 204)
    mask = np.zeros((12, 12), bool)
    mask[5:7, 5:7] = True
    mask[0, 0] = True  # masked but background: not positive
    m = epi.class_masks(io, mask)
    assert m["background"].sum() == 4 and not m["positive"][0, 0]
    assert m["positive"].sum() == 4
    # stroma: not (positive dilated 3x with 3x3) and not background
    assert not m["stroma"][2:10, 2:10].any() and m["stroma"][1, 11] and not m["stroma"][0, 0]
    # edge: mask dilated 2x minus mask, a 2-pixel ring (6x6 box minus 2x2 square) plus the corner's ring
    assert m["edge"][3:9, 3:9].sum() == 36 - 4 and not m["edge"][5, 5]


def test_folds_are_by_patient_balanced_and_seeded(tmp_path):
    patients = [str(1000 + i) for i in range(13)]
    a = folds.assign_folds(patients, 5, seed=3)
    assert a == folds.assign_folds(patients, 5, seed=3) and a != folds.assign_folds(patients, 5, seed=4)
    sizes = sorted(list(a.values()).count(k) for k in range(1, 6))
    assert sizes == [2, 2, 3, 3, 3]
    per = {p: [lists.Entry(f"{p}_1_0_e_1_0.png", 0), lists.Entry(f"{p}_1_1_p_1_0.png", 1)] for p in patients}
    folds.write_fold_lists(tmp_path, patients, per, a)
    tested = []
    for k in range(1, 6):
        train = {folds.patient_of(e.name) for e in lists.read_list(tmp_path / f"train_w32_{k}.txt")}
        test = {folds.patient_of(e.name) for e in lists.read_list(tmp_path / f"test_w32_{k}.txt")}
        assert not train & test and train | test == set(patients)
        assert lists.read_names(tmp_path / f"test_w32_parent_{k}.txt") == [p for p in patients if a[p] == k]
        assert " 0\n" in (tmp_path / f"train_w32_{k}.txt").read_text()  # space-separated
        tested += sorted(test)
    assert sorted(tested) == patients  # every patient tested exactly once
    with pytest.raises(ValueError):
        folds.assign_folds(["a", "b"], 5)


def test_threshold_and_pixel_scores_by_hand():
    p = np.array([0.1, 0.4, 0.6, 0.9])
    t = np.array([False, True, True, True])
    assert metrics.best_threshold([p], [t]) == pytest.approx(0.15)
    s = metrics.pixel_scores(p >= 0.5, t)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 0, 1, 1) and s["f_score"] == pytest.approx(0.8)


def test_patches_and_fold_lists_on_a_generated_cohort(tmp_path):
    data = tmp_path / "data"
    epi.make_cohort(data, n_patients=5, size=96, seed=2)
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(data / "7777_00001.tif")  # no mask: warned
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(data / "8004_00001_mask.png")  # wrong size
    cfg = crossval.Config(data=data, work=tmp_path / "w", params=epi.Params(max_positive=20), show_progress=False)
    out = crossval.run(epi.Epithelium(), cfg, stages=("patches", "folds"))
    assert any("8004_00001_mask.png: mask is (50, 50)" in p for p in out["problems"])
    assert set(out["folds"]) == {"8001", "8002", "8003", "8004", "8005"}
    counts = out["images"]["8001_00001.tif"]
    assert counts["p"] == 20 and counts["e"] == 20 and counts["b"] == 6  # round(20 * 0.3)
    names = lists.read_list(tmp_path / "w" / "lists" / "train_w32_1.txt") + lists.read_list(
        tmp_path / "w" / "lists" / "test_w32_1.txt"
    )
    assert {e.name.split("_")[3] for e in names} == {"p", "e", "b"}
    assert all((tmp_path / "w" / "subs" / e.name).is_file() for e in names)
    first = next(e for e in names if e.name.startswith("8001_1_1_p_1_"))
    assert first.name == "8001_1_1_p_1_0.png" and first.label == 1


def test_palette_mask_reads_indices_as_matlab(tmp_path):
    from pipeline.patches import read_rgb_like_matlab

    # an indexed PNG whose palette puts white at index 0 and black at index 1; the annotated square holds
    # index 1. MATLAB's imread returns the indices (X of [X, map]), so the square is the mask (non-zero);
    # a grey conversion would instead make everything BUT the square 255.
    idx = np.zeros((6, 6), np.uint8)
    idx[2:4, 2:4] = 1
    im = Image.fromarray(idx, mode="P")
    im.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    im.save(tmp_path / "p_mask.png")
    m = epi.read_mask(tmp_path / "p_mask.png")
    assert m.dtype == np.uint8 and m.tolist() == idx.tolist()
    assert read_rgb_like_matlab(tmp_path / "p_mask.png").shape == (6, 6)  # a patch: indices too, not RGB
    # a 1-bit PNG is logical, as MATLAB reads it
    Image.fromarray(idx.astype(bool)).save(tmp_path / "b_mask.png")
    assert epi.read_mask(tmp_path / "b_mask.png").dtype == bool


def _maps(out_dir, stem, p1_left, p1_right, split=4, size=8):
    from pipeline import inference

    p1 = np.full((size, size), p1_right)
    p1[:, :split] = p1_left
    prob = np.stack([1 - p1, p1], axis=2)
    prob[0, :] = prob[:, 0] = 0  # never computed by the original
    inference.write_outputs(inference.output_paths(out_dir, stem), prob, save_npy=True)
    inference.write_record(out_dir, inference.OutputRecord(png_scale="minmax", stride=1, all_pixels=False))


def test_scores_read_the_pngs_and_the_validation_folder(tmp_path):
    left = np.zeros((8, 8), np.uint8)
    left[:, :4] = 255  # epithelium: columns 0..3
    for stem in ("9001_00001", "9002_00001"):
        Image.fromarray(left).save(tmp_path / f"{stem}_mask.png")
    test, val = tmp_path / "9001_00001.tif", tmp_path / "9002_00001.tif"
    out, vdir = tmp_path / "output" / "1", tmp_path / "validation" / "1"
    _maps(out, test.stem, 0.7, 0.2, split=3)  # class 1 on columns 0..2 only
    _maps(vdir, val.stem, 0.6, 0.3)
    # validation PNG (max 0.7): 0.6 -> 0.6 * 255 / 0.7 = 218.6 -> 219/255 = 0.859, 0.3 -> 109/255 = 0.427: the lowest
    # grid threshold separating them is 0.45; the float map (0.6 / 0.3) gives 0.35.
    s = epi.score_fold(out, 1, [test], [val], 1.0, vdir)
    assert s["threshold"] == 0.45 and s["score_from"] == "png"
    assert epi.score_fold(out, 1, [test], [val], 1.0, vdir, source="npy")["threshold"] == 0.35
    # class map (_class.png) over the computed 7x7 pixels: columns 1..2 found, column 3 missed:
    # tp 14, fn 7, fp 0 -> F = 28 / 35
    c = s["class_map"]
    assert (c["tp"], c["fp"], c["fn"]) == (14, 0, 7) and c["f_score"] == pytest.approx(0.8)
    with pytest.raises(FileNotFoundError, match="9002_00001_prob.png"):
        epi.score_fold(out, 1, [test], [val], 1.0, out)  # validation maps are not beside the test maps


def test_validation_outputs_have_their_own_folder(tmp_path):
    assert artefacts.output_dir(tmp_path, 2) == tmp_path / "output" / "2"
    assert artefacts.validation_dir(tmp_path, 2) == tmp_path / "validation" / "2"


def test_usecase2_end_to_end_keeps_validation_maps_apart(tmp_path):
    """All stages with the real tools on 5 tiny generated patients: fold k's test maps in output/<k>/,
    its validation maps (the next fold's patients) in validation/<k>/, scores from the PNGs."""
    import json

    from conftest import run_tiny_usecase

    data = tmp_path / "data"
    epi.make_cohort(data, n_patients=5, size=48, seed=5)
    out = run_tiny_usecase("usecase2", data, tmp_path / "w", max_positive=10)
    folds_ = json.loads((tmp_path / "w" / "lists" / "folds.json").read_text())
    for k in range(1, 6):
        test = {f"{p}_00001_prob.png" for p, f in folds_.items() if f == k}
        val = {f"{p}_00001_prob.png" for p, f in folds_.items() if f == k % 5 + 1}
        assert {q.name for q in (tmp_path / "w" / "output" / str(k)).glob("*_prob.png")} == test
        assert {q.name for q in (tmp_path / "w" / "validation" / str(k)).glob("*_prob.png")} == val
    scores = json.loads((tmp_path / "w" / "scores.json").read_text())
    assert scores["score_from"] == "png" and [f["fold"] for f in scores["folds"]] == [1, 2, 3, 4, 5]
    assert "Maps read: the 8-bit min-max scaled" in out.stdout
