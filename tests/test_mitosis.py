"""Use case 5 (mitosis): blue ratio, stage-1 and stage-2 sampling, peaks and matching, by hand
(pure functions and single frames; the end-to-end runs are in test_mitosis_run.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.usecases.mitosis import detection, sampling, stage2
from pipeline.usecases.mitosis.sampling import Params


def test_blue_ratio_formula_by_hand():
    # 100 B / (1 + R + G) * 256 / (1 + R + G + B): (10, 20, 30) -> 100*30/31 * 256/61 = 768000/1891
    rgb = np.array([[[10, 20, 30], [0, 0, 0], [236, 170, 200]]], np.uint8)
    br = sampling.blue_ratio(rgb)
    assert br[0, 0] == pytest.approx(406.13432046536224, rel=1e-15)
    assert br[0, 1] == 0.0
    assert br[0, 2] == pytest.approx(100 * 200 / 407 * 256 / 607, rel=1e-15)  # eosin: about 20.7
    # uint8 input must not wrap: 236 + 170 overflows uint8
    assert br[0, 2] == pytest.approx(20.7246, abs=1e-4)


def test_rotation_lists_of_both_stages():
    assert sampling.ROTATIONS_POS == (0, 45, 90, 135, 180, 215, 270)  # step1 line 47: 215 sic
    assert sampling.ROTATIONS_POS_225 == (0, 45, 90, 135, 180, 225, 270)
    assert sampling.ROTATIONS_NEG == (0, 90, 180, 270)
    assert stage2.ROTATIONS_POS2 == tuple(range(0, 346, 15)) and len(stage2.ROTATIONS_POS2) == 24


def test_one_mask_pixel_in_the_corner_counts_four_times():
    # the spec's check: a resized mask pixel at frame (0, 0), padded 32 symmetric, appears at padded
    # 0-based (31, 31), (31, 32), (32, 31), (32, 32): npos 4, round(2.5 * 4) = 10 negatives, and
    # 3636 - 4 = 3632 stage-2 draws; the border rule (r - 32 < 1 removed, 1-based) keeps (33, 33) only.
    gt = np.zeros((40, 40), np.uint8)  # wider than the pad: one mirrored copy each side
    gt[0, 0] = 255
    padded = np.pad(gt, 32, mode="symmetric")
    assert sampling.npos_of(padded) == 4 and sampling.npos_of(padded, in_image_only=True) == 1
    assert sampling.n_negatives(4) == 10 and sampling.n_negatives(1) == 3  # round(2.5) = 3, half away from zero
    assert stage2.n_draws(4) == 3632
    with pytest.raises(ValueError, match="3637 positive pixels exceed the 3636"):
        stage2.n_draws(3637)
    (pr, pc), _ = sampling.stage1_candidates(padded, np.zeros_like(padded))
    r, c = sampling.select_centres(pr, pc, len(pr), np.random.RandomState(0), padded.shape)
    assert list(zip(r.tolist(), c.tolist())) == [(33, 33)]


def test_negative_candidates_exclude_the_dilated_mask():
    # bwmorph(mask, 'dilate', 10): a 21x21 square around a mask pixel; cmask pixels inside it are cleared
    gt = np.zeros((60, 60), np.uint8)
    gt[30, 30] = 1
    cmask = np.zeros((60, 60), np.uint8)
    cmask[30, 40], cmask[30, 41], cmask[45, 45] = 255, 255, 255  # distance 10 (inside), 11, 15 (outside)
    _, (nr, nc) = sampling.stage1_candidates(gt, cmask)
    assert list(zip(nr.tolist(), nc.tolist())) == [(31, 42), (46, 46)]  # 1-based, column-major


def _frame(folder: Path, name: str = "01_01", size: int = 80, pc: bool = True) -> Path:
    """A frame with a 3x3 mitosis at the centre and a cmask band of rows 10..19 (40x scale)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (size, size, 3)).astype(np.uint8)).save(folder / f"{name}.tif")
    m = np.zeros((size, size), np.uint8)
    m[size // 2 - 1 : size // 2 + 2, size // 2 - 1 : size // 2 + 2] = 255
    if pc:
        Image.fromarray(m).save(folder / f"{name}_pc.png")
    cm = np.zeros((size, size), np.uint8)
    cm[10:20, :] = 255
    Image.fromarray(cm).save(folder / f"{name}_cmask.png")
    return folder / f"{name}.tif"


@pytest.mark.parametrize("cls", [1, 0])
def test_negative_class_only_changes_names(tmp_path, cls):
    # issue #5: the released models' code named negatives class 1; the lists label them 0 either way
    img = _frame(tmp_path / "d", size=160)
    (tmp_path / "subs").mkdir()
    res = sampling._stage1((str(img), str(tmp_path / "subs"), Params(negative_class_in_name=cls), 1))
    assert not res.problem
    assert res.negatives and all(f"_{cls}_n_" in e.name and e.label == 0 for e in res.negatives)
    assert all("_1_p_" in e.name and e.label == 1 for e in res.positives)
    assert len(res.positives) == 7 * res.counts["p"] and len(res.negatives) == 4 * res.counts["n"]
    # the 3x3 at 40x rows/cols 79..81 becomes 0.5x rows/cols 39..41 (values 245 at the centre down to
    # 1 at (41, 41): the antialiased kernel spreads it, nothing beyond): npos 9, no pad copies this far
    # inside; round(2.5 * 9) = round(22.5) = 23 negatives (half away from zero; the band has ~480)
    assert res.counts == {"npos": 9, "p": 9, "n": 23}
    assert sorted({int(e.name.rsplit("_", 1)[1][:-4]) for e in res.positives}) == [0, 45, 90, 135, 180, 215, 270]


def test_frames_without_annotations_and_annotations_outside_the_frame(tmp_path):
    img = _frame(tmp_path, "02_01", pc=False)
    with pytest.raises(ValueError, match=r"02_01.tif: no annotation 02_01_pc.png \(frame without annotations\)"):
        sampling.read_frame(img)
    io, gt, cm = sampling.read_frame(img, empty_gt=True)  # stage 2: an all-zero ground truth
    assert io.shape == (104, 104, 3) and not gt.any() and cm.any()
    Image.fromarray(np.zeros((90, 80), np.uint8)).save(tmp_path / "02_01_pc.png")
    with pytest.raises(ValueError, match=r"02_01_pc.png: annotation is 80x90, its frame 02_01.tif is 80x80"):
        sampling.read_frame(img)


def test_patients_without_mitoses_are_dropped_and_said(tmp_path):
    _frame(tmp_path, "01_01")
    _frame(tmp_path, "03_01", pc=False)  # no annotation at all
    _frame(tmp_path, "10_01")  # has mitoses, but the original drops 10 by name
    _frame(tmp_path, "01_02")
    Image.fromarray(np.zeros((80, 81), np.uint8)).save(tmp_path / "01_02_pc.png")  # does not fit its frame
    by, why = sampling.images_by_patient(tmp_path)
    assert by == {"01": [tmp_path / "01_01.tif"]}
    assert why == [
        f"{tmp_path / '01_02_pc.png'}: annotation is 81x80, its frame 01_02.tif is 80x80: annotations outside the "
        "frame; frame skipped",
        "patient 03: no mitosis in any frame's _pc.png; dropped, as the original drops patient 10",
        "patient 10: dropped by name, as the original drops patient 10 (no mitoses)",
    ]
    assert list(sampling.images_by_patient(tmp_path, drop=())[0]) == ["01", "10"]


def test_stage2_weights_by_hand():
    green = np.full((40, 40), 51, np.uint8)  # 51 / 255 = 0.2
    gt = np.zeros((40, 40), np.uint8)
    gt[5, 5] = 1
    cmask = np.ones((40, 40), np.uint8)
    cmask[:, 30:] = 0
    w = stage2.prob_weights(green, gt, cmask)
    assert w[16, 16] == 0.2 and w[15, 15] == 0.0  # Chebyshev 11 from (5, 5): kept; 10: cleared
    assert w[16, 29] == 0.2 and w[16, 30] == 0.0  # outside the cmask


def test_stage2_draws_with_and_without_replacement():
    w = np.zeros((6, 5))
    w[2, 3] = 0.5  # one candidate: 1-based (3, 4)
    r, c = stage2.draw_negatives(w, 5, np.random.RandomState(0), replace=True)
    assert r.tolist() == [3] * 5 and c.tolist() == [4] * 5  # datasample's default: the same pixel 5 times
    r, c = stage2.draw_negatives(w, 5, np.random.RandomState(0), replace=False)
    assert r.tolist() == [3] and c.tolist() == [4]
    w[0, 0] = 0.0005  # a second, unlikely candidate: 1-based (1, 1)
    r, c = stage2.draw_negatives(w, 2, np.random.RandomState(0), replace=False)
    assert sorted(zip(r.tolist(), c.tolist())) == [(1, 1), (3, 4)]  # both, each once
    r, c = stage2.draw_negatives(w, 2, np.random.RandomState(0), replace=True)
    assert list(zip(r.tolist(), c.tolist())) == [(3, 4), (3, 4)]  # p = 0.999 each draw
    r, _ = stage2.draw_negatives(np.zeros((3, 3)), 5, np.random.RandomState(0))
    assert len(r) == 0


def test_peaks_threshold_disk_and_clearing():
    # 7x7 blocks of 1: fspecial('disk', 3) (7x7, sums to 1) gives exactly 1 at each block's centre only
    p = np.zeros((60, 80))
    for cy, cx in ((20, 20), (20, 30), (20, 50)):
        p[cy - 3 : cy + 4, cx - 3 : cx + 4] = 1.0
    assert detection.peaks(p).tolist() == [[20, 20], [20, 50]]  # (20, 30) is 10 px away: cleared (15)
    assert detection.peaks(p, clear=9).tolist() == [[20, 20], [20, 30], [20, 50]]
    assert detection.peaks(p, threshold=1.0).tolist() == []  # strictly above
    assert (detection.PEAK_DISK, detection.PEAK_THRESHOLD, detection.PEAK_CLEAR_RADIUS) == (3, 0.5, 15.0)


def test_true_centres_and_matching_radius(tmp_path):
    img = tmp_path / "01_01.tif"
    m = np.zeros((100, 100), np.uint8)
    m[10:13, 20:23] = 255  # centroid (11, 21)
    m[50, 60] = m[51, 61] = 255  # 8-connected: one component, centroid (50.5, 60.5)
    Image.fromarray(m).save(tmp_path / "01_01_pc.png")
    t = detection.true_centres(img)
    assert t.tolist() == [[11.0, 21.0], [50.5, 60.5]]
    from pipeline.detection import match_detections

    pred = np.array([[11.0, 50.9], [50.5, 91.0]])  # 29.9 px and 30.5 px away
    s = match_detections(pred, t, detection.MATCH_RADIUS)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and detection.MATCH_RADIUS == 30.0


def test_stage2_frame_list_order_and_separator(tmp_path):
    # the 160x160 frame of test_negative_class_only_changes_names: 9 mask pixels at 0.5x, no pad copies;
    # a uniform stage-1 map (green 255): 20 - 9 = 11 draws inside the cmask band, away from the mitosis
    img = _frame(tmp_path / "d", size=160)
    probs = tmp_path / "probs"
    probs.mkdir()
    Image.fromarray(np.full((80, 80, 3), 255, np.uint8)).save(probs / "01_01_prob.png")
    lst = tmp_path / "train_w32_1_2nd.txt"
    rep = stage2.run_stage2([img], probs, tmp_path / "subs_2nd", lst, Params(stage2_negatives=20), 1, 1, False)
    c = rep["images"]["01_01.tif"]
    assert (c["npos"], c["draws"]) == (9, 11) and rep["problems"] == []
    lines = lst.read_text().splitlines()
    assert len(lines) == 9 * 24 + 4 * c["n"] == rep["patches"]
    # positives (24 rotations each) first, then the negatives, "name label" with one space (not step 6's TAB)
    assert all(ln.endswith(" 1") and "_1_p_" in ln for ln in lines[: 9 * 24])
    assert all(ln.endswith(" 0") and "_0_n_" in ln for ln in lines[9 * 24 :])
    assert "\t" not in lst.read_text()
    assert [ln.split(" ")[0].rsplit("_", 1)[1] for ln in lines[:24]] == [f"{d}.png" for d in range(0, 360, 15)]
    # a map of another size than the frame at 0.5x is named
    Image.fromarray(np.zeros((81, 80, 3), np.uint8)).save(probs / "01_01_prob.png")
    res = stage2._stage2((str(img), str(probs), str(tmp_path / "s2"), Params(stage2_negatives=20), 1))
    assert res.problem == f"{probs / '01_01_prob.png'}: 80x81, but 01_01.tif at x0.5 is 80x80"
    with pytest.raises(ValueError, match=r"probs: stage 2 made no patches \(1 frame\(s\) skipped\)"):
        stage2.run_stage2([img], probs, tmp_path / "s2", lst, Params(stage2_negatives=20), 1, 1, False)


def test_magnification_and_published_figure():
    from pipeline.usecases import get

    uc = get("mitosis")
    assert uc.magnification == Params().scale == 0.5 and uc.number == 5 and uc.command == "usecase5"
    assert [(f.metric, f.value, f.source) for f in uc.published] == [("f_score", 0.53, "paper")]
    assert Params().stage2_negatives == 3636 and Params().stage2_replace and Params().negative_class_in_name == 1
