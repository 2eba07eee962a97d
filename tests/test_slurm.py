"""Use case 2 (demo cohort) as SLURM job arrays on a real one-node cluster (the ``slurm`` fixture).

One submission: prepare (one job) -> train (array, task k = fold k, folds 1 and 2, 20 iterations)
-> outputs (array, task k = step 5 of fold k) -> scores.
The tests check every artefact, the order the tasks ran in (their own start/exit records), the
recorded ``--dependency=afterok:`` chain, ``status``, a rerun that submits nothing, and a rerun
after an output was deleted that submits only step 5 and the scores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, artefacts, crossval, training

# demo-epi with seed 1 assigns its six generated patients to folds so (lists/folds.json):
FOLDS = {"8001": 3, "8002": 2, "8003": 5, "8004": 1, "8005": 4, "8006": 1}
# step 5 of fold k: its test patients into output/<k>/, and (use case 2 picks a threshold) the next
# fold's patients, its validation images, into validation/<k>/: fold 1 -> 8004, 8006 (fold 1) and
# 8002 (fold 2); fold 2 -> 8002 and 8001 (fold 3). Each folder records its PNG scale (.outputs.json).
OUTPUT_STEMS = {1: {"8004_00001", "8006_00001"}, 2: {"8002_00001"}}
VALIDATION_STEMS = {1: {"8002_00001"}, 2: {"8001_00001"}}
OUTPUT_KINDS = ("_class.png", "_prob.png", "_prob.npy")


def output_names(stems: set[str], geojson: bool = False) -> set[str]:
    """The files of a step-5 folder; ``geojson``: a test folder, with each image's GeoJSON (issue 29)."""
    return {s + kind for s in stems for kind in OUTPUT_KINDS + ((".geojson",) if geojson else ())} | {".outputs.json"}


COMMAND = ["demo-epi", "--iter", "20", "--folds", "1,2"]
WAIT_S = 900


def pipeline_cli(cluster, *argv: str) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGV`` from the checkout, talking to the test cluster."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=REPO_ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"pipeline {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def submissions(work: Path) -> list[dict]:
    return json.loads((work / "jobs" / "submissions.json").read_text())


def wait_for(cluster, work: Path, sub: dict) -> None:
    """Wait until none of the jobs of submission ``sub`` is in the queue."""
    arrays = {j.split("_")[0] for s in sub["steps"].values() for j in s["tasks"].values()}
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        queued = cluster.run(
            "squeue", "--noheader", "--format=%i", f"--jobs={','.join(sorted(arrays))}", check=False
        ).stdout.split()
        if not queued:
            return
        time.sleep(3)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((work / "jobs").rglob("*.out")))
    pytest.fail(f"jobs {sorted(arrays)} still queued after {WAIT_S} s\n{logs}\n{cluster.logs()}")


def marks(work: Path, step: str, task: int) -> tuple[float, int, float]:
    """(start time, exit status, exit time) of a task, from the records its job script wrote."""
    start = (work / "jobs" / "tasks" / f"{step}.{task}.start").read_text().split()
    end = (work / "jobs" / "tasks" / f"{step}.{task}.exit").read_text().split()
    return float(start[2]), int(end[0]), float(end[3])


@pytest.fixture(scope="module")
def run(slurm, tmp_path_factory):
    """The submission, waited for: (cluster, work folder, submit's stdout)."""
    work = tmp_path_factory.mktemp("slurm-epi") / "work"
    proc = pipeline_cli(slurm, "submit", "--scheduler", "slurm", *COMMAND, "--work", str(work))
    subs = submissions(work)
    wait_for(slurm, work, subs[0])
    return slurm, work, proc.stdout


def test_submission_records_arrays_and_dependencies(run):
    _, work, out = run
    subs = submissions(work)
    assert len(subs) == 1 and subs[0]["scheduler"] == "slurm"
    steps = subs[0]["steps"]
    assert list(steps) == ["prepare", "train", "outputs", "scores"]
    array = {name: {j.split("_")[0] for j in s["tasks"].values()} for name, s in steps.items()}
    assert all(len(ids) == 1 for ids in array.values()), array  # each step one array job
    ids = {name: ids.pop() for name, ids in array.items()}
    # task ids: one prepare task, one training task and one step-5 task per fold, one scores task
    assert {n: sorted(int(t) for t in s["tasks"]) for n, s in steps.items()} == {
        "prepare": [1],
        "train": [1, 2],
        "outputs": [1, 2],
        "scores": [1],
    }
    assert steps["train"]["tasks"] == {"1": f"{ids['train']}_1", "2": f"{ids['train']}_2"}
    # each step waits for the whole array of the one before
    for step, before in (("train", "prepare"), ("outputs", "train"), ("scores", "outputs")):
        assert steps[step]["after"] == [ids[before]]
        (argv,) = steps[step]["commands"]
        assert argv[0] == "sbatch" and f"--dependency=afterok:{ids[before]}" in argv
    assert "--dependency=afterok" not in " ".join(steps["prepare"]["commands"][0])
    assert "--array=1-2" in steps["train"]["commands"][0] and "--array=1" in steps["prepare"]["commands"][0]
    # the training and step-5 arrays' scripts: task k works on fold k only
    for step in ("train", "outputs"):
        script = Path(steps[step]["script"]).read_text()
        assert "#SBATCH --cpus-per-task=1\n" in script
        for k in (1, 2):
            assert f"  {k}) " in script and f"--stages {step} --folds {k} ;;" in script
        assert "--folds 1,2" not in script
    assert "submitted: task(s) 1,2 as" in out


