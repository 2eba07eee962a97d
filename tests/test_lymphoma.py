"""Use case 7 (lymphoma CLL / FL / MCL): the original's geometry, crops, mean, votes and folds on
cases small enough to compute by hand; bad input in one line before any work; a tiny run end to end
with the real Caffe tools; the ten released models on generated images (issue 24).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image

from pipeline import REPO_ROOT, templates
from pipeline.usecases.lymphoma import dataset, foldlists, runner, tiles
from tests.conftest import RELEASED, need
from tests.geojson_checks import load_checked

# --------------------------------------------------------------------------- geometry (pure)


def test_published_image_gives_32_by_43_tiles_and_step5_uses_the_same_grid():
    # MATLAB rr = 1:32:1040-36 -> 1, 33, ..., 993 (32 values); cc = 1:32:1388-36 -> 1..1345 (43 values)
    assert len(tiles.step1_starts(1040)) == 32 and len(tiles.step1_starts(1388)) == 43
    assert tiles.n_step1_patches(1040, 1388) == 2752  # 32 * 43 tiles x 2 rotations (spec 3.2)
    # step 5: xrange(19, H-18, 32): centres 19..1011 and 19..1363; patch [r-18, r+18) starts at row 1 = step 1's
    assert tiles.step5_centres(1040)[0] == 19 and tiles.step5_centres(1040)[-1] == 1011
    assert tiles.step5_centres(1388)[-1] == 1363
    assert [c - 18 for c in tiles.step5_centres(1040)] == tiles.step1_starts(1040)


def test_step5_leaves_out_a_last_tile_that_step1_cuts():
    # H = 69: step 1 rr = 1:32:33 -> 1, 33 (rows 33..68, the last row); step 5 xrange(19, 51, 32) -> 19 only
    assert tiles.step1_starts(69) == [1, 33]
    assert tiles.step5_centres(69) == [19]


def test_step1_tiles_order_rotation_and_names():
    img = np.zeros((70, 70, 3), np.uint16)
    img[..., 0] = np.arange(70)[:, None]  # row index
    img[..., 1] = np.arange(70)[None, :]  # column index
    got = list(tiles.step1_tiles(img))
    # starts 1, 33 on both axes: 4 tiles x 2 rotations, n = 1..8 in (row, column, rotation) order
    assert [n for n, _ in got] == list(range(1, 9))
    first = {n: (int(t[0, 0, 0]), int(t[0, 0, 1])) for n, t in got}
    # n=1: rows/cols 1..36 -> top-left (1, 1); n=2: rotated 90 degrees counter-clockwise, the top-left is
    # the tile's top-right (row 1, column 36); n=3: second column (1, 33); n=5: second row (33, 1)
    assert first[1] == (1, 1) and first[2] == (1, 36) and first[3] == (1, 33) and first[5] == (33, 1)
    assert all(t.shape == (36, 36, 3) for _, t in got)
    assert tiles.tile_name("sj-03-2810_003", 7) == "sj-03-2810_003_sub_7.tif"


def test_ten_crops_are_caffe_oversample():
    patch = (100 * np.arange(36)[:, None] + np.arange(36)[None, :]).astype(np.float32)[None, :, :, None]
    crops = tiles.ten_crops(patch)
    assert crops.shape == (10, 32, 32, 1)
    # top-left values: corners (0,0) (0,4) (4,0) (4,4), centre (2,2); then the same mirrored left-right,
    # whose top-left is the crop's top-right: column offset + 31
    assert [float(c[0, 0, 0]) for c in crops] == [0, 4, 400, 404, 202, 31, 35, 431, 435, 233]


def _planes() -> tuple[np.ndarray, np.ndarray]:
    mean = np.zeros((3, 36, 36))
    mean[0], mean[1], mean[2] = 100, 60, 80  # constant planes, global min 60
    ramp = np.zeros((3, 36, 36))
    ramp[0] = np.arange(36)[:, None]  # rows 0..35; global min 0, max 35
    return mean, ramp


def test_mean_resize_as_the_skimage_of_2015():
    from skimage.transform import resize

    mean, ramp = _planes()
    out = tiles.mean_for_net(mean, "skimage2015")
    # skimage 0.9-0.11 sample row i at s = (i + 0.5) * 36/32 - 0.5, from 0.0625 to 34.9375: both
    # neighbours inside the plane, weights summing to 1, so a constant plane stays constant to its corner
    assert out[0, 0, 0] == pytest.approx(100, abs=1e-4) and out[0, 31, 31] == pytest.approx(100, abs=1e-4)
    r = tiles.mean_for_net(ramp, "skimage2015")
    assert r[0, 0, 5] == pytest.approx(0.0625, abs=1e-4) and r[0, 31, 5] == pytest.approx(34.9375, abs=1e-4)
    # the same as today's skimage with anti-aliasing off (float32 rounding)
    want = resize(ramp.transpose(1, 2, 0) / 35, (32, 32), order=1, mode="constant", anti_aliasing=False) * 35
    assert np.abs(r - want.transpose(2, 0, 1)).max() < 1e-4


def test_mean_resize_as_the_spec_reads_it_blends_the_edge_with_the_global_minimum():
    mean, ramp = _planes()
    out = tiles.mean_for_net(mean, "edge_cval")
    # s = (i + 0.5) * 36/32: the last row reads index 36 (cval 0 = the global minimum 60) with weight
    # 0.4375: 0.5625 * 100 + 0.4375 * 60 = 82.5; corner: 0.5625^2 * 100 + (1 - 0.5625^2) * 60 = 72.65625
    assert out[0, 10, 10] == pytest.approx(100, abs=1e-4)
    assert out[0, 31, 10] == pytest.approx(82.5, abs=1e-4) and out[0, 10, 31] == pytest.approx(82.5, abs=1e-4)
    assert out[0, 31, 31] == pytest.approx(72.65625, abs=1e-4)
    assert out[1, 31, 31] == pytest.approx(60, abs=1e-4)  # the minimum's own plane is unchanged
    r = tiles.mean_for_net(ramp, "edge_cval")
    # row 0 at 0.5625; row 31 at 35.4375 = 0.5625 * 35 + 0.4375 * 0
    assert r[0, 0, 5] == pytest.approx(0.5625, abs=1e-4) and r[0, 31, 5] == pytest.approx(19.6875, abs=1e-4)
    crop = tiles.mean_for_net(ramp, "center_crop")
    assert crop.shape == (3, 32, 32) and crop[0, 0, 0] == 2 and crop[0, 31, 0] == 33  # rows 2..33


def test_mean_modes_on_the_released_fold_1_mean():
    from pipeline.databases import read_mean

    rel = need(RELEASED / "uc7-lymphoma", "the mean resize modes on the released fold-1 mean")
    m = read_mean(rel / "DB_train_w32_1.binaryproto", shape=(3, 36, 36))
    assert m.reshape(3, -1).mean(1) == pytest.approx([119.34, 97.27, 118.57], abs=0.01)  # spec 3.1 (B, G, R)
    # last row, column 15, B channel. skimage2015: rows 34, 35 at s = 34.9375 (0.0625, 0.9375), columns
    # 16, 17 at s = 15.5 * 1.125 - 0.5 = 16.9375 (0.0625, 0.9375)
    rows = 0.0625 * m[0, 34] + 0.9375 * m[0, 35]
    assert tiles.mean_for_net(m, "skimage2015")[0, 31, 15] == pytest.approx(
        0.0625 * rows[16] + 0.9375 * rows[17], abs=1e-3
    )
    # edge_cval: row 35 (0.5625) and row 36 = the global minimum (0.4375), columns 17, 18 at s = 17.4375:
    # the spec's "B 119 -> ~109.6"
    inner = 0.5625 * m[0, 35, 17] + 0.4375 * m[0, 35, 18]
    edge = tiles.mean_for_net(m, "edge_cval")[0, 31, 15]
    assert edge == pytest.approx(0.5625 * inner + 0.4375 * m.min(), abs=1e-3) and edge == pytest.approx(
        109.66, abs=0.01
    )
    assert np.abs(tiles.mean_for_net(m, "modern") - tiles.mean_for_net(m, "skimage2015")).max() < 1e-3


def test_votes_ties_go_to_the_lowest_class():
    assert tiles.vote([0, 1, 1, 0, 2]) == ([2, 2, 1], 0)  # CLL and FL tie: CLL
    assert tiles.vote([1, 2, 2, 1]) == ([0, 2, 2], 1)  # FL and MCL tie: FL
    assert tiles.vote([2]) == ([0, 0, 1], 2)
    assert tiles.first_argmax(np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4]])).tolist() == [0, 1]
    assert tiles.confusion([(1, 0), (0, 0)]) == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]  # conf[pred, actual]


def test_names_slides_and_classes():
    assert tiles.slide_of("CLL/sj-03-2810_003.tif") == "sj-03-2810"
    assert tiles.slide_of("MCL/sj-05-5269-R10_012.tif") == "sj-05-5269-R10"
    assert [tiles.class_of(n) for n in ("CLL/a.tif", "FL/b.tif", "MCL/c.tif")] == [0, 1, 2]
    with pytest.raises(ValueError, match="names no class"):
        tiles.class_of("DLBCL/x.tif")


def test_leakage_counts_slides_in_several_test_folds():
    a = {"CLL/A_001.tif": 1, "CLL/A_002.tif": 2, "CLL/A_003.tif": 2, "FL/B_001.tif": 3}
    assert foldlists.leakage(a) == {"A": [1, 2]}
    assert foldlists.leakage_summary(a) == {
        "slides": 2,
        "slides_in_several_test_folds": 1,
        "slides_by_number_of_test_folds": {"1": 1, "2": 1},
    }


def test_fresh_and_slide_folds():
    names = [f"{c}/s{c}{s}_{n:03d}.tif" for c in tiles.CLASSES for s in range(5) for n in range(2)]
    fresh = foldlists.fresh_assignment(names, seed=3)
    assert fresh == foldlists.fresh_assignment(names, seed=3)  # seeded
    for c in tiles.CLASSES:  # per class: 10 images over 5 folds, 2 each (crossvalind's balance)
        assert sorted(k for n, k in fresh.items() if n.startswith(c)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    slide = foldlists.slide_assignment(names, seed=3)
    assert foldlists.leakage(slide) == {}  # no slide on both sides
    with pytest.raises(ValueError, match="fewer than 5 folds"):
        foldlists.slide_assignment(names[:8], seed=3)


def test_published_fold_lists():
    folder = need(RELEASED / "uc7-lymphoma", "the published fold lists' counts, disjointness and slide leakage")
    a = foldlists.published_assignment(folder)
    sizes = [sum(1 for k in a.values() if k == f) for f in range(1, 6)]
    assert sizes == [75, 75, 74, 75, 75] and len(a) == 374  # USECASES_3_5_7.md 3.1
    per_class = [
        [sum(1 for n, k in a.items() if k == f and n.startswith(c + "/")) for f in range(1, 6)] for c in tiles.CLASSES
    ]
    assert per_class == [[22, 23, 22, 23, 23], [28, 28, 28, 28, 27], [25, 24, 24, 24, 25]]
    for f in range(1, 6):  # train_k is the complement of test_k
        train = foldlists.read_parent_list(folder / f"train_w32_parent_{f}.txt")
        assert sorted(train) == sorted(n for n, k in a.items() if k != f)
    lk = foldlists.leakage_summary(a)
    assert lk["slides"] == 30 and lk["slides_in_several_test_folds"] == 30
    assert lk["slides_by_number_of_test_folds"].get("5") == 21
    assert all(int(n) >= 3 for n in lk["slides_by_number_of_test_folds"])


# --------------------------------------------------------------------------- solver schedule


def test_stepped_learning_rate_is_a_named_option():
    fixed = templates.render(
        "solver.prototxt.j2", net="n", test_iter=0, gpu=False, snapshot_prefix="p", **templates.SolverParams().__dict__
    )
    assert 'lr_policy: "fixed"' in fixed and "gamma" not in fixed and "stepsize" not in fixed
    sp = templates.SolverParams(lr_policy="step", stepsize=100000, gamma=0.1)
    text = templates.render("solver.prototxt.j2", net="n", test_iter=0, gpu=False, snapshot_prefix="p", **sp.__dict__)
    msg = templates.parse_check(text, "SolverParameter", "t")
    assert (msg.lr_policy, msg.stepsize, msg.gamma) == ("step", 100000, pytest.approx(0.1))
    assert 599999 // msg.stepsize == 5  # current_step of the released solverstates at iteration 600,000
    with pytest.raises(ValueError, match="needs --stepsize"):
        templates.SolverParams(lr_policy="step", stepsize=100000)


# --------------------------------------------------------------------------- data and bad input


def _cohort(root: Path, seed: int = 0) -> Path:
    # 100 x 68 (width x height): step 1 one row x two columns of tiles (4 patches), step 5 two tiles
    dataset.make_cohort(root, seed=seed, size=(100, 68))
    return root


def test_generated_cohort_is_deterministic(tmp_path):
    a, b = _cohort(tmp_path / "a", 5), _cohort(tmp_path / "b", 5)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".tif"]) == 30 and Path(".DS_Store") in files
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert len(dataset.check_data(a)) == 30  # the stray .DS_Store is tolerated


BAD = {
    # the first image of all is the odd one: named, against the size of the others
    "another size": (
        lambda d: Image.new("RGB", (90, 68)).save(d / "CLL/sj-90-1000_001.tif"),
        r"CLL/sj-90-1000_001\.tif: image of 90x68, the others are 100x68",
    ),
    "not RGB": (lambda d: Image.new("L", (100, 68)).save(d / "FL/sj-91-1000_001.tif"), "image mode L"),
    "unknown class": (lambda d: (d / "DLBCL").mkdir(), "DLBCL: unknown class folder"),
    "no fold list": (lambda d: Image.new("RGB", (100, 68)).save(d / "CLL/sj-90-7777_001.tif"), "image in no fold list"),
    "missing image": (
        lambda d: (d / "MCL/sj-92-1000_001.tif").unlink(),
        r"test_w32_parent_\d\.txt: fold list names MCL/sj-92-1000_001\.tif, which is not in the data",
    ),
    "empty class": (lambda d: [p.unlink() for p in (d / "MCL").glob("*.tif")], "class MCL has no .tif images"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_named_before_any_work(case, tmp_path):
    data = _cohort(tmp_path / "data")
    spoil, message = BAD[case]
    spoil(data)
    work = tmp_path / "work"
    with pytest.raises(ValueError, match=message):
        runner.run(runner.Config(data=data, work=work, fold_lists=data, show_progress=False))
    assert not work.exists()  # nothing was started


def test_bad_input_on_the_command_line_is_one_line(tmp_path):
    data = _cohort(tmp_path / "data")
    (data / "DLBCL").mkdir()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "usecase7",
            "--data",
            str(data),
            "--work",
            str(tmp_path / "w"),
            "--fold-lists",
            str(data),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in text
    errors = [ln for ln in text.splitlines() if "ERROR" in ln]
    assert len(errors) == 1 and "DLBCL: unknown class folder" in errors[0], text


def test_literal_step5_path_fails_as_the_original():
    from pipeline.usecases.lymphoma import step5

    with pytest.raises(ValueError, match=r"x\.tif\.tif: no such image"):
        step5.image_path(Path("images"), "CLL/x.tif", literal=True)
    assert step5.image_path(Path("images"), "CLL/x.tif\n") == Path("images/CLL/x.tif")


# --------------------------------------------------------------------------- end to end (real Caffe)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Fold 1 of a generated cohort through every stage: 4 training iterations."""
    root = tmp_path_factory.mktemp("uc7")
    data = _cohort(root / "data")
    sp = templates.SolverParams(max_iter=4, test_interval=4, snapshot=4, display=1)
    cfg = runner.Config(
        data=data, work=root / "work", fold_lists=data, iterations=4, folds=(1,), solver=sp, show_progress=False
    )
    return cfg, runner.run(cfg)


