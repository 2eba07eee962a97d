"""Use case 5 as cluster jobs: the plan (pure) and one real submission on the one-node SLURM cluster
of tests/slurm_cluster.py (fold 1, 5 iterations a stage): stage 2's jobs wait for stage 1's."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.cli.usecase_command import parse_usecase_argv
from tests.test_slurm import marks, pipeline_cli, submissions, wait_for

ORDER = ("prepare", "train", "probs", "prepare2", "train2", "outputs", "scores")


def test_two_stage_plan():
    uc, args = parse_usecase_argv(["demo-mitosis", "--work", "w", "--folds", "1-2"], Path("/runs"))
    steps = uc.job_steps(args)
    assert [(s.name, s.stages, s.tasks, s.after, s.task_option) for s in steps] == [
        ("prepare", ("patches", "folds", "dbs", "prototxt"), (1,), (), None),
        ("train", ("train",), (1, 2), ("prepare",), "--folds"),
        ("probs", ("probs",), (1, 2), ("train",), "--folds"),
        ("prepare2", ("patches2", "dbs2", "prototxt2"), (1, 2), ("probs",), "--folds"),
        ("train2", ("train2",), (1, 2), ("prepare2",), "--folds"),
        ("outputs", ("outputs",), (1, 2), ("train2",), "--folds"),
        ("scores", ("scores",), (1,), ("outputs",), None),
    ]
    assert [s.gpu for s in steps] == [False, True, True, False, True, True, False]
    uc, args = parse_usecase_argv(["demo-mitosis", "--work", "w", "--stages", "train,train2"], Path("/runs"))
    assert [(s.name, s.after) for s in uc.job_steps(args)] == [("train", ()), ("train2", ("train",))]


def test_both_stages_as_slurm_jobs(slurm, tmp_path):
    from pipeline.usecases.mitosis.cohort import make_cohort

    data, work = tmp_path / "data", tmp_path / "work"
    make_cohort(data, patients=("01", "02", "03", "04", "05"), frames=1, size=96, seed=2)
    command = ["usecase5", "--data", str(data), "--iter", "5", "--test-interval", "5", "--snapshot", "5"]
    command += ["--infer-mode", "fcn", "--folds", "1", "--stage2-negatives", "400", "--work", str(work)]
    pipeline_cli(slurm, "submit", "--scheduler", "slurm", *command)
    (sub,) = submissions(work)
    assert list(sub["steps"]) == list(ORDER)
    ids = {n: next(iter(s["tasks"].values())).split("_")[0] for n, s in sub["steps"].items()}
    for before, after in zip(ORDER, ORDER[1:]):
        assert sub["steps"][after]["after"] == [ids[before]]
    wait_for(slurm, work, sub)
    for step in ORDER:
        assert marks(work, step, 1)[1] == 0, (work / "jobs" / "1" / "logs" / f"{step}-1.out").read_text()[-2000:]
    for before, after in zip(ORDER, ORDER[1:]):  # each started after the one before ended
        assert marks(work, before, 1)[2] <= marks(work, after, 1)[0], (before, after)
    assert (work / "models_2nd" / "1_caffenet_train_w32_2nd_iter_5.caffemodel").is_file()
    assert [f["fold"] for f in json.loads((work / "scores.json").read_text())["folds"]] == [1]
    again = pipeline_cli(slurm, "submit", "--scheduler", "slurm", *command).stdout
    assert "nothing submitted" in again and len(submissions(work)) == 1
