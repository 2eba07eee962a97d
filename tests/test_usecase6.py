"""`python -m pipeline usecase6` on the real shared patches: every stage, then reruns skip."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline import REPO_ROOT, databases, lists
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