def test_tiny_run_end_to_end(tiny_run):
    from pipeline import databases

    cfg, summary = tiny_run
    work = cfg.work
    assert summary["patches"] == 30 * 4  # each 100 x 68 image: 1 x 2 tiles x 2 rotations
    assignment = json.loads((work / "lists" / "folds.json").read_text())["assignment"]
    test = [n for n, k in assignment.items() if k == 1]
    assert len(test) == 6  # the cohort's lists: 2 images per class in each fold
    assert (
        databases.count_records(work / "DB_train_1") == 24 * 4 and databases.count_records(work / "DB_test_1") == 6 * 4
    )
    # the mean is the mean of the training tiles (both rotations, BGR): the exact DB check of spec 3.7
    subs = [ln.split()[0] for ln in (work / "lists" / "space" / "train_w32_1.txt").read_text().splitlines()]
    want = np.mean(
        [np.asarray(Image.open(work / "subs" / s), np.float64)[:, :, ::-1].transpose(2, 0, 1) for s in subs], axis=0
    )
    assert np.abs(databases.read_mean(work / "DB_train_w32_1.binaryproto", shape=(3, 36, 36)) - want).max() < 1e-3
    net = templates.parse_check(
        (work / "models" / "1-alexnet_traing_32w_db.prototxt").read_text(), "NetParameter", "net"
    )
    assert [lay.transform_param.crop_size for lay in net.layer[:2]] == [32, 32]
    assert [lay.inner_product_param.num_output for lay in net.layer if lay.name == "ip2"] == [3]
    votes = json.loads((work / "output" / "1" / "votes.json").read_text())["images"]
    assert sorted(v["image"] for v in votes) == sorted(test)
    assert all(len(v["votes"]) == 2 and sum(v["counts"]) == 2 for v in votes)  # step 5: 1 x 2 tiles
    s = json.loads((work / "scores.json").read_text())
    conf = np.array(s["pooled"]["confusion_pred_by_true"])
    assert conf.sum() == 6 and conf.sum(axis=0).tolist() == [2, 2, 2]  # columns: true classes
    assert s["pooled"]["accuracy"] == pytest.approx(np.trace(conf) / 6)
    assert s["published_accuracy"] == 0.97 and "slides_in_several_test_folds" in s["leakage"]
    again = runner.run(cfg)  # every stage skipped
    assert again["accuracy"] == summary["accuracy"]
    # QuPath: a square per tile beside the records, classified by the tile's vote (issue 29)
    for v in votes:
        fc = load_checked(work / "output" / "1" / (Path(v["image"]).stem + ".geojson"))
        names = [f["properties"]["classification"]["name"] for f in fc["features"]]
        assert names == [("CLL", "FL", "MCL")[t] for t in v["votes"]]
        assert fc["pipeline"]["predicted"] == ("CLL", "FL", "MCL")[v["predicted"]]


