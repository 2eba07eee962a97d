"""RADHicaL with the real Caffe tools on generated data: patches per level, lists, DBs, nets, a short
training, the cascade (against the naive run, pixel for pixel), reuse of finished levels, the search
and the table, and the bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import databases, lists, nuclei, recipes
from pipeline.caffe_env import caffe_pb2
from pipeline.cli.usecase_command import parse_usecase_argv
from pipeline.usecases.radhical import cascade, runner
from pipeline.usecases.radhical.patches import Params
from tests.geojson_checks import load_checked, raster


def random_level_models(work: Path, iterations: int = 1, scale: float = 0.7) -> None:
    """Level models with random weights (real pycaffe nets, saved by Caffe) under the original's names."""
    from pipeline import templates
    from pipeline.caffe_env import import_caffe

    caffe = import_caffe()
    (work / "models").mkdir(parents=True, exist_ok=True)
    deploy = templates.write_deploy(work / "models" / "random_deploy.prototxt", num_output=3)
    for lv in (1, 2, 3, 4):
        net = caffe.Net(str(deploy), caffe.TEST)
        rng = np.random.RandomState(lv)
        for blobs in net.params.values():
            fan = np.prod(blobs[0].data.shape[1:])
            blobs[0].data[...] = rng.randn(*blobs[0].data.shape) * scale / np.sqrt(fan)
            blobs[1].data[...] = rng.randn(*blobs[1].data.shape) * 0.2
        net.save(str(work / "models" / f"1_{lv}_caffenet_train_w32_iter_{iterations}.caffemodel"))
        blob = caffe_pb2().BlobProto()
        blob.num, blob.channels, blob.height, blob.width = 1, 3, 32, 32
        blob.data.extend([120.0 + lv] * (3 * 32 * 32))
        (work / f"DB_train_w32_1_{lv}.binaryproto").write_bytes(blob.SerializeToString())


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("img")
    img = nuclei.make_cohort(root, n_patients=1, size=160, seed=5)[0]
    crop = root / "crop"
    crop.mkdir()
    arr = np.asarray(Image.open(img))[40:72, 30:78]  # 32 x 48
    Image.fromarray(arr).save(crop / "10250_500_f00001_original.tif")
    return crop / "10250_500_f00001_original.tif"


def records(work: Path) -> dict[str, Path]:
    """The recipe records of the cascade side's stages, by stage name (full, search, cascade, table)."""
    return {
        "full": work / "cascade" / "full.recipe.json",
        "search": work / "search" / "search.recipe.json",
        "cascade": work / "cascade" / "cascade.recipe.json",
        "table": work / "table.recipe.json",
    }


def test_cascade_sending_every_pixel_to_computation_equals_the_naive_run(tmp_path, small_image):
    random_level_models(tmp_path)
    models = cascade.level_models(tmp_path, 1, 1)
    casc = cascade.Cascade(
        models, cascade.Options(mode="exact"), tmp_path / "cascade", tmp_path / "models", show_progress=False
    )
    allrun = casc.run([small_image], "all", cascade.COMPUTE_ALL)
    naive = casc.run([small_image], "naive", None, levels=(1,))
    stem = small_image.name[:-4]
    st = allrun.images[stem]
    assert [st[lv]["shape"] for lv in (4, 3, 2, 1)] == [[3, 4], [8, 12], [16, 24], [32, 48]]
    assert all(st[lv]["computed"] == st[lv]["pixels"] and st[lv]["accepted"] == 0 for lv in (4, 3, 2, 1))
    a = np.asarray(Image.open(cascade.prob_path(allrun.level_dir(1), stem, 1)))
    b = np.asarray(Image.open(cascade.prob_path(naive.level_dir(1), stem, 1)))
    assert a.shape == (32, 48, 3) and np.array_equal(a, b) and a[:, :, 1].std() > 0
    assert np.array_equal(
        cascade.final_segmentation(allrun, stem, 0.5267), cascade.final_segmentation(naive, stem, 0.5267)
    )
    # the cascade's level 1 is not the naive run's folder (other recipe)
    assert allrun.levels[1] != naive.levels[1]


