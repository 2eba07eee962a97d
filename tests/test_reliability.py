"""Hostile and damaged input (issue 28): each fault injected for real, and what the project does.

Job scripts with injected lines, damaged archives, half-written Caffe snapshots, concurrent
rebuilds of a folder by two processes, data replaced at the same path, huge images, spliced
downloads, Python layers in a user's net, the base image's build settings, and smaller ones.
docs/fault-injection.md is the table of these faults.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, templates
from pipeline.scheduler import backends, submit

# --------------------------------------------------------------------------- 7: job scripts

INJECTED = "touch INJECTED"


def _bash_n(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "field, value",
    [
        ("partition", f"gpu\n{INJECTED}"),
        ("account", f"lab\r{INJECTED}"),
        ("qos", "long x"),  # whitespace: sbatch would read "long" and ignore the rest
        ("mem", "16G\t"),
        ("walltime", f"1:00:00\n{INJECTED}"),
        ("queue", f"q\n{INJECTED}"),
        ("email", f"me@example.org\n{INJECTED}"),
        ("directives", (f"--constraint=a100\n{INJECTED}",)),
    ],
)
def test_resource_values_with_control_characters_are_refused(tmp_path, field, value):
    from pipeline.cli import main

    res = submit.Resources(**{field: value})
    with pytest.raises(ValueError, match="control character|whitespace"):
        submit.check_resources(res)
    # through the command line: one line, nothing rendered (the reproduction of issue 28)
    work = tmp_path / "w"
    flag = {"walltime": "--time", "directives": "--directive"}.get(field, f"--{field}")
    arg = value[0] if field == "directives" else value
    sched = "pbs" if field in ("queue", "email") else "slurm"
    rc = main(["submit", "--scheduler", sched, flag, arg, "--dry-run", "demo-epi", "--work", str(work)])
    assert rc == 1
    assert not list(work.rglob("*.sbatch")) and not list(work.rglob("*.pbs"))


def test_directive_with_a_space_is_one_line(tmp_path):
    """A #PBS directive such as ``-l select=1:ncpus=4`` has a space: allowed, on its own line."""
    from pipeline.cli import usecase_command

    uc, args = usecase_command.parse_usecase_argv(["demo-epi", "--work", "w"], tmp_path)
    step = uc.job_steps(args)[1]
    res = submit.Resources(directives=("-l select=1:ncpus=4",), partition="gpu")
    submit.check_resources(res)
    out = submit.render_script(
        backends.Pbs(), step, ["demo-epi", "--work", "w"], tmp_path, REPO_ROOT, res, 0, tmp_path / "t.pbs"
    )
    assert "#PBS -l select=1:ncpus=4\n" in out.read_text()
    _bash_n(out)


def test_fold_job_scripts_quote_a_hostile_work_folder(tmp_path):
    """A work path holding ``$(...)``, a backtick and a quote: the scripts parse, and their ``cd``
    lines, run, go to that folder and execute nothing (before: ``cd "<workdir>"`` ran the command).
    (A double quote in a path is refused earlier: the rendered prototxt does not parse.)"""
    hostile = tmp_path / "runs $(touch INJECTED) `touch INJECTED2` 'x'"
    ff = templates.render_fold(hostile / "models", "1", tmp_path / "DBt", tmp_path / "DBv", tmp_path / "m", 10)
    for script in (ff.job, ff.pbs):
        _bash_n(script)
        assert INJECTED not in [line.strip() for line in script.read_text().splitlines()]
        cd = next(line for line in script.read_text().splitlines() if line.startswith("cd "))
        proc = subprocess.run(["bash", "-c", cd + " && pwd"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(ff.job.parent)
        assert not (tmp_path / "INJECTED").exists() and not (tmp_path / "INJECTED2").exists()
    # the training command names the solver as one word, whatever it holds
    exec_line = next(line for line in ff.job.read_text().splitlines() if line.startswith("exec "))
    proc = subprocess.run(
        ["bash", "-c", "set -- " + exec_line.removeprefix("exec ") + '; printf "%s\\n" "$@"'],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.splitlines()[-2:] == ["--solver", str(ff.solver)]