def test_literal_deploy_fails_as_the_original(tiny_run, tmp_path):
    from pipeline.classify import ModelMismatch
    from pipeline.usecases.lymphoma import step5

    cfg, _ = tiny_run
    model = runner.model_path(cfg.work, 1, False, 4)
    mean = cfg.work / "DB_train_w32_1.binaryproto"
    # the shipped deploy_train32.prototxt has 2 outputs; the weights' ip2 has 3 rows
    with pytest.raises(ModelMismatch, match=r"layer 'ip2' blob 0 has shape \(3, 64\).*expects \(2, 64\)"):
        step5.TileClassifier(model, mean, tmp_path, literal_deploy=True)
    assert step5.TileClassifier(model, mean, tmp_path).predict(np.zeros((1, 36, 36, 3))).shape == (1, 3)


def test_tab_lists_are_refused_before_convert_imageset(tmp_path):
    from pipeline.lists import BadList

    data = _cohort(tmp_path / "data")
    cfg = runner.Config(data=data, work=tmp_path / "w", fold_lists=data, list_separator="tab", show_progress=False)
    # step 2 wrote "name<TAB>label"; today's convert_imageset splits at the last space: an empty DB
    with pytest.raises(BadList, match="TAB-separated line"):
        runner.run(cfg, ("patches", "lists", "dbs"))
    assert not (cfg.work / "DB_train_1").exists()
    assert "\t" in (cfg.work / "lists" / "train_w32_1.txt").read_text().splitlines()[0]  # the original's lists