def test_finished_levels_are_reused_and_other_options_are_not(tmp_path, small_image):
    random_level_models(tmp_path)
    models = cascade.level_models(tmp_path, 1, 1)
    casc = cascade.Cascade(
        models, cascade.Options(mode="fcn"), tmp_path / "cascade", tmp_path / "models", show_progress=False
    )
    stem = small_image.name[:-4]
    allrun = casc.run([small_image], "all", cascade.COMPUTE_ALL)
    pub = casc.run([small_image], "published", cascade.PUBLISHED)
    # level 4 of any cascade is shared; finer levels depend on the thresholds
    assert pub.levels[4] == allrun.levels[4] and pub.levels[3] != allrun.levels[3]
    # finished levels are not recomputed: the stats files are kept as they are
    marker = Path(pub.levels[2]) / f"{stem}_2.json"
    before = marker.stat().st_mtime_ns
    again = casc.run([small_image], "published", cascade.PUBLISHED)
    assert marker.stat().st_mtime_ns == before and again.images[stem][2] == pub.images[stem][2]
    # other options never reuse them
    other = cascade.Cascade(
        models,
        cascade.Options(mode="fcn", q1="intended"),
        tmp_path / "cascade",
        tmp_path / "models",
        show_progress=False,
    ).run([small_image], "published-q1", cascade.PUBLISHED)
    assert other.levels[4] == pub.levels[4] and other.levels[3] != pub.levels[3]
    exact = cascade.Cascade(
        models, cascade.Options(mode="exact"), tmp_path / "cascade", tmp_path / "models", show_progress=False
    )
    assert exact.key(4, None, 0, 1)[0] != casc.key(4, None, 0, 1)[0]


def test_cascade_errors_name_the_file(tmp_path, small_image):
    random_level_models(tmp_path)
    (tmp_path / "models" / "1_2_caffenet_train_w32_iter_1.caffemodel").unlink()
    models = cascade.level_models(tmp_path, 1, 1)
    casc = cascade.Cascade(
        models, cascade.Options(mode="fcn"), tmp_path / "cascade", tmp_path / "models", show_progress=False
    )
    with pytest.raises(FileNotFoundError, match=r"level 2: .*1_2_caffenet_train_w32_iter_1.caffemodel"):
        casc.run([small_image], "pub", cascade.PUBLISHED)
    assert not list((tmp_path / "cascade").glob("level4-*/*.json"))  # nothing was computed first
    tiny = tmp_path / "9_500_f00001_original.tif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny)
    with pytest.raises(ValueError, match="9_500_f00001_original.tif: 8x8 is too small for level 4"):
        casc.run([tiny], "tiny", None, levels=(4,))
    with pytest.raises(ValueError, match="--q1"):
        cascade.Cascade(models, cascade.Options(q1="new"), tmp_path, tmp_path)


