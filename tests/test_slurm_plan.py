"""The scheduler's pieces without a cluster: the original's qsub script field by field, the job plan
of a cross-validated use case, SLURM/PBS command lines and queue parsing, PBS dry runs, the local
scheduler (a real run of the prepare step), and partial files of concurrent writers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, atomic, templates
from pipeline.cli.usecase_command import parse_usecase_argv
from pipeline.scheduler import backends, plan, submit
from pipeline.scheduler.plan import JobStep

# "DL tutorial Code/common/BASE-qsub.pbs" of choosehappy/public (commit be2fe014), its #PBS lines as
# step4_submit_jobs.py filled them for fold %(kfoldi)d; e-mail and queue were the author's own
# ("YOUR EMAIL HERE", gpufermi). Its body ran `caffe train --solver=./<k>-alexnet_solver.prototxt`.
ORIGINAL_PBS = """#!/bin/bash
#PBS -l walltime=320:00:00
#PBS -l nodes=1:ppn=1:gpus=1:exclusive_process
#PBS -M YOUR EMAIL HERE
#PBS -q gpufermi
#PBS -N %(kfoldi)d_TASK
#PBS -m bea
#PBS -o "%(kfoldi)d_TASK_output.out"
#PBS -j oe
"""


def _pbs_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#PBS") or line.startswith("#!")]


def test_fold_qsub_script_has_the_original_fields_in_order():
    text = templates.render(
        "qsub.pbs.j2",
        **templates.qsub_fields("3", gpu=True),
        fold="3",
        workdir="/w/models",
        email="YOUR EMAIL HERE",
        queue="gpufermi",
    )
    assert _pbs_lines(text) == (ORIGINAL_PBS % {"kfoldi": 3}).splitlines()
    assert text.rstrip().endswith("cd /w/models\n\nbash ./3-train_job.sh\n\nexit")  # quoted words (shlex)


def test_fold_qsub_script_without_gpu_mail_or_queue():
    # CPU: no gpus= resource; no address: neither -M nor -m bea; no queue: no -q (the site's default)
    text = templates.render(
        "qsub.pbs.j2", **templates.qsub_fields("2", gpu=False), fold="2", workdir="/w", email="", queue=""
    )
    assert _pbs_lines(text) == [
        "#!/bin/bash",
        "#PBS -l walltime=320:00:00",
        "#PBS -l nodes=1:ppn=1",
        "#PBS -N 2_TASK",
        '#PBS -o "2_TASK_output.out"',
        "#PBS -j oe",
    ]


def test_array_spec_and_strip_option():
    assert plan.array_spec((1, 2, 3, 5)) == "1-3,5"
    assert plan.array_spec((4,)) == "4"
    assert plan.array_spec((8, 7, 1, 3, 4, 5)) == "1,3-5,7-8"
    assert plan.strip_option(["a", "--stages", "x,y", "--work", "w", "--stages=z"], "--stages") == ["a", "--work", "w"]


def test_task_argv_replaces_the_task_option():
    step = JobStep("train", ("train",), tasks=(1, 2), task_option="--folds")
    assert step.task_argv(["demo-epi", "--folds", "1,2", "--iter", "9"], 2) == [
        "demo-epi",
        "--iter",
        "9",
        "--stages",
        "train",
        "--folds",
        "2",
    ]
    workers = JobStep("outputs", ("outputs",), tasks=(1, 2, 3))
    assert workers.workers and workers.task_argv(["demo-epi", "--folds", "1,2"], 3) == [
        "demo-epi",
        "--folds",
        "1,2",
        "--stages",
        "outputs",
    ]


def test_check_plan_refuses_bad_plans():
    with pytest.raises(ValueError, match="'b' runs after c, which is not an earlier step"):
        plan.check_plan([JobStep("a", ("x",)), JobStep("b", ("y",), after=("c",))])
    with pytest.raises(ValueError, match="'a' appears twice"):
        plan.check_plan([JobStep("a", ("x",)), JobStep("a", ("y",))])
    with pytest.raises(ValueError, match="task ids"):
        plan.check_plan([JobStep("a", ("x",), tasks=())])


def _epi_args(*extra: str) -> tuple[object, argparse.Namespace]:
    return parse_usecase_argv(["demo-epi", "--work", "w", *extra], Path("/runs"))


def test_crossvalidated_plan():
    uc, args = _epi_args("--folds", "1-3")
    assert args.work == Path("/runs/w")  # relative paths against the submitting folder
    steps = uc.job_steps(args)
    assert [(s.name, s.stages, s.tasks, s.after, s.task_option) for s in steps] == [
        ("prepare", ("patches", "folds", "dbs", "prototxt"), (1,), (), None),
        ("train", ("train",), (1, 2, 3), ("prepare",), "--folds"),
        ("outputs", ("outputs",), (1, 2, 3), ("train",), "--folds"),
        ("scores", ("scores",), (1,), ("outputs",), None),
    ]
    assert [s.gpu for s in steps] == [False, True, True, False]
    # --stages keeps the steps running them, chained among themselves
    uc, args = _epi_args("--stages", "train,scores")
    steps = uc.job_steps(args)
    assert [(s.name, s.tasks, s.after) for s in steps] == [("train", (1, 2, 3, 4, 5), ()), ("scores", (1,), ("train",))]


def test_slurm_and_pbs_command_lines(tmp_path):
    s = backends.Slurm().commands(
        tmp_path / "t.sbatch", "train", [1, 2, 3, 5], ["17", "18_2"], tmp_path, "jpi-epi-train"
    )
    assert s == [
        [
            "sbatch",
            "--parsable",
            "--job-name=jpi-epi-train",
            "--array=1-3,5",
            f"--output={tmp_path}/train-%a.out",
            "--dependency=afterok:17:18_2",
            str(tmp_path / "t.sbatch"),
        ]
    ]
    p = backends.Pbs().commands(tmp_path / "t.pbs", "train", [1, 2], ["5.srv", "6.srv"], tmp_path, "jpi-epi-train")
    assert p == [
        [
            "qsub",
            "-N",
            f"jpi-epi-train-{t}",
            "-o",
            f"{tmp_path}/train-{t}.out",
            "-j",
            "oe",
            "-v",
            f"JPI_TASK={t}",
            "-W",
            "depend=afterok:5.srv:6.srv",
            str(tmp_path / "t.pbs"),
        ]
        for t in (1, 2)
    ]
    # a later step waits for a whole array by its id, for single running tasks by <id>_<task>
    assert backends.Slurm().dependency_ids({1: "7_1", 2: "7_2"}, whole_array=True) == ["7"]
    assert backends.Slurm().dependency_ids({2: "7_2"}, whole_array=False) == ["7_2"]
    assert backends.Pbs().dependency_ids({1: "5.srv", 2: "6.srv"}, whole_array=True) == ["5.srv", "6.srv"]


def test_queue_parsing():
    # squeue --array prints a pending array not yet split as 12_[4-6,8%2]
    assert backends._expand_slurm_id("12_[4-6,8%2]") == ["12_4", "12_5", "12_6", "12_8"]
    assert backends._expand_slurm_id("12_3") == ["12_3"]
    qstat = """