def test_stepped_learning_rate_ends_with_current_step_5(tiny_run, tmp_path):
    """Caffe's own solverstate: lr_policy step with stepsize 1 and 6 iterations updates last at
    iteration 5, so current_step = 5 // 1 = 5, as the released solverstates record at 600,000 with
    a stepsize of 100,000..119,999 (599,999 // stepsize = 5)."""
    from pipeline import training
    from pipeline.caffe_env import caffe_pb2

    cfg, _ = tiny_run
    sp = templates.SolverParams(
        max_iter=6, snapshot=6, display=1, random_seed=1, lr_policy="step", stepsize=1, gamma=0.5
    )
    files = templates.render_fold(
        tmp_path,
        "1",
        cfg.work / "DB_train_1",
        None,
        cfg.work / "DB_train_w32_1.binaryproto",
        0,
        num_output=3,
        solver=sp,
    )
    training.train(files.solver, show_progress=False)
    state = caffe_pb2().SolverState()
    state.ParseFromString((tmp_path / "1_caffenet_train_w32_iter_6.solverstate").read_bytes())
    assert (state.iter, state.current_step) == (6, 5)


def test_dropout_net_has_a_relu_on_its_three_logits(tmp_path):
    files = templates.render_fold(tmp_path, "1", tmp_path / "db", None, tmp_path / "m", 0, dropout=True, num_output=3)
    net = templates.parse_check(files.train_test.read_text(), "NetParameter", "net")
    names = [lay.name for lay in net.layer]
    assert names[names.index("ip2") :] == ["ip2", "relu5", "drop5", "loss"]  # Q18: ReLU + dropout on the logits
    assert names[names.index("ip1") : names.index("ip2")] == ["ip1", "relu4", "drop4"]
    assert [lay.inner_product_param.num_output for lay in net.layer if lay.name == "ip2"] == [3]