def test_every_artefact(run):
    _, work, _ = run
    assert json.loads((work / "lists" / "folds.json").read_text()) == FOLDS
    for k in (1, 2):  # only the folds asked for
        names = crossval.fold_names(k)
        for key in ("train_db", "test_db", "mean"):  # "files" is the nets' name prefix, not a file
            assert (work / names[key]).exists(), names[key]
        assert training.final_model(artefacts.solver_path(work, k)).is_file()
        assert training.final_model(artefacts.solver_path(work, k)).name.endswith("_iter_20.caffemodel")
        assert {p.name for p in (work / "output" / str(k)).iterdir()} == output_names(OUTPUT_STEMS[k], True)
        assert {p.name for p in (work / "validation" / str(k)).iterdir()} == output_names(VALIDATION_STEMS[k])
    assert not (work / "DB_train_3").exists() and not (work / "output" / "3").exists()
    scores = json.loads((work / "scores.json").read_text())
    assert sorted(f["fold"] for f in scores["folds"]) == [1, 2]
    assert not list(work.rglob("*.partial-*")) and not list(work.rglob(".*.lock*"))  # no leftovers
    # every task exited 0 and wrote its output log
    for step, tasks in (("prepare", (1,)), ("train", (1, 2)), ("outputs", (1, 2)), ("scores", (1,))):
        for t in tasks:
            assert marks(work, step, t)[1] == 0, (work / "jobs" / "1" / "logs" / f"{step}-{t}.out").read_text()
            assert (work / "jobs" / "1" / "logs" / f"{step}-{t}.out").stat().st_size > 0


def test_dependency_order(run):
    """Each task started only after every task of the step before had ended (whole seconds)."""
    _, work, _ = run
    order = (("prepare", (1,)), ("train", (1, 2)), ("outputs", (1, 2)), ("scores", (1,)))
    for (before, bt), (after, at) in zip(order, order[1:]):
        last_end = max(marks(work, before, t)[2] for t in bt)
        first_start = min(marks(work, after, t)[0] for t in at)
        assert last_end <= first_start, (before, after, last_end, first_start)


def test_status_all_done(run):
    cluster, work, _ = run
    result = json.loads(pipeline_cli(cluster, "status", str(work), "--json").stdout)
    assert result["counts"] == {"done": 6} and result["note"] == ""
    table = pipeline_cli(cluster, "status", str(work)).stdout
    assert "summary: 6 done" in table and "train    2     done" in table


def test_rerun_submits_nothing(run):
    cluster, work, _ = run
    out = pipeline_cli(cluster, "submit", "--scheduler", "slurm", *COMMAND, "--work", str(work)).stdout
    assert "nothing submitted: every task is done, queued or running" in out
    assert "train: done: task(s) 1,2" in out
    assert len(submissions(work)) == 1
    assert cluster.run("squeue", "--noheader").stdout.strip() == ""


def test_rerun_submits_only_what_is_missing(run):
    """A deleted step-5 output of fold 2: the rerun submits fold 2's step 5 and the scores, nothing
    else; step 5 waits for nothing (training is done) and computes only the missing image."""
    cluster, work, _ = run
    lost = work / "validation" / "2" / "8001_00001_class.png"  # a validation map: fold 2's step 5 too
    lost.unlink()
    kept = work / "output" / "2" / "8002_00001_class.png"
    kept_before = kept.stat().st_mtime_ns
    out = pipeline_cli(cluster, "submit", "--scheduler", "slurm", *COMMAND, "--work", str(work)).stdout
    subs = submissions(work)
    assert len(subs) == 2 and list(subs[1]["steps"]) == ["outputs", "scores"], out
    assert subs[1]["steps"]["outputs"]["after"] == []
    outputs_id = subs[1]["steps"]["outputs"]["tasks"]["2"].split("_")[0]
    assert subs[1]["steps"]["outputs"]["tasks"] == {"2": f"{outputs_id}_2"}
    assert subs[1]["steps"]["scores"]["after"] == [outputs_id]
    wait_for(cluster, work, subs[1])
    assert lost.is_file()
    assert {p.name for p in (work / "validation" / "2").iterdir()} == output_names(VALIDATION_STEMS[2])
    assert {p.name for p in (work / "output" / "2").iterdir()} == output_names(OUTPUT_STEMS[2], True)
    # the scores task ran after it; the recomputed image resumed fold 2's step 5 under the same recipe,
    # so the scores stage finds its recipe unchanged (pipeline/recipes.py) and keeps scores.json
    assert kept.stat().st_mtime_ns == kept_before  # the finished images were kept
    assert marks(work, "scores", 1)[1] == 0 and (work / "jobs" / "2" / "logs" / "scores-1.out").is_file()
    result = json.loads(pipeline_cli(cluster, "status", str(work), "--json").stdout)
    assert result["counts"] == {"done": 6}