srv:
                                                                         Req'd  Req'd   Elap
Job ID               Username Queue    Jobname          SessID NDS   TSK Memory Time  S Time
-------------------- -------- -------- ---------------- ------ ----- --- ------ ----- - -----
101.srv              alice    gpufermi jpi-epi-train-1    4242     1   1    --  320:0 R 01:02
102.srv              alice    gpufermi jpi-epi-train-2      --     1   1    --  320:0 H   --
103.srv              alice    gpufermi jpi-epi-scores-1     --     1   1    --  320:0 C   --
"""
    q = backends.parse_qstat(qstat)
    assert {j: s.state for j, s in q.items()} == {"101.srv": "running", "102.srv": "queued"}
    assert backends.Pbs().find(q, "102.srv.example.org") == q["102.srv"]


def test_pbs_dry_run_renders_one_job_per_task(tmp_path, capsys):
    """Debian ships no Torque/OpenPBS: submission is shown (--dry-run), never made, here."""
    from pipeline.cli import main

    work = tmp_path / "w"
    rc = main(
        [
            "submit",
            "--scheduler",
            "pbs",
            "--dry-run",
            "--queue",
            "gpufermi",
            "--email",
            "me@example.org",
            "demo-epi",
            "--work",
            str(work),
            "--folds",
            "1,2",
            "--gpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "pbs, submission 1 (dry run):" in out
    assert (
        f"qsub -N jpi-epi-train-1 -o {work}/jobs/1/logs/train-1.out -j oe -v JPI_TASK=1 -W depend=afterok:<prepare>"
        in out
    )
    script = (work / "jobs" / "1" / "train.pbs").read_text()
    # the original's resource lines: 320 h, one core and one GPU, mail on begin/end/abort
    assert _pbs_lines(script) == [
        "#!/bin/bash",
        "#PBS -l walltime=320:00:00",
        "#PBS -l nodes=1:ppn=1:gpus=1:exclusive_process",
        "#PBS -M me@example.org",
        "#PBS -q gpufermi",
        "#PBS -m bea",
    ]
    assert "  1) " in script and "--stages train --folds 1 ;;" in script and "--gpu" in script
    assert not (work / "jobs" / "submissions.json").exists()  # a dry run records nothing


def test_slurm_script_resources(tmp_path):
    uc, args = _epi_args()
    step = uc.job_steps(args)[1]
    res = submit.Resources(
        cpus=4,
        walltime="72:00:00",
        mem="16G",
        partition="gpu",
        account="lab",
        qos="long",
        directives=("--constraint=a100",),
    )
    script = submit.render_script(
        backends.Slurm(), step, ["demo-epi", "--work", "w"], tmp_path, REPO_ROOT, res, 1, tmp_path / "train.sbatch"
    ).read_text()
    assert script.splitlines()[:9] == [
        "#!/bin/bash",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --time=72:00:00",
        "#SBATCH --mem=16G",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --qos=long",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --constraint=a100",
    ]
    assert os.access(tmp_path / "train.sbatch", os.X_OK)
    proc = subprocess.run(["bash", "-n", str(tmp_path / "train.sbatch")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_local_scheduler_runs_the_prepare_step(tmp_path):
    """--scheduler local runs the same job script here (task 1 of prepare) and records its exit."""
    work = tmp_path / "w"
    argv = ["demo-epi", "--work", str(work), "--folds", "1", "--stages", "patches,folds,dbs,prototxt"]
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--scheduler", "local", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "prepare: ran: task(s) 1 as local" in proc.stdout
    for name in ("DB_train_1", "DB_test_1", "DB_train_w32_1.binaryproto", "models/1-alexnet_solver_ada.prototxt"):
        assert (work / name).exists(), name
    assert not (work / "DB_train_2").exists()
    assert (work / "jobs" / "tasks" / "prepare.1.exit").read_text().split()[:2] == ["0", "local"]
    status = subprocess.run(
        [sys.executable, "-m", "pipeline", "status", str(work), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # the steps not asked for (--stages) show as such
    assert json.loads(status.stdout)["counts"] == {"done": 1, "not submitted": 3}
    again = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--scheduler", "local", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        "nothing submitted" in again.stdout and len(json.loads((work / "jobs" / "submissions.json").read_text())) == 1
    )
    refused = subprocess.run(
        [sys.executable, "-m", "pipeline", "submit", "--scheduler", "slurm", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "were submitted to local" in refused.stderr + refused.stdout


def test_partials_of_live_writers_are_kept(tmp_path):
    """Array tasks write the same files at once: a rerun removes only partials of ended writers."""
    final = tmp_path / "x.png"
    live = subprocess.Popen(["sleep", "60"])
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        names = {
            "live": f"x.png.partial-{atomic.HOST}-{live.pid}",
            "dead": f"x.png.partial-{atomic.HOST}-{dead.pid}",
            "old_form_dead": f"x.png.partial-{dead.pid}",
            "other_new": "x.png.partial-elsewhere-12",
            "other_old": "x.png.partial-elsewhere-13",
            # this host and namespace as partial_name writes it; then a container sharing the
            # host's name (another PID namespace): its PIDs mean nothing here, only age counts
            "live_ns": atomic.partial_name(final).name.replace(f"-{os.getpid()}", f"-{live.pid}"),
            "dead_ns": atomic.partial_name(final).name.replace(f"-{os.getpid()}", f"-{dead.pid}"),
            "other_ns_new": f"x.png.partial-{atomic.HOST}@1-{dead.pid}",
            "other_ns_old": f"x.png.partial-{atomic.HOST}@1-{dead.pid + 1}",
        }
        assert names["live_ns"].startswith(f"x.png.partial-{atomic.HOST}@{atomic.PIDNS}-") and atomic.PIDNS.isdigit()
        for n in names.values():
            (tmp_path / n).write_text("")
        day_and_more = time.time() - atomic.OTHER_HOST_STALE_S - 60
        for old in ("other_old", "other_ns_old"):
            os.utime(tmp_path / names[old], (day_and_more, day_and_more))
        atomic.remove_stale_partials(final)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [names["live"], names["other_new"], names["live_ns"], names["other_ns_new"]]
        )
    finally:
        live.kill()
        live.wait()