def test_tiny_run_report(tiny_run):
    from pipeline.cli.commands.report import build_for

    cfg, _ = tiny_run
    html = Path(build_for(cfg.work, "lymphoma")).read_text()
    assert "Confusion matrix" in html and "Example tiles and their votes" in html
    assert "scores.json#/pooled/accuracy" in html  # the headline names where its numbers come from
    assert list((cfg.work / "report").rglob("lymphoma_fold1_*.png"))


# --------------------------------------------------------------------------- released models


def test_regress_runs_the_ten_released_models(tmp_path):
    from pipeline.usecases.lymphoma import regression

    rel = need(RELEASED / "uc7-lymphoma", "the ten released lymphoma models on generated images")
    data = tmp_path / "data"
    dataset.write_images(data, seed=1, slides_per_class=1, images_per_slide=1, size=(100, 68))
    ours = rel / "1_caffenet_train_w32_iter_600000.caffemodel"
    summary = regression.run(rel.parent, data, [], tmp_path / "out", [ours], [rel / "DB_train_w32_1.binaryproto"])
    assert summary["models"] == 11
    doc = json.loads((tmp_path / "out" / "regress.json").read_text())
    assert len(doc["results"]) == 11 and len(doc["images"]) == 3
    assert all(info["tiles"] == 2 for info in doc["images"].values())  # 100 x 68: 1 x 2 step-5 tiles
    assert all(sum(r["counts"]) == 2 for res in doc["results"].values() for r in res.values())
    # the released fold-1 model given as ours agrees with itself on every tile
    assert set(
        doc["tile_agreement"]["ours 1: 1_caffenet_train_w32_iter_600000.caffemodel vs fold 1 plain"].values()
    ) == {1.0}
    assert len([p for p in doc["tile_agreement"] if " plain vs fold " in p]) == 5
    # Recorded 2026-12-07 with the released weights, the skimage2015 mean (edge_cval gives the same votes
    # here), this Caffe (CPU): votes CLL/FL/MCL of
    # each model on the three generated images (1/1/0 is a tie: CLL). A change means step 5 changed.
    got = {m: [r["counts"] for r in res.values()] for m, res in doc["results"].items() if not m.startswith("ours")}
    assert got == {
        "fold 1 plain": [[2, 0, 0], [0, 2, 0], [0, 2, 0]],
        "fold 1 dropout": [[2, 0, 0], [0, 2, 0], [1, 1, 0]],
        "fold 2 plain": [[2, 0, 0], [0, 2, 0], [1, 1, 0]],
        "fold 2 dropout": [[2, 0, 0], [0, 2, 0], [1, 1, 0]],
        "fold 3 plain": [[2, 0, 0], [0, 2, 0], [0, 2, 0]],
        "fold 3 dropout": [[2, 0, 0], [0, 2, 0], [0, 2, 0]],
        "fold 4 plain": [[0, 2, 0], [0, 2, 0], [0, 2, 0]],
        "fold 4 dropout": [[2, 0, 0], [0, 2, 0], [0, 2, 0]],
        "fold 5 plain": [[1, 1, 0], [0, 2, 0], [0, 2, 0]],
        "fold 5 dropout": [[2, 0, 0], [0, 2, 0], [0, 2, 0]],
    }
    assert [r["predicted"] for r in doc["results"]["fold 2 plain"].values()] == [0, 1, 0]  # the tie goes to CLL


