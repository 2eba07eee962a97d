"""`python -m pipeline usecase6` on the real shared patches: every stage, then reruns skip."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, databases, lists
from pipeline.templates import SolverParams
from pipeline.usecases import get
from tests.conftest import REALDATA, need


def test_usecase6_end_to_end_on_real_patches(tmp_path):
    data = need(REALDATA)
    split = tmp_path / "split"
    split.mkdir()
    lists.write_names(split / "cases_train.txt", ["10253"])
    lists.write_names(split / "cases_val.txt", ["8863"])
    lists.write_names(split / "cases_test.txt", ["10254", "12345"])  # 12345 is missing: warned, counted
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "usecase6",
        "--data",
        str(data),
        "--work",
        str(work),
        "--split-dir",
        str(split),
        "--iter",
        "20",
        "--test-interval",
        "10",
        "--snapshot",
        "10",
        "--display",
        "5",
    ]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((work / "summary.json").read_text())
    assert summary["missing_patients"] == ["12345"]
    assert summary["patches"]["train"] == {
        "patches_class0": 958,
        "patches_class1": 140,
        "sources_class0": 479,
        "sources_class1": 70,
    }
    assert summary["patches"]["val"]["sources_class0"] == 1
    assert summary["patches"]["test"]["patches_class0"] == 1544
    assert databases.count_records(work / "DB_train_1") == 958 + 140 + 4
    assert databases.count_records(work / "DB_test_1") == 1544 + 152
    assert (work / "models" / "1_caffenet_train_w32_noresize_iter_20.caffemodel").is_file()
    assert (work / "models" / "1_caffenet_train_w32_noresize_log.png").is_file()
    assert summary["overall"]["n"] == 772 + 76
    assert "F-score" in (work / "eval" / "metrics.md").read_text() and "0.7648" in out.stdout
    # a rerun skips every finished stage and gives the same DB
    before = databases.db_items(work / "DB_train_1")
    again = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert again.returncode == 0
    assert "patches: already done with this recipe" in again.stderr and "train: already done" in again.stderr
    assert databases.db_items(work / "DB_train_1") == before


def test_same_seed_gives_byte_identical_lists_and_dbs(tmp_path, small_cohort):
    root, _ = small_cohort
    from pipeline.usecases.idc import runner

    outs = []
    for name in ("a", "b"):
        cfg = runner.Config(data=root, work=tmp_path / name, split_dir=root, seed=11, show_progress=False)
        runner.run(cfg, stages=("patches", "lists", "dbs"))
        outs.append(tmp_path / name)
    a, b = outs
    for rel in ("lists/train_w32_1.txt", "lists/space/test_w32_1.txt", "DB_train_1.order.txt"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert databases.db_items(a / "DB_train_1") == databases.db_items(b / "DB_train_1")
    assert (a / "DB_train_w32_1.binaryproto").read_bytes() == (b / "DB_train_w32_1.binaryproto").read_bytes()


def test_missing_data_gives_a_clear_error(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "usecase6",
            "--data",
            str(tmp_path / "nope.zip"),
            "--work",
            str(tmp_path / "w"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "nope.zip: neither an archive nor a folder" in out.stderr
    assert "python -m pipeline data fetch idc --dest DIR" in out.stderr


# --------------------------------------------------------------------------- the stage graph and its config


def _parse(*argv: str):
    from pipeline.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_config_from_the_command_line_equals_the_one_built_in_python(tmp_path):
    """The CLI builds a frozen Config from its options; a Python caller builds the same one directly."""
    from pipeline.usecases.idc import runner

    idc = get("idc")
    data, work = tmp_path / "d", tmp_path / "w"
    args = _parse(
        "usecase6", "--data", str(data), "--work", str(work), "--iter", "20", "--seed", "3", "--snapshot", "10",
        "--variant", "resize", "--dropout", "-j", "2", "--no-oversample", "--caffe-shuffle", "--skip-bad",
    )  # fmt: skip
    want = runner.Config(
        data=data,
        work=work,
        iterations=20,
        seed=3,
        jobs=2,
        caffe_shuffle=True,
        variant="resize",
        dropout=True,
        oversample=False,
        skip_bad=True,
        solver=SolverParams(max_iter=20, snapshot=10),
        figures=idc.published,
    )
    assert idc.config(args, args.data) == want
    # the evaluate command's stage mode (its own option declarations) gives the same config
    ev = _parse("evaluate", "--data", str(data), "--work", str(work), "--iter", "20", "--seed", "3", "--snapshot",
                "10", "--variant", "resize", "--dropout", "--jobs", "2", "--no-oversample", "--caffe-shuffle",
                "--skip-bad")  # fmt: skip
    assert idc.config(ev, ev.data) == want
    # defaults: patch workers all cores (jobs None), seed 1, the published split, crop, oversampled
    plain = idc.config(_parse("usecase6", "--data", str(data), "--work", "w"), data)
    got = (plain.jobs, plain.seed, plain.split_dir, plain.variant, plain.oversample, plain.work)
    assert got == (None, 1, None, "crop", True, Path("w"))
    assert runner.Config(data=data, work=work).jobs is None  # in Python too: every core cuts patches
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.seed = 2
    # the demo: its cohort's split, solver intervals for its few iterations, Caffe seeded with --seed
    demo = idc.config(_parse("demo", "--iter", "20", "--work", str(work)), data, None, demo=True)
    assert demo.split_dir == data and demo.solver == SolverParams(
        max_iter=20, test_interval=100, snapshot=100, display=20, random_seed=1
    )


def test_the_graph_keeps_the_stages_and_recipe_records_of_earlier_work_folders(tmp_path):
    """Each stage's id, recipe record and outputs are where the runner before the stage graph put them
    (an existing work folder stays "done"); a stage asked for checks the stages before it."""
    from pipeline.usecases.idc import runner

    work = tmp_path / "w"
    cfg = runner.Config(data=tmp_path / "d", work=work, iterations=20, variant="crop-morerot", dropout=True)
    g = runner.graph(cfg, tmp_path / "d")  # the published split (shipped lists)
    assert g.names() == runner.STAGES
    records = {s.id: (str(s.record.relative_to(work)), s.label, list(s.outputs)) for s in g}
    assert records == {
        "patches": ("patches.recipe.json", "patches", ["patches_report.json", "subs"]),
        "lists": ("lists/lists.recipe.json", "lists", ["space/train_w32_1.txt", "space/test_w32_1.txt"]),
        "dbs 1": ("dbs_1.recipe.json", "dbs", ["DB_train_1", "DB_test_1", "DB_train_w32_1.binaryproto"]),
        "prototxt 1": ("models/prototxt_1.recipe.json", "prototxt", ["1-alexnet_solver_ada.prototxt"]),
        "train 1": (
            "models/train_1.recipe.json",
            "train",
            ["1_caffenet_train_w32_noresize_morerot_dropout_iter_20.caffemodel"],
        ),
        "evaluate": ("eval/evaluate.recipe.json", "evaluate", ["metrics.json", "metrics.md"]),
    }
    assert [s.id for s in g.needed({"dbs"})] == ["patches", "lists", "dbs 1"]
    # the published split, as the patches recipe names it (84/29/49 patients)
    assert g["patches"].options["split"].startswith("84/29/49 patients, sha256 ")
    assert g["dbs 1"].options == {"seed": 1, "caffe_shuffle": False}
    assert g["prototxt 1"].options["iter"] == 20 and g["prototxt 1"].options["dropout"] is True
