"""Use case 4 (lymphocytes): names, sampling, hard negatives, peak detection and matching by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import detection, inference, lists
from pipeline.usecases import lymphocyte as ly


def test_mask_name_of_the_original(tmp_path):
    assert ly.mask_path_for(Path("/d/im100.tif")) == Path("/d/100m.tif")
    (tmp_path / "7m.tif").write_bytes(b"")
    assert ly.mask_path_for(tmp_path / "img7_seg.tif") == tmp_path / "7m.tif"


def test_greedy_peaks_threshold_and_clearing():
    v = np.zeros((40, 40))
    v[10, 10], v[12, 12], v[30, 30], v[5, 35] = 0.9, 0.95, 0.8, 0.7
    assert detection.greedy_peaks(v, radius=5, threshold=0.7706) == [(12, 12), (30, 30)]  # (10,10) cleared; 0.7 below
    assert detection.greedy_peaks(v, radius=1, limit=10) == [(12, 12), (10, 10), (30, 30), (5, 35)]
    ties = np.zeros((3, 3))
    ties[2, 0] = ties[0, 1] = 1  # MATLAB max: first in column-major order
    assert detection.argmax_colmajor(ties) == (2, 0)


def test_disk_kernel_is_fspecial_disk_6():
    import math

    from pipeline.matlab import fspecial_disk

    k = ly.disk_kernel()
    assert k.shape == (13, 13) and np.array_equal(k, fspecial_disk(6))
    assert k[6, 6] == pytest.approx(1 / (36 * math.pi), abs=1e-15)  # the middle pixel lies wholly inside


def test_lda_posterior_is_matlab_classify_default_by_hand():
    # classify(sample, training, group): type 'linear', uniform prior. Class 0 = {0, 1, 2} (mean 1),
    # class 1 = {4, 6} (mean 5); pooled variance (2 + 2) / (5 - 2) = 4/3. Log posterior odds
    # (5 - 1) x / (4/3) - (25 - 1) / (2 * 4/3) + log(1/2 / 1/2) = 3 x - 9: x = 3 -> 1/2, x = 4 -> 1 / (1 + e^-3).
    train = np.array([[0.0], [1.0], [2.0], [4.0], [6.0]])
    labels = np.array([False, False, False, True, True])
    post = ly.pixel_posterior(train, labels, np.array([[3.0], [4.0]]), "lda")
    np.testing.assert_allclose(post, [0.5, 1 / (1 + np.exp(-3))], rtol=0, atol=1e-12)
    # an empirical prior (2/5, 3/5) would shift x = 3 to 2/5: the uniform prior is what MATLAB used
    assert ly.Params().classifier == "lda"
    with pytest.raises(ValueError, match="classifier 'svm'"):
        ly.pixel_posterior(train, labels, train, "svm")


def test_peaks_map_back_with_the_inverse_resize():
    # 4x: output pixel x (0-based) sits at input (x + 0.5) / 4 - 0.5. Original pixel 10 covers 4x pixels
    # 40..43 (centres 10 - 0.375, - 0.125, + 0.125, + 0.375); plain x / 4 would put 41 at 10.25.
    pts = detection.to_original_scale(np.array([[41, 81], [42, 82], [0, 0]]), 4)
    assert pts.tolist() == [[9.875, 19.875], [10.125, 20.125], [-0.375, -0.375]]


def _cone_outputs(out_dir: Path, stem: str, size: int = 80, centre=(41, 21)) -> None:
    """A 4x-scale map whose P(lymphocyte) rises from 0.25 to 0.75 in a cone of radius 30 around ``centre``."""
    from pipeline import inference

    yy, xx = np.mgrid[0:size, 0:size]
    p1 = 0.25 + 0.5 * np.clip(1 - np.hypot(yy - centre[0], xx - centre[1]) / 30, 0, None)
    prob = np.stack([1 - p1, p1], axis=2)
    prob[0, :] = prob[:, 0] = 0  # never computed by the original (first row and column)
    inference.write_outputs(inference.output_paths(out_dir, stem), prob, save_npy=True)
    inference.write_record(out_dir, inference.OutputRecord(png_scale="minmax", stride=1, all_pixels=False))


def test_detection_reads_the_min_max_png_as_the_original(tmp_path):
    from PIL import Image

    # truth: one centre at (10, 5) of a 20x20 image (alpha of 1m.tif)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "im1.tif")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[10, 5, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "1m.tif")
    _cone_outputs(tmp_path, "im1")
    # float map: the disk average of the cone (1 - d/30 averages 1 - (2/3)(6/30) = 0.867 over radius 6) is
    # 0.25 + 0.5 * 0.867 = 0.683 < 0.7706: nothing found. The PNG the original read holds P / max P
    # (max 0.75): 0.333 + 0.667 * 0.867 = 0.911 > 0.7706: one peak, at the cone's tip (41, 21) at 4x,
    # mapped to ((41.5) / 4 - 0.5, (21.5) / 4 - 0.5) = (9.875, 4.875): 0.13 px from the truth.
    green, _ = inference.read_maps(tmp_path, "im1")
    assert ly.detect_peaks(green) == [(41, 21)]
    s = ly.score_fold(tmp_path, 1, [tmp_path / "im1.tif"], 4.0, 1.0)
    assert (s["detection"]["tp"], s["detection"]["fp"], s["detection"]["fn"]) == (1, 0, 0)
    s = ly.score_fold(tmp_path, 1, [tmp_path / "im1.tif"], 4.0, 1.0, source="npy")
    assert (s["detection"]["tp"], s["detection"]["fp"], s["detection"]["fn"]) == (0, 0, 1)


def test_detect_peaks_on_two_blobs():
    p = np.zeros((120, 120))
    yy, xx = np.mgrid[0:120, 0:120]
    for cy, cx in ((30, 40), (90, 80), (34, 44)):  # the third lies within 28 px of the first
        p[(yy - cy) ** 2 + (xx - cx) ** 2 <= 10**2] = 1.0
    peaks = ly.detect_peaks(p)
    assert len(peaks) == 2  # on the plateau, the first maximum in column-major order: (88, 77)
    assert peaks[1] == (88, 77) and np.hypot(peaks[0][0] - 32, peaks[0][1] - 42) < 8
    assert ly.detect_peaks(p * 0.7) == []  # below 0.7706 everywhere


def test_match_detections_one_to_one():
    truth = np.array([[10, 10], [20, 20], [50, 50]])
    pred = np.array([[11, 10], [12, 11], [20, 24], [80, 80]])
    s = ly.match_detections(pred, truth, radius=6)
    # (11,10)->(10,10); (12,11) cannot reuse it; (20,24)->(20,20); (80,80) unmatched; (50,50) missed
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1) and s["f_score"] == pytest.approx(4 / 7)
    assert ly.match_detections(np.empty((0, 2)), truth)["recall"] == 0


def test_patches_on_a_generated_cohort(tmp_path):
    data = tmp_path / "data"
    ly.make_cohort(data, n_images=2, size=40, seed=1)
    (data / "im9.tif").write_bytes((data / "im1.tif").read_bytes())  # image without mask: reported
    rep = ly.run_patches(data, tmp_path / "w", ly.Params(n_positive=30), seed=2, jobs=1, show_progress=False)
    assert any("im9.tif: no mask 9m.tif" in p for p in rep["problems"])
    # 30 draws with replacement; those in the mirrored padding fall to the border rule
    assert 0 < rep["images"]["im1.tif"]["p"] <= 30
    ents = [lists.Entry(n, lab) for n, lab in rep["entries"]["im1"]]
    pos = [e for e in ents if e.label == 1]
    neg = [e for e in ents if e.label == 0]
    assert {e.name.rsplit("_", 1)[1] for e in pos} == {"0.png", "90.png", "180.png", "270.png"}
    assert {e.name.rsplit("_", 1)[1] for e in neg} <= {"0.png", "90.png"} and neg[0].name.startswith("im1_0_n_1_")
    assert pos[0].name == "im1_1_p_1_0.png"
    assert all((tmp_path / "w" / "subs" / e.name).is_file() for e in ents)


@pytest.mark.parametrize("classifier", ["nb", "lda"])
def test_hard_negatives_are_far_from_positives(classifier):
    rng = np.random.RandomState(0)
    io = np.full((120, 120, 3), 0.8) + rng.normal(0, 0.02, (120, 120, 3))
    mask = np.zeros((120, 120))
    for cy, cx in ((40, 40), (80, 90)):
        io[cy - 3 : cy + 4, cx - 3 : cx + 4] = 0.2
        mask[cy - 2 : cy + 3, cx - 2 : cx + 3] = 1
    io[100:105, 10:15] = 0.2  # a dark look-alike far from positives
    cent = ly.negative_centres(io, mask, ly.Params(n_positive=5, n_train_pixels=2000, classifier=classifier), rng)
    assert cent and cent[0][0] in range(100, 105) and cent[0][1] in range(10, 15)
    assert all(mask[r, c] == 0 for r, c in cent)


def test_usecase4_end_to_end_on_a_tiny_generated_cohort(lymphocyte_run):
    """All stages with the real tools: 5 folds, 10 iterations each, fcn outputs, detection scores."""
    import json

    data, work, out = lymphocyte_run
    assert out.returncode == 0, out.stderr[-3000:]
    scores = json.loads((work / "scores.json").read_text())
    assert [f["fold"] for f in scores["folds"]] == [1, 2, 3, 4, 5]
    truth = sum(len(ly.true_centres(p)) for p in sorted(data.glob("im*.tif")))
    assert scores["pooled"]["tp"] + scores["pooled"]["fn"] == truth
    for k in range(1, 6):
        assert (work / "models" / f"{k}_caffenet_train_w32_iter_10.caffemodel").is_file()
    assert len(list((work / "output").glob("*/*_prob.png"))) == 5
    assert "published (recalled, unchecked)" in out.stdout