def test_released_models_through_step5_and_scores(tmp_path):
    rel = need(RELEASED / "uc7-lymphoma", "step 5 and scores of the released fold models, no training")
    data = _cohort(tmp_path / "data")
    cfg = runner.Config(
        data=data, work=tmp_path / "w", fold_lists=data, folds=(1, 2), released_models=rel, show_progress=False
    )
    summary = runner.run(cfg)
    assert "patches" not in summary and not (cfg.work / "subs").exists()  # nothing cut, listed or trained
    s = json.loads((cfg.work / "scores.json").read_text())
    assert [f["images"] for f in s["folds"]] == [6, 6] and s["pooled"]["images"] == 12
    votes = json.loads((cfg.work / "output" / "1" / "votes.json").read_text())["images"]
    assert all(sum(v["counts"]) == 2 for v in votes)  # 100 x 68: 1 x 2 step-5 tiles
    recipe = json.loads((cfg.work / "output" / "outputs_1.recipe.json").read_text())
    assert str(rel / "1_caffenet_train_w32_iter_600000.caffemodel") in json.dumps(recipe)  # the released weights
    # scores alone checks the step-5 stages it reads and keeps the recipe of the full run: skipped, not
    # refused (before the stage graph, scores alone recorded no inputs and so differed from the full run's)
    scores = (cfg.work / "scores.recipe.json").read_text()
    assert runner.run(cfg, ("scores",))["accuracy"] == summary["accuracy"]
    assert (cfg.work / "scores.recipe.json").read_text() == scores
    assert sorted(json.loads(scores)["inputs"]) == ["outputs_0", "outputs_1"]
    with pytest.raises(ValueError, match="outputs,scores only, not train"):
        runner.run(cfg, ("train", "outputs"))