def test_patches_lists_dbs_nets_and_training_per_level(tmp_path):
    data = tmp_path / "data"
    nuclei.make_cohort(data, n_patients=5, size=650, seed=4)
    Image.fromarray(np.zeros((500, 500, 3), np.uint8)).save(
        data / "10254_500_f00002_original.tif"
    )  # too small for level 4
    Image.fromarray(np.zeros((500, 500), np.uint8)).save(data / "10254_500_f00002_mask.png")
    cfg = runner.Config(
        data=data,
        work=tmp_path / "w",
        params=Params(max_positive=12),
        iterations=2,
        train_folds=(1,),
        show_progress=False,
    )
    runner.run(cfg, ("patches", "folds"))
    report = json.loads((cfg.work / "patches_report.json").read_text())
    assert any(
        "10254_500_f00002_original.tif: level 4 (x0.1) is 50x50, smaller than 65x65" in p for p in report["problems"]
    )
    assert report["mask_kinds"] == {"1-bit": 5, "8-bit 0/1": 1}
    c = report["images"]["10250_500_f00001_original.tif"]
    # level 1: caps of the requested 500 scaled (here 12, 12, round(3.6) = 4); levels 2-4 up to 12 each
    assert c["1"]["p"] == 12 and c["1"]["e"] == 12 and c["1"]["b"] <= 4
    assert set(c["4"]) == {"p2", "p1", "n0"} and all(v <= 12 for v in c["4"].values())
    tab = (cfg.work / "subs_2" / "train_w32_1.txt").read_text()
    assert "\t" in tab and tab == (cfg.work / "lists" / "train_w32_1_2.txt").read_text().replace(" ", "\t")
    ents = lists.read_list(cfg.work / "lists" / "train_w32_1_2.txt")
    labels = [e.label for e in ents]
    assert set(labels) <= {0, 1, 2} and 2 in labels and 1 in labels
    first = ents[0].name
    assert first.endswith("_2_p2_1_0.png") and (cfg.work / "subs_2" / first).is_file()
    # per image the original's order: class 2, then 1, then 0
    per_img = [e.label for e in ents if e.name.startswith(first.split("_2_p2")[0] + "_")]
    assert per_img == sorted(per_img, reverse=True)
    assert {e.label for e in lists.read_list(cfg.work / "lists" / "train_w32_1_1.txt")} == {0, 1}
    # dbs, prototxt and train of every level through stage recipes keyed "<fold>_<level>"
    runner.run(cfg, ("patches", "folds", "dbs", "prototxt", "train"))
    for lv in (2, 4):
        assert databases.count_records(cfg.work / f"DB_train_1_{lv}") == len(
            lists.read_list(cfg.work / "lists" / f"train_w32_1_{lv}.txt")
        )
        assert (cfg.work / f"DB_train_w32_1_{lv}.binaryproto").is_file()
        assert json.loads((cfg.work / f"dbs_1_{lv}.recipe.json").read_text())["state"] == "done"
    solver = cfg.work / "models" / "1-4-alexnet_solver_ada.prototxt"
    net = (cfg.work / "models" / "1-4-alexnet_traing_32w_db.prototxt").read_text()
    assert "DB_train_1_4" in net and "DB_train_w32_1_4.binaryproto" in net and "num_output: 3" in net
    assert '1_4_caffenet_train_w32"' in solver.read_text()
    model = cfg.work / "models" / "1_4_caffenet_train_w32_iter_2.caffemodel"
    from pipeline.classify import num_outputs

    assert num_outputs(model) == 3
    assert json.loads((cfg.work / "models" / "train_1_4.recipe.json").read_text())["label"] == "train (fold 1, level 4)"
    # the cluster plan reads the same stage graph: prepare and fold 1's training are done, the cascade side is not
    uc, args = parse_usecase_argv(
        ["radhical", "--data", str(data), "--work", str(cfg.work), "--iter", "2", "--train-folds", "1"], tmp_path
    )
    steps = uc.job_steps(args)
    assert [(s.name, s.stages, s.tasks, s.after, s.task_option) for s in steps] == [
        ("prepare", ("patches", "folds", "dbs", "prototxt"), (1,), (), None),
        ("train", ("train",), (1,), ("prepare",), "--train-folds"),
        ("cascade", ("full", "search", "cascade", "table"), (1,), ("train",), None),
    ]
    assert [s.done(1) for s in steps] == [True, True, False]
    # a level model removed: fold 1's training task is not done any more (its recipe's output is missing)
    hidden = model.rename(model.with_suffix(".hidden"))
    assert not steps[1].done(1) and steps[0].done(1)
    hidden.rename(model)
    # the same options again: every stage skipped, nothing rebuilt
    before = model.stat().st_mtime_ns
    runner.run(cfg, ("patches", "folds", "dbs", "prototxt", "train"))
    assert model.stat().st_mtime_ns == before
    # another option: refused in one line naming it, nothing touched
    cfg = cfg.replace(caffe_shuffle=True)
    with pytest.raises(recipes.StaleRecipe) as e:
        runner.run(cfg, ("patches", "folds", "dbs", "prototxt", "train"))
    msg = str(e.value)
    # (the seed no longer orders the DB: it is recorded as null with -shuffle)
    assert msg.startswith(f"dbs (fold 1, level 1): {cfg.work / 'DB_train_1_1'} was made with seed=1, ")
    assert "(also changed: caffe_shuffle)" in msg and "--force" in msg and "\n" not in msg
    assert model.stat().st_mtime_ns == before
    # --force: the databases again, and every stage after them (the models are trained again)
    cfg = cfg.replace(force=True)
    runner.run(cfg, ("patches", "folds", "dbs", "prototxt", "train"))
    assert model.stat().st_mtime_ns != before and num_outputs(model) == 3
    assert json.loads((cfg.work / "dbs_1_4.recipe.json").read_text())["options"]["caffe_shuffle"] is True
    with pytest.raises(ValueError, match="fold 1, level 3: no training patches"):
        (cfg.work / "lists" / "train_w32_1_3.txt").write_text("")
        runner.stage_dbs(cfg, 1, 3)


