"""Standalone ``infer`` reruns into the same --out (issue 28, item 4(b)): maps made another way are
refused naming the option (or recomputed with --force), never silently skipped; two inputs of one
stem from different folders are refused before any work."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from tests.conftest import RELEASED, need


@pytest.fixture(scope="module")
def setup(tmp_path_factory, caffe):
    d = need(RELEASED / "uc2-epi")
    tmp = tmp_path_factory.mktemp("rerun")
    (tmp / "in").mkdir()
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp / "in" / "a.png")
    return {
        "tmp": tmp,
        "model": d / "1_caffenet_train_w32_iter_600000.caffemodel",
        "model2": d / "2_caffenet_train_w32_iter_600000.caffemodel",
        "mean": d / "DB_train_w32_1.binaryproto",
        "mean2": d / "DB_train_w32_2.binaryproto",
    }


def infer(s, out, *extra, model=None, mean=None, images=None):
    args = ["infer", *(images or [str(s["tmp"] / "in" / "a.png")]), "--out", str(out)]
    args += ["--model", str(model or s["model"]), "--mean", str(mean or s["mean"]), *extra]
    return main(args)


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "change, option",
    [
        ({"model": "model2"}, "--model"),
        ({"mean": "mean2"}, "--mean"),
        ({"extra": ("--stride", "2")}, "--stride"),
        ({"extra": ("--resize", "0.5")}, "--resize"),
        ({"extra": ("--mode", "reference")}, "--mode"),
        ({"extra": ("--png-scale", "round")}, "--png-scale"),
        ({"extra": ("--all-pixels",)}, "--all-pixels"),
    ],
)
def test_a_rerun_with_another_option_is_refused_naming_it(setup, caplog, change, option):
    out = setup["tmp"] / f"out{option}"
    assert infer(setup, out) == 0
    first = (out / "a_prob.png").read_bytes()
    caplog.clear()
    kw = {k: setup[v] for k, v in change.items() if k in ("model", "mean")}
    assert infer(setup, out, *change.get("extra", ()), **kw) == 1
    (line,) = error_lines(caplog)
    assert f"holds step-5 maps made with {option}" in line and "--force" in line and "\n" not in line
    assert (out / "a_prob.png").read_bytes() == first  # nothing changed
    # --force: the old maps go, the image is computed under the new record
    caplog.clear()
    assert infer(setup, out, *change.get("extra", ()), "--force", **kw) == 0
    rec = json.loads((out / ".outputs.json").read_text())
    assert rec["model"] == str((kw.get("model") or setup["model"]).resolve())
    assert any("--force: removing 2 file(s)" in r.getMessage() for r in caplog.records)  # _prob.png, _class.png
    assert (out / "a_prob.png").is_file()


def test_same_content_elsewhere_is_the_same_model(setup, tmp_path):
    out = tmp_path / "out"
    assert infer(setup, out) == 0
    copy = tmp_path / "copy.caffemodel"
    shutil.copy(setup["model"], copy)
    assert infer(setup, out, model=copy) == 0  # same sha256: the finished image is kept, not refused


def test_a_folder_with_an_old_record_is_refused(setup, tmp_path, caplog):
    out = tmp_path / "out"
    assert infer(setup, out) == 0
    (out / ".outputs.json").write_text('{"png_scale": "minmax"}\n')  # as written before issue 28
    caplog.clear()
    assert infer(setup, out) == 1
    assert "recorded before their model and options were" in error_lines(caplog)[0]


def test_two_inputs_of_one_stem_are_refused_before_any_work(setup, tmp_path, caplog):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        shutil.copy(setup["tmp"] / "in" / "a.png", tmp_path / sub / "a.png")
    out = tmp_path / "out"
    caplog.clear()
    assert infer(setup, out, images=[str(tmp_path / "x"), str(tmp_path / "y")]) == 1
    (line,) = error_lines(caplog)
    assert f"inputs {tmp_path / 'x' / 'a.png'} and {tmp_path / 'y' / 'a.png'} share the name 'a'" in line
    assert not out.exists()  # before any work: not even the output folder