# --------------------------------------------------------------------------- cluster jobs


def test_graph_records_are_those_of_earlier_runs_and_need_no_data(tmp_path):
    """The stage graph of a run keeps the recipe records of the runs before it (so their work folders
    stay done): fold by fold, dbs, prototxt, train and outputs; building it and its done checks read
    no data (``data=None``: the scheduler plans without the images)."""
    cfg = runner.Config(data=None, work=tmp_path, folds=(2, 4), dropout=True, iterations=7)
    g = runner.graph(cfg)
    assert [str(s.record.relative_to(tmp_path)) for s in g] == [
        "patches.recipe.json",
        "lists/lists.recipe.json",
        *[
            f
            for k in (2, 4)
            for f in (
                f"dbs_{k}.recipe.json",
                f"models/prototxt_{k}.recipe.json",
                f"models/train_{k}.recipe.json",
                f"output/outputs_{k}.recipe.json",
            )
        ],
        "scores.recipe.json",
    ]
    assert g["train 4"].outputs == ["4_caffenet_train_w32_dropout_iter_7.caffemodel"]
    assert g["dbs 2"].outputs == ["DB_train_2", "DB_test_2", "DB_train_w32_2.binaryproto"]
    assert list(g["scores"].inputs.items()) == [("outputs_0", "outputs 2"), ("outputs_1", "outputs 4")]
    assert not g.all_done(("patches",)) and not g.done("scores")
    released = runner.graph(cfg.replace(released_models=tmp_path / "rel"))
    assert released.names() == ("outputs", "scores") and released.all_done(("train",))  # nothing to train


