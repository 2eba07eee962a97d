"""Use case 5 end to end through the real command line and the real Caffe tools, on a tiny
generated cohort (fold 1 only, 5 iterations a stage): both stages, reruns, --force, the report,
and the bad inputs of a two-stage run."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, crossval, lists, recipes
from pipeline.cli.usecase_command import parse_usecase_argv
from pipeline.databases import count_records
from pipeline.templates import SolverParams
from pipeline.usecases.mitosis import detection, runner
from pipeline.usecases.mitosis.sampling import Params
from tests.geojson_checks import geojson_beside_each_map

ITER = 5
BASE = ["--iter", str(ITER), "--test-interval", str(ITER), "--snapshot", str(ITER), "--display", "5"]
FAST = ["--infer-mode", "fcn", "--folds", "1", "--stage2-negatives", "400"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    return out


def _usecase5(data: Path, work: Path, *more: str) -> subprocess.CompletedProcess:
    return _cli("usecase5", "--data", str(data), "--work", str(work), *BASE, *FAST, *more)


@pytest.fixture(scope="module")
def mitosis_run(tmp_path_factory):
    """(data, work, first run) of usecase5 on 5 patients with mitoses (one frame each, 128x128) plus
    patient 10, and a frame of patient 01 without annotations."""
    from pipeline.usecases.mitosis.cohort import make_cohort

    root = tmp_path_factory.mktemp("mitosis")
    data, work = root / "data", root / "w"
    make_cohort(data, patients=("01", "02", "03", "04", "05", "10"), frames=1, size=128, seed=1)
    # a frame whose annotation does not fit it (annotations outside the frame)
    for suffix in (".tif", "_cmask.png"):
        shutil.copy(data / f"05_01{suffix}", data / f"05_02{suffix}")
    Image.fromarray(np.zeros((140, 128), np.uint8)).save(data / "05_02_pc.png")
    out = _usecase5(data, work)
    shutil.copytree(work, root / "first", symlinks=True)  # as the first run left it (later tests --force)
    return data, work, out


def _first_run(work: Path, to: Path) -> Path:
    """A copy of the work folder as the module's first run left it."""
    shutil.copytree(work.parent / "first", to, symlinks=True)
    return to


def test_both_stages_end_to_end(mitosis_run):
    data, work, out = mitosis_run
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((work / "patches_report.json").read_text())
    assert report["patients"] == ["01", "02", "03", "04", "05"]
    assert report["problems"] == [
        f"{data / '05_02_pc.png'}: annotation is 128x140, its frame 05_02.tif is 128x128: annotations outside the "
        "frame; frame skipped",
        "patient 10: dropped by name, as the original drops patient 10 (no mitoses)",
        f"{data / '01_02.tif'}: no annotation 01_02_pc.png (frame without annotations): skipped in stage 1, as the original",
    ]
    folds = json.loads((work / "lists" / "folds.json").read_text())
    kept = [p.name for p in data.glob("*.tif") if p.name[:2] in folds and p.name != "05_02.tif"]
    train_frames = sorted(n for n in kept if folds[n[:2]] != 1)
    test_frames = sorted(n for n in kept if folds[n[:2]] == 1)
    # stage 1's maps exist for fold 1's training frames only (01_02 included: stage 2 uses it)
    assert (
        sorted(p.name.replace("_prob.png", ".tif") for p in (work / "probs" / "1").glob("*_prob.png")) == train_frames
    )
    # stage 2: positives x 24 rotations, then negatives x 4, per frame; the draws are 400 - npos each
    entries = lists.read_list(work / "subs_2nd" / "train_w32_1_2nd.txt")
    rep2 = json.loads((work / "subs_2nd" / "train_w32_1_2nd.json").read_text())
    assert sorted(rep2["images"]) == train_frames and rep2["patches"] == len(entries)
    for name, c in rep2["images"].items():
        assert c["draws"] == 400 - c["npos"], name
    pos = [e for e in entries if e.label == 1]
    neg = [e for e in entries if e.label == 0]
    assert len(pos) % 24 == 0 and len(neg) % 4 == 0 and all("_0_n_" in e.name for e in neg)
    assert sum(c["n"] for c in rep2["images"].values()) * 4 == len(neg)
    assert count_records(work / "DB_train_1_2nd") == len(entries)
    # the detections as QuPath points beside the maps: as many as the scores counted (tp + fp)
    points = geojson_beside_each_map(work / "output", "Point")
    counted = json.loads((work / "scores.json").read_text())["pooled"]
    assert points == counted["tp"] + counted["fp"]
    assert (work / "DB_train_w32_1_2nd.binaryproto").is_file()
    assert (work / "models_2nd" / f"1_caffenet_train_w32_2nd_iter_{ITER}.caffemodel").is_file()
    assert (
        sorted(p.name.replace("_prob.png", ".tif") for p in (work / "output" / "1").glob("*_prob.png")) == test_frames
    )
    scores = json.loads((work / "scores.json").read_text())
    assert [f["fold"] for f in scores["folds"]] == [1] and scores["published_f"] == 0.53
    assert scores["match_radius"] == 30.0 and scores["peak_threshold"] == 0.5
    d = scores["pooled"]
    truth = sum(1 for _ in scores["folds"][0]["images"])
    assert d["tp"] + d["fn"] >= truth  # every test frame has at least one mitosis


