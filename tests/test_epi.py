"""Use case 2 (epithelium): class masks, folds, pixel scores and the patches stage on hand cases."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline import crossval, folds, lists, metrics
from pipeline.usecases import epi


def test_class_masks_by_hand():
    io = np.full((12, 12, 3), 120, np.uint8)
    io[0:2, 0:2] = 250                                  # white background (gray 250 > 204)
    mask = np.zeros((12, 12), bool)
    mask[5:7, 5:7] = True
    mask[0, 0] = True                                   # masked but background: not positive
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
        assert " 0\n" in (tmp_path / f"train_w32_{k}.txt").read_text()       # space-separated
        tested += sorted(test)
    assert sorted(tested) == patients                    # every patient tested exactly once
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
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(data / "7777_00001.tif")       # no mask: warned
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(data / "8004_00001_mask.png")   # wrong size
    cfg = crossval.Config(data=data, work=tmp_path / "w", params=epi.Params(max_positive=20), show_progress=False)
    out = crossval.run(epi.Epithelium(), cfg, stages=("patches", "folds"))
    assert any("8004_00001_mask.png: mask is (50, 50)" in p for p in out["problems"])
    assert set(out["folds"]) == {"8001", "8002", "8003", "8004", "8005"}
    counts = out["images"]["8001_00001.tif"]
    assert counts["p"] == 20 and counts["e"] == 20 and counts["b"] == 6            # round(20 * 0.3)
    names = lists.read_list(tmp_path / "w" / "lists" / "train_w32_1.txt") + lists.read_list(tmp_path / "w" / "lists" / "test_w32_1.txt")
    assert {e.name.split("_")[3] for e in names} == {"p", "e", "b"}
    assert all((tmp_path / "w" / "subs" / e.name).is_file() for e in names)
    first = next(e for e in names if e.name.startswith("8001_1_1_p_1_"))
    assert first.name == "8001_1_1_p_1_0.png" and first.label == 1