def test_full_search_cascade_and_table_stages(tmp_path):
    data = tmp_path / "data"
    nuclei.make_cohort(data, n_patients=10, size=120, seed=6)  # two patients per fold
    work = tmp_path / "w"
    random_level_models(work, iterations=3)
    cfg = runner.Config(
        data=data,
        work=work,
        params=Params(max_positive=5),
        iterations=3,
        train_folds=(1,),
        cascade=cascade.Options(mode="fcn"),
        grid=4,
        validation_count=1,
        show_progress=False,
    )
    out = runner.run(cfg, ("patches", "folds", "full", "search", "cascade", "table"))
    assert out["problems"] == "30 (listed in patches_report.json)"
    report = json.loads((work / "patches_report.json").read_text())
    assert any("level 2 (x0.5) is 60x60, smaller than 65x65" in p for p in report["problems"])
    # Q12, disjoint by default: fold 1's first test patient chooses the thresholds, the other is tested
    parents = lists.read_names(work / "lists" / "test_w32_parent_1.txt")
    assert len(parents) == 2
    assert out["validation"] == [f"{parents[0]}_500_f00001_original.tif"]
    assert out["test"] == [f"{parents[1]}_500_f00001_original.tif"]
    s = json.loads((work / "search" / "search.json").read_text())
    assert s["images"] == out["validation"]
    assert [(st["which"], st["level"]) for st in s["steps"]] == [
        ("lower", 1),
        ("upper", 2),
        ("lower", 2),
        ("upper", 3),
        ("lower", 3),
        ("upper", 4),
        ("lower", 4),
    ]
    assert all(len(st["points"]) == 4 for st in s["steps"]) and (work / "search" / "search.png").stat().st_size > 0
    assert all(st["points"][st["pick"]]["t"] > 0 for st in s["steps"] if st["which"] == "upper")
    md = (work / "radhical.md").read_text()
    assert "| F-score |" in md and "0.8218" in md and "0.8489" in md and "| windows saved |" in md
    assert "| wall time saved |" in md and "| wall s per image, level 4 (x0.1) |" in md
    # the fcn engine's work is its 64-px tiles: a 120 x 120 image has 2 x 2 at level 1, and the naive run
    # computes them all
    assert "| fcn tiles saved |" in md and "| fcn tiles, level 1 (x1) |" in md
    res = json.loads((work / "radhical.json").read_text())
    searched_l1 = s["thresholds"]["lower"][0]
    # each RADHicaL column is followed by the naive run graded at the same final threshold, named in the header
    assert "| radhical (published thresholds), P1 > 0.5267 | naive (level 1, every pixel), P1 > 0.5267 |" in md
    assert (
        f"| radhical (searched thresholds), P1 > {searched_l1:g} | naive (level 1, every pixel), P1 > {searched_l1:g} |"
        in md
    )
    for label in ("radhical (published thresholds)", "radhical (searched thresholds)"):
        row = res["runs"][label]
        assert row["naive"]["lower1"] == row["lower1"] and row["naive"]["pixels"]["1"] == 120 * 120
        assert row["naive"]["tiles"] == {"1": 4.0}
        assert set(row["level_seconds"]) == {"4", "3", "2", "1"}
    assert res["runs"]["radhical (searched thresholds)"]["chosen_on"] == "validation: " + out["validation"][0]
    assert "none of them was used to choose a threshold" in md
    # every run of a test image side by side in one process: the wall times compare like for like
    assert "- Wall times side by side:" in md and "(not side by side)" not in md
    # QuPath: each RADHicaL row's final segmentation of each test image as polygons (issue 29), exactly
    # the mask the table graded when rasterised back
    for label in ("radhical (published thresholds)", "radhical (searched thresholds)"):
        row = res["runs"][label]
        run = cascade.load_run(work / "cascade", row["run"])
        for stem in run.images:
            fc = load_checked(work / "geojson" / row["run"] / f"{stem}.geojson")
            want = cascade.final_segmentation(run, stem, row["lower1"])
            assert np.array_equal(raster(fc, want.shape, 1.0), want)
    # another search grid: refused in one line naming it; --force recomputes the search, the cascade
    # runs (the searched thresholds are one of their options) and the table
    made = {n: json.loads(p.read_text())["made"] for n, p in records(work).items()}
    cfg = cfg.replace(grid=3)
    with pytest.raises(recipes.StaleRecipe, match=r"^search: .*search.json was made with grid=4, this run asks grid=3"):
        runner.run(cfg, ("search", "cascade", "table"))
    assert {n: json.loads(p.read_text())["made"] for n, p in records(work).items()} == made
    runner.run(cfg.replace(force=True), ("search", "cascade", "table"))
    again = {n: json.loads(p.read_text())["made"] for n, p in records(work).items()}
    assert [n for n in made if again[n] != made[n]] == ["search", "cascade", "table"]
    assert json.loads((work / "search" / "search.json").read_text())["grid"] == 3
    # the other reading of Q12: the validation patient is tested too, and the table says so
    cfg = cfg.replace(test_set="with-validation")
    with pytest.raises(
        recipes.StaleRecipe, match=r"^cascade: .*naive.json was made with test_set=disjoint, this run asks"
    ):
        runner.run(cfg, ("patches", "folds", "search", "cascade", "table"))
    cfg = cfg.replace(force=True)  # recomputes the cascade and the table; the search's recipe did not change: kept
    out2 = runner.run(cfg, ("patches", "folds", "search", "cascade", "table"))
    assert out2["test"] == out["validation"] + out["test"]
    assert (
        f"1 of them also chose the searched thresholds (validation): {out['validation'][0]}"
        in (work / "radhical.md").read_text()
    )
    # the validation image's naive level 1 is the full stage's, the other image's levels the first run's:
    # timed in other sessions than this run's new levels, which the table says
    assert "(not side by side)" in (work / "radhical.md").read_text()
    # explicit thresholds make one cascade run; the search is reused, not redone
    cfg = cfg.replace(test_set="disjoint")
    t0 = (work / "search" / "search.json").stat().st_mtime_ns
    cfg = cfg.replace(thresholds=cascade.Thresholds.parse("0.5,0,0,0", "2,2,2"))
    runner.run(cfg, ("patches", "folds", "search", "cascade", "table"))
    assert (work / "search" / "search.json").stat().st_mtime_ns == t0
    res = json.loads((work / "radhical.json").read_text())
    assert list(res["runs"]) == ["radhical (given thresholds)"]
    assert res["runs"]["radhical (given thresholds)"]["pixels"]["1"] == 120 * 120
    # every validation patient: nothing left to test on, said in one line
    cfg = cfg.replace(validation_count=2)
    with pytest.raises(ValueError, match=r"fold 1 has 2 test patient\(s\), all of them validation patients"):
        runner.run(cfg, ("patches", "folds", "cascade"))