def test_export_of_the_work_folder_rewrites_the_same_points(mitosis_run, tmp_path):
    """``python -m pipeline export WORK`` finds the detections the scores counted again (the peak
    options and map source recorded in scores.json): the same points, one line, no traceback."""
    work = _first_run(mitosis_run[1], tmp_path / "w")
    files = sorted((work / "output").glob("*/*.geojson"))
    before = {f: json.loads(f.read_text())["features"] for f in files}  # the header names the maps' folder
    out = _cli("export", str(work))
    assert out.returncode == 0, out.stderr[-3000:]
    assert files and {f: json.loads(f.read_text())["features"] for f in files} == before
    assert all(f.stat().st_mtime_ns > work.stat().st_mtime_ns for f in files)  # written again


def test_rerun_skips_and_a_stage2_option_refuses_then_forces(mitosis_run):
    data, work, first = mitosis_run
    assert first.returncode == 0
    m1 = work / "models" / f"1_caffenet_train_w32_iter_{ITER}.caffemodel"
    t1 = m1.stat().st_mtime_ns
    again = _usecase5(data, work)
    assert again.returncode == 0 and "train2 (fold 1): already done" in again.stderr
    refused = _usecase5(data, work, "--stage2-negatives", "300")
    assert refused.returncode == 1
    err = [ln for ln in refused.stderr.splitlines() if "ERROR" in ln]
    assert len(err) == 1 and "patches2 (fold 1)" in err[0] and "stage2_negatives" in err[0] and "--force" in err[0]
    forced = _usecase5(data, work, "--stage2-negatives", "300", "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    rep2 = json.loads((work / "subs_2nd" / "train_w32_1_2nd.json").read_text())
    assert all(c["draws"] == 300 - c["npos"] for c in rep2["images"].values())
    assert m1.stat().st_mtime_ns == t1  # stage 1 untouched
    assert "train (fold 1): already done" in forced.stderr
    rep = _cli("report", str(work))
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert list((work / "report").glob("**/mitosis_fold1_*.png"))


def test_stage2_without_stage1_models_is_one_line(mitosis_run, tmp_path):
    data, work, first = mitosis_run
    assert first.returncode == 0
    copy = tmp_path / "w"
    shutil.copytree(work, copy, symlinks=True)
    (copy / "models" / f"1_caffenet_train_w32_iter_{ITER}.caffemodel").unlink()
    out = _usecase5(data, copy, "--stages", "patches2,dbs2,prototxt2,train2,outputs,scores")
    assert out.returncode == 1
    err = [ln for ln in out.stderr.splitlines() if "ERROR" in ln]
    assert len(err) == 1 and "missing input: the stage-1 model of fold 1" in err[0] and "was removed" in err[0], err


def test_no_public_archive_is_said_in_one_line(tmp_path):
    out = _cli("usecase5", "--data", str(tmp_path / "none"), "--work", str(tmp_path / "w"))
    assert out.returncode == 1
    (err,) = [ln for ln in out.stderr.splitlines() if "ERROR" in ln]
    assert f"{tmp_path / 'none'}: no such folder. Use case 5 has no public archive" in err
    out = _cli("data", "fetch", "mitosis", "--dest", str(tmp_path / "d"))
    assert out.returncode == 1
    (err,) = [ln for ln in out.stderr.splitlines() if "ERROR" in ln]
    assert "mitosis: no public archive is known; pass the folder itself with --data" in err


def test_a_config_built_in_python_finds_the_command_lines_run_done(mitosis_run, tmp_path, caplog):
    """The library runs a config: built without argparse, with the values of the command line's
    options, it expects the very recipes the command line recorded, so every stage is skipped."""
    data, work, first = mitosis_run
    assert first.returncode == 0
    copy = _first_run(work, tmp_path / "w")
    cfg = crossval.Config(
        data=data, work=copy, params=Params(stage2_negatives=400), scoring=detection.default_scoring(),
        iterations=ITER, solver=SolverParams(max_iter=ITER, test_interval=ITER, snapshot=ITER, display=5),
        infer_mode="fcn", folds=(1,), data_recipe=recipes.source(data), show_progress=False,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="pipeline"):
        summary = runner.run(cfg)
    skipped = [r.getMessage().split(": already done")[0] for r in caplog.records if "already done" in r.getMessage()]
    per_fold = ("dbs", "prototxt", "train", "probs", "patches2", "dbs2", "prototxt2", "train2", "outputs")
    assert skipped == ["patches", "folds", *(f"{s} (fold 1)" for s in per_fold), "scores"]
    assert summary["scores"] == json.loads((copy / "scores.json").read_text())


def test_cluster_done_checks_read_the_graph_and_a_removed_map_resumes(mitosis_run, tmp_path):
    """job_steps' done checks are the stage graph's: after the run every task is done; one test
    frame's map removed, its outputs task and the scores are not (the rest are), and rerunning the
    outputs stage resumes it (no recomputation from scratch: the models are untouched) for that map."""
    data, work, first = mitosis_run
    assert first.returncode == 0
    copy = _first_run(work, tmp_path / "w")
    argv = ["usecase5", "--data", str(data), "--work", str(copy), *BASE, *FAST]
    uc, args = parse_usecase_argv(argv, REPO_ROOT)
    steps = uc.job_steps(args)
    assert [s.name for s in steps if not s.done(1)] == []
    (frame,) = sorted((copy / "output" / "1").glob("*_prob.png"))  # fold 1's one test frame
    model2 = copy / "models_2nd" / f"1_caffenet_train_w32_2nd_iter_{ITER}.caffemodel"
    t2 = model2.stat().st_mtime_ns
    frame.unlink()
    assert [s.name for s in steps if not s.done(1)] == ["outputs", "scores"]
    out = _usecase5(data, copy, "--stages", "outputs")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "outputs (fold 1): 1 file(s) missing" in out.stderr and "resuming the stage" in out.stderr
    assert frame.is_file() and model2.stat().st_mtime_ns == t2
    assert [s.name for s in steps if not s.done(1)] == []