def test_cluster_plan_and_local_prepare(tmp_path):
    from pipeline.cli.usecase_command import parse_usecase_argv

    uc, args = parse_usecase_argv(["usecase7", "--data", "d", "--work", "w", "--folds", "1-2"], Path("/runs"))
    steps = uc.job_steps(args)
    assert [(s.name, s.stages, s.tasks, s.after, s.task_option, s.gpu) for s in steps] == [
        ("prepare", ("patches", "lists"), (1,), (), None, False),
        ("train", ("dbs", "prototxt", "train"), (1, 2), ("prepare",), "--folds", True),
        ("outputs", ("outputs",), (1, 2), ("train",), "--folds", True),
        ("scores", ("scores",), (1,), ("outputs",), None, False),
    ]
    # the prepare step through the job script of `submit --scheduler local` (the same script SLURM runs)
    work = tmp_path / "w"
    argv = ["demo-lymphoma", "--work", str(work), "--stages", "patches,lists"]
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--scheduler", "local", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "prepare: ran: task(s) 1 as local" in proc.stdout
    assert (work / "lists" / "folds.json").is_file() and not (work / "DB_train_1").exists()
    # 100 rows: rr = 1:32:64 -> 1, 33; 132 columns: 1:32:96 -> 1, 33, 65: 2 x 3 tiles x 2 rotations = 12
    assert len(list((work / "subs").glob("*_sub_*.tif"))) == 30 * 12
    # the plan's done checks read the run's stage graph: prepare is done, fold 1's training is not
    _, args = parse_usecase_argv(["demo-lymphoma", "--work", str(work)], Path("/runs"))
    done = {s.name: s.done(1) for s in uc.job_steps(args)}
    assert done == {"prepare": True, "train": False, "outputs": False, "scores": False}
    (work / "lists" / "folds.json").unlink()
    assert not uc.job_steps(args)[0].done(1)  # an output removed: not done


def test_slurm_runs_the_prepare_step(slurm, tmp_path):
    """A real one-node SLURM cluster (the session's ``slurm`` fixture) runs use case 7's prepare job."""
    from tests.test_slurm import submissions, wait_for

    work = tmp_path / "w"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--scheduler", "slurm", "demo-lymphoma", "--work", str(work)]
        + ["--stages", "patches,lists"],
        cwd=REPO_ROOT,
        env=slurm.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subs = submissions(work)
    assert list(subs[0]["steps"]) == ["prepare"]
    wait_for(slurm, work, subs[0])
    assert (work / "jobs" / "tasks" / "prepare.1.exit").read_text().split()[0] == "0"
    assert (work / "lists" / "folds.json").is_file() and len(list((work / "subs").glob("*.tif"))) == 360


def test_tile_squares_for_qupath_by_hand(tmp_path):
    """Two 36x36 tiles centred on (row 18, column 18) and (18, 50): squares [0, 36) x [0, 36) and
    [32, 68) x [0, 36) in (x, y); each classified by its vote (not re-derived from the rounded
    probabilities: tile 2's probabilities tie FL and MCL and its vote is FL, the first maximum)."""
    from pipeline.usecases.lymphoma import geojson as lg

    rec = {
        "image": "FL/sj-05-1234_001.tif",
        "true": 1,
        "predicted": 1,
        "counts": [0, 2, 0],
        "votes": [1, 1],
        "centres": [[18, 18], [18, 50]],
        "probs": [[0.1, 0.7, 0.2], [0.2, 0.4, 0.4]],
    }
    fc = load_checked(lg.export_record(rec, tmp_path))
    boxes = [shapely.geometry.shape(f["geometry"]) for f in fc["features"]]
    assert boxes[0].equals(shapely.box(0, 0, 36, 36)) and boxes[1].equals(shapely.box(32, 0, 68, 36))
    assert [f["properties"]["classification"]["name"] for f in fc["features"]] == ["FL", "FL"]
    assert fc["features"][1]["properties"]["measurements"] == {"P(CLL)": 0.2, "P(FL)": 0.4, "P(MCL)": 0.4}
    assert fc["pipeline"]["counts"] == {"CLL": 0, "FL": 2, "MCL": 0}