def test_config_from_the_command_line_is_a_frozen_config_a_python_caller_can_build(tmp_path):
    import dataclasses

    uc, args = parse_usecase_argv(["demo-radhical", "--work", "w", "--grid", "16"], tmp_path)
    cfg = uc.config(args)
    # the demo's defaults (RADHicaL's __init__.py): 300 iterations, 120 positives, fold 1 only, one
    # validation patient, the exact engine (issue 26: the cascade's cost follows its windows), Caffe's
    # intervals 100000/100000/50
    assert (cfg.work, cfg.iterations, cfg.seed, cfg.jobs, cfg.infer_mode) == (tmp_path / "w", 300, 1, 1, "exact")
    assert (cfg.params.max_positive, cfg.train_folds, cfg.validation_count, cfg.grid) == (120, (1,), 1, 16)
    assert cfg.cascade == cascade.Options(mode="exact")
    assert (cfg.solver.max_iter, cfg.solver.test_interval, cfg.solver.snapshot, cfg.solver.display) == (
        300,
        100000,
        100000,
        50,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.grid = 4  # type: ignore[misc]
    # the same config without argparse (the cascade options follow infer_mode and gpu unless given)
    direct = runner.Config(
        work=tmp_path / "w",
        data=None,
        iterations=300,
        infer_mode="exact",
        solver=cfg.solver,
        params=Params(max_positive=120),
        train_folds=(1,),
        validation_count=1,
        grid=16,
    )
    assert direct == cfg
    uc, args = parse_usecase_argv(["radhical", "--data", "d", "--work", "w", "--lower", "0.5,0,0,0"], tmp_path)
    with pytest.raises(ValueError, match="give both --lower L1,L2,L3,L4 and --upper U2,U3,U4, or neither"):
        uc.config(args)
