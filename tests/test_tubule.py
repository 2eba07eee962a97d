"""Use case 3 (tubules): step 1's grouping, class lists, sampler, classifier, resize, names, list
parsing, the ilf bug, the scores (hand-computed cases), and one tiny end-to-end run with the real tools."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT
from pipeline.usecases.tubule import demo, features, images, lists, mining, sampling, scores
from tests.geojson_checks import geojson_beside_each_map


# --------------------------------------------------------------------------- grouping and lists
def test_groups_are_name_minus_11_characters():
    # name(1:end-11) strips "-N_anno.bmp"; an m-name loses two more characters of its id
    assert images.group_of("09-1339-01-1_anno.bmp") == "09-1339-01"
    assert images.group_of("m6_10719 T3N2a_anno.bmp") == "m6_10719 T3N"
    assert images.group_of("m39_10-1273_anno.bmp") == "m39_10-12"
    assert images.group_of("09-1339-05-4_anno.bmp", "case") == "09-1339"


def test_group_files_follow_the_prefix_glob(tmp_path):
    for n in ("09-1-01-1", "09-1-01-2", "09-1-02-1", "m6_10719 T3N2a"):
        (tmp_path / f"{n}.bmp").write_bytes(b"")
        (tmp_path / f"{n}_anno.bmp").write_bytes(b"")
    (tmp_path / "lonely.bmp").write_bytes(b"")
    g = images.images_by_group(tmp_path)
    assert {k: [a.name for a in v] for k, v in g.items()} == {
        "09-1-01": ["09-1-01-1_anno.bmp", "09-1-01-2_anno.bmp"],
        "09-1-02": ["09-1-02-1_anno.bmp"],
        "m6_10719 T3N": ["m6_10719 T3N2a_anno.bmp"],
    }
    assert images.image_of(g["m6_10719 T3N"][0]).name == "m6_10719 T3N2a.bmp"


def test_malignant_match_uses_whole_lines_with_spaces(tmp_path):
    (tmp_path / "m.txt").write_text("m6_10719 T3N2a.bmp\n09-1-02-1.bmp  \n\n")
    cls = images.ClassLists(("09-1-01-1.bmp",), images.read_class_list(tmp_path / "m.txt"))
    assert cls.malignant == ("m6_10719 T3N2a.bmp", "09-1-02-1.bmp")
    assert cls.is_malignant("m6_10719 T3N2a_anno.bmp") and cls.is_malignant("09-1-02-1_anno.bmp")
    assert not cls.is_malignant("09-1-01-1_anno.bmp") and not cls.is_malignant("m6_10719_anno.bmp")


def test_list_problems_are_one_line_each(tmp_path):
    annos = [tmp_path / "a-1_anno.bmp", tmp_path / "b-1_anno.bmp"]
    cls = images.ClassLists(("a-1.bmp", "gone.bmp"), ())
    got = images.check_class_lists(cls, annos)
    assert got == [
        "benign.txt:2: names 'gone.bmp', which has no image with an annotation in the data",
        f"{tmp_path / 'b-1.bmp'}: in neither benign.txt nor malignant.txt; taken as benign, as the original did",
    ]


def test_missing_lists_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="benign.txt: not found .*fetch-released --usecase tubule"):
        images.find_class_lists(tmp_path, benign=tmp_path / "nope.txt")


# --------------------------------------------------------------------------- sampler
def _draws(w, limit=10, seed=0):
    return mining.sample_with_clearing(w, 16, 3, limit, np.random.RandomState(seed)).tolist()


def test_sampler_one_weight_one_draw_and_the_border_removed():
    w = np.zeros((80, 80))
    w[40, 35] = 0.2  # 1-based (41, 36): inside rows/cols 33..48 kept by remove_border (80 - 32 = 48)
    assert _draws(w) == [[41, 36]]
    w[31, 35] = 5.0  # 1-based row 32 < 33: removed before sampling
    w[40, 48] = 5.0  # 1-based column 49 > 48: removed too
    assert _draws(w) == [[41, 36]]


def test_sampler_clears_a_disk_of_radius_3():
    w = np.zeros((80, 80))
    w[40, 40], w[40, 43] = 1.0, 1.0  # distance 3: the second is cleared by the first draw
    assert len(_draws(w)) == 1
    w[40, 43], w[40, 44] = 0.0, 1.0  # distance 4: both drawn
    assert sorted(_draws(w)) == [[41, 41], [41, 45]]
    w[44, 40] = 1.0
    assert len(_draws(w, limit=2)) == 2  # the limit stops it


def test_sampler_draws_in_proportion_to_the_weights():
    w = np.zeros((80, 80))
    w[34, 34], w[34, 40] = 1.0, 3.0
    first = [tuple(_draws(w, limit=1, seed=s)[0]) for s in range(400)]
    share = sum(f == (35, 41) for f in first) / 400  # 3 / 4 expected
    assert 0.68 < share < 0.82


# --------------------------------------------------------------------------- classifier and features
def test_posterior_columns_are_not_tubule_then_tubule():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    post = features.posterior(x, np.arange(6), np.array([0, 0, 0, 1, 1, 1], bool))
    # LDA: means 1 and 11, pooled variance (1+0+1+1+0+1)/(6-2) = 1; x = 6 is half way: 0.5 each
    assert post[0, 0] > 0.999 and post[5, 1] > 0.999
    with pytest.raises(ValueError, match="all non-tubule"):
        features.posterior(x, np.arange(6), np.zeros(6, bool))


def test_lda_posterior_at_the_midpoint_is_one_half():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [6.0]])
    post = features.posterior(x, np.arange(6), np.array([0, 0, 0, 1, 1, 1], bool))
    assert post[6].tolist() == pytest.approx([0.5, 0.5], abs=1e-12)
    # x = 7: log odds (11 - 1) (7 - 6) / 1 = 10 -> P(tubule) = 1 / (1 + e^-10)
    p7 = features.posterior(np.vstack([x[:6], [[7.0]]]), np.arange(6), np.array([0, 0, 0, 1, 1, 1], bool))[6, 1]
    assert p7 == pytest.approx(1 / (1 + np.exp(-10)), rel=1e-12)


def test_training_pixels_padded_or_image_only():
    rng = np.random.RandomState(0)
    idx = features.training_pixels((70, 66), 4, rng, "image", pad=32)
    # unpadded region: rows 32..37, cols 32..33 (0-based); column-major index c * 70 + r
    allowed = {c * 70 + r for r in range(32, 38) for c in range(32, 34)}
    assert len(idx) == 4 and set(idx.tolist()) <= allowed
    with pytest.raises(
        ValueError, match="Index exceeds matrix dimensions: 13 classifier pixels asked, the image has 12"
    ):
        features.training_pixels((70, 66), 13, rng, "image", pad=32)
    assert len(set(features.training_pixels((70, 66), 4620, rng).tolist())) == 4620


def test_pixel_features_are_column_major_rgb_then_glcm():
    io = np.zeros((3, 2, 3), np.uint8)
    io[1, 0] = (255, 0, 51)
    x = features.pixel_features(io)
    assert x.shape == (6, 7)
    assert x[1, :3].tolist() == [1.0, 0.0, 0.2]  # (row 1, col 0) is the second pixel in column-major order
    # a black image: c1 = 9 everywhere (level 1, as the zero padding): constant windows, correlation NaN -> 0;
    # contrast 0, energy 1, homogeneity 1
    flat = features.pixel_features(np.zeros((2, 2, 3), np.uint8))
    assert flat.tolist() == [[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]] * 4


# --------------------------------------------------------------------------- step 1 per image
def _pair(tmp_path, name, img, anno):
    Image.fromarray(img).save(tmp_path / f"{name}.bmp")
    Image.fromarray(anno).save(tmp_path / f"{name}_anno.bmp")
    return tmp_path / f"{name}_anno.bmp"


def test_load_pair_nearest_quarter_ceil_sizes_and_symmetric_pad(tmp_path):
    img = np.arange(10 * 13 * 3, dtype=np.uint32).reshape(10, 13, 3).astype(np.uint8)
    anno = np.zeros((10, 13), np.uint8)
    anno[6, 2] = 255  # 0-based row 6 = input 4i-1 for 1-based i = 2; col 2 for i = 1
    io, mask = sampling.load_pair(_pair(tmp_path, "x-1", img, anno))
    assert io.shape == (3 + 64, 4 + 64, 3) and mask.shape == (67, 68)
    assert np.array_equal(io[32:35, 32:36], img[[2, 6, 9]][:, [2, 6, 10, 11]])
    # 1-based rows 3, 7, 11 (n + 1 -> n = 10); columns 3, 7, 11, 15 (n + 2 -> n - 1 = 12)
    assert np.argwhere(mask[32:35, 32:36]).tolist() == [[1, 0]]
    assert mask[31, 32] == mask[32, 32] and mask[33, 31] == mask[33, 32]  # symmetric pad mirrors the mask


def test_annotation_of_another_size_is_named(tmp_path):
    anno = _pair(tmp_path, "y-1", np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21), np.uint8))
    with pytest.raises(ValueError, match=r"y-1_anno.bmp: annotation is 20x21, image y-1.bmp is 20x20"):
        sampling.load_pair(anno)
    (tmp_path / "z-1_anno.bmp").write_bytes((tmp_path / "y-1_anno.bmp").read_bytes())
    with pytest.raises(ValueError, match="z-1_anno.bmp: annotation without image z-1.bmp"):
        sampling.load_pair(tmp_path / "z-1_anno.bmp")


def test_hard_positives_inside_negatives_outside_and_counts(tmp_path):
    # a generated gland image: positives only on the mask, negatives only off it, at most npos negatives,
    # positive centres at most the limit; names keep "<id>_anno" and the space of an m-name
    img, anno = demo.draw(np.random.RandomState(3), 240, 3)
    a = _pair(tmp_path, "m9_1 T3N2a", img, (anno * 255).astype(np.uint8))
    (tmp_path / "subs").mkdir()
    p = sampling.Params(limit_malignant=12)
    res = sampling.process_image((str(a), "g", str(tmp_path / "subs"), p, 5, True))
    assert res.problem == "" and res.counts == {"p": 12, "n": 12, "malignant": 1}
    assert len(res.positives) == 12 * 4 and len(res.negatives) == 12 * 2
    assert res.positives[0].name == "m9_1 T3N2a_anno_1_p_1_0.png" and res.negatives[1].name.endswith("_0_n_1_90.png")
    io, mask = sampling.load_pair(a, p)
    pos, neg = sampling.hard_centres(io, mask, 12, p, np.random.RandomState(5))
    assert mask[pos[:, 0] - 1, pos[:, 1] - 1].all() and not mask[neg[:, 0] - 1, neg[:, 1] - 1].any()
    assert len(neg) <= len(pos) == 12
    inside = (pos >= 33) & (pos[:, :1] <= mask.shape[0] - 32) & (pos[:, 1:] <= mask.shape[1] - 32)
    assert inside.all()


def test_hard_weights_are_the_other_class_posterior():
    mask = np.array([[True, False, False], [True, True, False]])
    # column-major posteriors of the 6 pixels: P(not tubule) = 0.1 .. 0.6, P(tubule) = 1 - that
    p0 = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    pos, neg = sampling.hard_weights(np.c_[p0, 1 - p0], mask)
    # pixel (r, c) is index c * 2 + r: positives weigh P(not tubule) on the mask: (0,0) .1, (1,0) .2, (1,1) .4
    assert pos.tolist() == [[0.1, 0.0, 0.0], [0.2, 0.4, 0.0]]
    # negatives weigh P(tubule) off the mask: (0,1) 1 - .3, (0,2) 1 - .5, (1,2) 1 - .6
    assert neg == pytest.approx(np.array([[0.0, 0.7, 0.5], [0.0, 0.0, 0.4]]), abs=1e-15)


def test_negatives_are_capped_by_the_positive_centres_taken(tmp_path):
    # a 16x16 tubule at 40x is 4x4 at 0.25: the sampler's radius-3 disks clear it in a few draws, far
    # below the limit of 12; the negatives' limit is that npos, not the class limit
    img, _ = demo.draw(np.random.RandomState(3), 240, 0)
    anno = np.zeros((240, 240), np.uint8)
    anno[100:116, 100:116] = 255
    img[100:116, 100:116] = (75, 45, 130)
    a = _pair(tmp_path, "90-2-01-1", img, anno)
    p = sampling.Params(limit_malignant=12)
    io, mask = sampling.load_pair(a, p)
    pos, neg = sampling.hard_centres(io, mask, 12, p, np.random.RandomState(1))
    assert 1 < len(pos) < 12 and len(neg) == len(pos)


def test_benign_images_take_their_limit_and_two_rotations(tmp_path):
    img, anno = demo.draw(np.random.RandomState(3), 240, 3)
    a = _pair(tmp_path, "90-1-01-1", img, (anno * 255).astype(np.uint8))
    (tmp_path / "subs").mkdir()
    p = sampling.Params(limit_malignant=12, limit_benign=5)
    res = sampling.process_image((str(a), "g", str(tmp_path / "subs"), p, 5, False))
    # benign: 5 hard-positive centres x rotations 0, 90; negatives: npos = 5 centres x 0, 90
    assert res.counts == {"p": 5, "n": 5, "malignant": 0}
    assert [e.name for e in res.positives[:2]] == ["90-1-01-1_anno_1_p_1_0.png", "90-1-01-1_anno_1_p_1_90.png"]
    assert len(res.positives) == 10 and len(res.negatives) == 10


def test_naive_bayes_is_the_named_option():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [6.0], [7.0]])
    labels = np.array([0, 0, 0, 1, 1, 1], bool)
    nb = features.posterior(x, np.arange(6), labels, "nb")
    lda = features.posterior(x, np.arange(6), labels, "lda")
    # the same means, but NB's per-class variances (2/3, MLE) differ from LDA's pooled (1, n - 2): at x = 7
    # NB's log odds are (11 - 1)(7 - 6) / (2/3) = 15 against LDA's 10
    assert nb[7, 1] == pytest.approx(1 / (1 + np.exp(-15)), rel=1e-6) and nb[6, 1] == pytest.approx(0.5)
    assert lda[7, 1] == pytest.approx(1 / (1 + np.exp(-10)), rel=1e-12)
    with pytest.raises(ValueError, match="classifier 'qda' is not one of"):
        features.posterior(x, np.arange(6), labels, "qda")


def test_literal_ilf_skips_every_image_with_matlabs_message(tmp_path):
    demo.make_cohort(tmp_path / "d", size=200, ids=demo.DEMO_IMAGES[:2])
    with pytest.raises(
        ValueError, match=r"all 2 images skipped with MATLAB's \"Undefined function or variable 'ilf'.\""
    ):
        sampling.run_patches(tmp_path / "d", tmp_path / "w", sampling.Params(literal_ilf=True), show_progress=False)
    report = json.loads((tmp_path / "w" / "patches_report.json").read_text())
    assert report["images"] == {} and len(report["problems"]) == 2
    assert "Undefined function or variable 'ilf'." in report["problems"][0]


# --------------------------------------------------------------------------- lists with spaces
def test_legacy_parse_stops_at_the_first_name_with_a_space(tmp_path):
    lines = ["a_anno_0_n_1_0.png 0", "m6_10719 T3N2a_anno_1_p_1_0.png 1", "b_anno_1_p_1_0.png 1"]
    assert lists.legacy_parse(lines) == lines[:1]
    (tmp_path / "train_w32_1.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test_w32_1.txt").write_text("b_anno_1_p_1_0.png 1\n")
    assert lists.apply_legacy_parse(tmp_path, 1) == {"train_w32_1.txt": 2, "test_w32_1.txt": 0}
    assert (tmp_path / "train_w32_1.txt").read_text() == "a_anno_0_n_1_0.png 0\n"


# --------------------------------------------------------------------------- scores
def test_object_counts_by_hand():
    truth = np.zeros((10, 12), bool)
    truth[1:4, 1:4] = True  # tubule A, 9 px
    truth[6:9, 6:10] = True  # tubule B, 12 px
    pred = np.zeros_like(truth)
    pred[1:4, 1:3] = True  # 6 px inside A: > half of A (4.5) and of itself: match
    pred[6:9, 6:7] = True  # 3 px inside B: < half of B (6): no match
    pred[0, 11] = True  # a speck: false positive
    assert scores.object_counts(pred, truth) == {"tp": 1, "fp": 2, "fn": 1}
    merged = np.zeros_like(truth)
    merged[1:9, 1:10] = True  # one object over both: more than half of each tubule, not half of itself
    assert scores.object_counts(merged, truth) == {"tp": 0, "fp": 1, "fn": 2}
    assert scores.prf({"tp": 1, "fp": 2, "fn": 1}) == {
        "tp": 1,
        "fp": 2,
        "fn": 1,
        "precision": 1 / 3,
        "recall": 0.5,
        "f_score": 0.4,
    }


def test_image_scores_crop_the_truth_to_the_map(tmp_path):
    anno = np.zeros((9, 9), np.uint8)
    anno[[2, 6], 2] = 255  # nearest 0.25 keeps rows/cols 2, 6, 7 (0-based): truth (0,0) and (1,0) at 3x3
    Image.fromarray(anno).save(tmp_path / "a_anno.bmp")
    pred = np.zeros((2, 2), bool)  # caffe.io's floor size: 2x2
    pred[1, 0] = pred[1, 1] = True
    s = scores.image_scores(pred, tmp_path / "a_anno.bmp", np.array([1]), np.array([0, 1]))
    # computed rows: 1 only: truth row 1 = [1, 0], prediction [1, 1]
    assert {k: s["pixel"][k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 1, "fp": 1, "fn": 0, "tn": 0}
    # objects over the whole 2x2 map: truth one component {(0,0), (1,0)}, prediction {(1,0), (1,1)}: overlap 1, not > 1
    assert {k: s["object"][k] for k in ("tp", "fp", "fn")} == {"tp": 0, "fp": 1, "fn": 1}


# --------------------------------------------------------------------------- the command line
def _cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    return out


def test_bad_inputs_are_named_in_one_line_each(tmp_path):
    data = tmp_path / "d"
    demo.make_cohort(data, size=200, ids=demo.DEMO_IMAGES[:5] + demo.DEMO_IMAGES[-1:])
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(data / "77-1-01-1.bmp")  # no annotation
    Image.fromarray(np.zeros((200, 201), np.uint8)).save(data / "90-103-01-1_anno.bmp")  # another size
    Image.fromarray(np.zeros((200, 200), np.uint8)).save(data / "88-1-01-1_anno.bmp")  # no image; no list
    with open(data / "malignant.txt", "a") as fh:
        fh.write("gone-1.bmp\n")
    out = _cli(
        "usecase3", "--data", str(data), "--work", str(tmp_path / "w"), "--stages", "patches", "--max-positive", "4"
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert f"{data / '77-1-01-1.bmp'}: image without annotation (no 77-1-01-1_anno.bmp); not used" in text
    assert f"{data / '90-103-01-1_anno.bmp'}: annotation is 200x201, image 90-103-01-1.bmp is 200x200" in text
    assert f"{data / '88-1-01-1_anno.bmp'}: annotation without image 88-1-01-1.bmp" in text
    assert "malignant.txt:4: names 'gone-1.bmp', which has no image with an annotation in the data" in text
    assert f"{data / '88-1-01-1.bmp'}: in neither benign.txt nor malignant.txt" in text
    out = _cli("usecase3", "--data", str(data), "--work", str(tmp_path / "w2"), "--benign", str(tmp_path / "no.txt"))
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and f"{tmp_path / 'no.txt'}" in last and "benign.txt: not found" in last


#: one image of each of the demo's six groups (five blocks and the m-name with a space): five folds
SIX = tuple(demo.DEMO_IMAGES[i] for i in (0, 2, 4, 5, 6, 7))


def test_legacy_list_parse_cuts_the_fold_lists_through_the_cli(tmp_path):
    data = tmp_path / "d"
    demo.make_cohort(data, size=200, ids=SIX, seed=1)
    args = ["--data", str(data), "--stages", "patches,folds", "--max-positive", "4"]
    plain = _cli("usecase3", *args, "--work", str(tmp_path / "a"))
    legacy = _cli("usecase3", *args, "--work", str(tmp_path / "b"), "--legacy-list-parse")
    assert plain.returncode == 0 and legacy.returncode == 0, legacy.stderr[-2000:]
    for k in range(1, 6):
        for side in ("train", "test"):
            full = (tmp_path / "a" / "lists" / f"{side}_w32_{k}.txt").read_text().splitlines()
            cut = (tmp_path / "b" / "lists" / f"{side}_w32_{k}.txt").read_text().splitlines()
            first = next((i for i, ln in enumerate(full) if " " in ln.rsplit(" ", 1)[0]), len(full))
            # the same seed gives the same lists; the legacy reading keeps what precedes the first m90 line
            assert cut == full[:first], (side, k)
    assert "the pre-2016-04-27 convert_imageset stops at line" in legacy.stderr


def test_usecase3_end_to_end_on_a_tiny_generated_cohort(tmp_path):
    """All stages with the real tools (5 folds, 10 iterations, fcn outputs), scores and the report's overlays."""
    data, work = tmp_path / "d", tmp_path / "w"
    demo.make_cohort(data, size=202, ids=SIX, seed=1)  # 202 / 4 = 50.5: step 1 ceil 51, step 5 floor 50
    out = _cli(
        "usecase3", "--data", str(data), "--work", str(work), "--iter", "10", "--test-interval", "10",
        "--snapshot", "10", "--display", "5", "--max-positive", "6", "--infer-mode", "fcn",
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    s = json.loads((work / "scores.json").read_text())
    assert len(s["folds"]) == 5 and s["published_f"] == 0.83
    n_images = sum(len(f["images"]) for f in s["folds"])
    assert n_images == 6  # every image is a test image once
    px = s["pooled"]["pixel"]
    assert px["tp"] + px["fn"] == sum(f["pixel"]["tp"] + f["pixel"]["fn"] for f in s["folds"])
    # the patch names of the m-image keep its space and reach the databases (split at the last space)
    # (convert_imageset's record count is checked against the list by the dbs stage)
    train_lists = [(work / "lists" / f"train_w32_{k}.txt").read_text() for k in range(1, 6)]
    assert sum("m90_1 T3N2a_anno_1_p_1_0.png 1" in t for t in train_lists) == 4  # in the training side of 4 folds
    page = (work / "report" / "index.html").read_text()
    assert "tubule_fold1_" in page and "published" in page
    assert list((work / "report").rglob("tubule_fold*.png"))
    first = s["folds"][0]["images"][0]["image"]
    assert np.load(work / "output" / "1" / first.replace(".bmp", "_prob.npy")).shape == (50, 50, 2)
    geojson_beside_each_map(work / "output", "Polygon")  # tubule polygons for QuPath, beside the maps
    # step 5 on the images resized as step 1 did: the outputs and scores stages again, maps 51 x 51
    out = _cli(
        "usecase3", "--data", str(data), "--work", str(work), "--iter", "10", "--test-interval", "10",
        "--snapshot", "10", "--display", "5", "--max-positive", "6", "--infer-mode", "fcn",
        "--match-training-resize", "--stages", "outputs,scores", "--force",
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert np.load(work / "output" / "1" / first.replace(".bmp", "_prob.npy")).shape == (51, 51, 2)
    again = json.loads((work / "scores.json").read_text())
    assert (
        again["step5_resize"].startswith("nearest")
        and (work / "step5_inputs" / first.replace(".bmp", ".png")).is_file()
    )
    assert (
        sum(f["pixel"]["tp"] + f["pixel"]["fp"] + f["pixel"]["fn"] + f["pixel"]["tn"] for f in again["folds"])
        == 6 * 50 * 50
    )


def test_the_released_lists_give_the_originals_26_groups(tmp_path):
    """The 85 names of the released benign.txt (37) and malignant.txt (48), as annotation files of
    the published layout: 26 groups (20 blocks of 4 images, 10-13799-05 of 3, and 6 truncated m-names)."""
    from tests.conftest import RELEASED, need

    rel = need(RELEASED / "uc3-tubule")
    cls = images.find_class_lists(tmp_path, rel / "benign.txt", rel / "malignant.txt")
    assert len(cls.benign) == 37 and len(cls.malignant) == 48
    for name in cls.benign + cls.malignant:
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name.replace(".bmp", "_anno.bmp")).write_bytes(b"")
    groups = images.images_by_group(tmp_path)
    assert len(groups) == 26
    assert sorted(g for g in groups if g.startswith("m")) == [
        "m17_1421 IE-11 T3N",
        "m18_1421 IE-11 1-86-",
        "m2_10449-11E-T3N",
        "m39_10-12",
        "m6_10719 T3N",
        "m9_10741F-12T2",
    ]
    sizes = sorted(len(v) for g, v in groups.items() if not g.startswith("m"))
    assert sizes == [3] + [4] * 19 and len(groups["10-13799-05"]) == 3
    assert images.check_class_lists(cls, images.annotations(tmp_path)) == []
    assert cls.is_malignant("m18_1421 IE-11 1-86-31_anno.bmp") and not cls.is_malignant("m2_10449-11E-T3N1b_anno.bmp")
    # 09-1339-01 is benign, its blocks -02 and -05 malignant: separate groups by default, one with --group case
    assert "09-1339" in images.images_by_group(tmp_path, "case")
