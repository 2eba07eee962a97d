"""The schedulers: submit a step's job script, ask which jobs are queued or running, cancel.

Every command is the scheduler's own CLI run with an argument list (``sbatch``, ``squeue``,
``scancel``; ``qsub``, ``qstat``, ``qdel``); ``local`` runs the scripts here, one task after the
other. The script of a step reads its task id from ``SLURM_ARRAY_TASK_ID`` (SLURM job arrays) or
``JPI_TASK`` (PBS: one job per task, ``qsub -v JPI_TASK=<id>``, as the original submitted one job
per fold; local runs).

Job ids: a SLURM step is one array job ``123`` whose tasks are ``123_<task>``; a PBS task is a job of
its own (``456.server``); local tasks are ``local``.
"""

from __future__ import annotations

import getpass
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pipeline.scheduler.plan import array_spec

log = logging.getLogger(__name__)

#: Environment variable carrying the task id where the scheduler gives none (PBS, local).
TASK_ENV = "JPI_TASK"


class SchedulerError(RuntimeError):
    """A scheduler command failed or is missing; the message names the command and its output."""


@dataclass(frozen=True)
class QueueState:
    """A job of the queue: ``state`` is "queued" or "running"; ``raw`` and ``reason`` as the
    scheduler says them (SLURM: PENDING/Dependency, RUNNING/None)."""

    state: str
    raw: str
    reason: str = ""

    @property
    def never_runs(self) -> bool:
        """Queued behind a dependency that failed: it will never start (SLURM keeps it pending)."""
        return self.reason == "DependencyNeverSatisfied"


def _run(argv: Sequence[str], what: str, stdin: str | None = None) -> str:
    """Run a scheduler command; its stdout, or SchedulerError with its output."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise SchedulerError(
            f"{argv[0]} not found: {what} needs the scheduler's command-line tools on PATH "
            f"(run on a login node of the cluster)"
        )
    proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, input=stdin)
    if proc.returncode != 0:
        raise SchedulerError(
            f"{' '.join(argv)} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    return proc.stdout


class Backend:
    """What a scheduler does for :mod:`pipeline.scheduler.submit` and ``status``."""

    name = ""
    script_suffix = ".sh"
    #: Template of the step's job script in job_templates/.
    template = ""
    #: Tasks run when submitted, here (local): dependencies are checked before, not by a scheduler.
    runs_now = False

    def commands(
        self, script: Path, step: str, tasks: Sequence[int], after: Sequence[str], log_dir: Path, job_name: str
    ) -> list[list[str]]:
        """The commands submitting ``tasks`` of a step, after the jobs ``after``."""
        raise NotImplementedError

    def submit(
        self, script: Path, step: str, tasks: Sequence[int], after: Sequence[str], log_dir: Path, job_name: str
    ) -> tuple[dict[int, str], list[list[str]]]:
        """Submit ``tasks`` of a step; returns (job id of each task, the commands run)."""
        raise NotImplementedError

    def command_preview(
        self, script: Path, step: str, tasks: Sequence[int], after: Sequence[str], log_dir: Path, job_name: str
    ) -> list[str]:
        """The (first) command :meth:`submit` would run (dry runs)."""
        return self.commands(script, step, tasks, after, log_dir, job_name)[0]

    def dependency_ids(self, task_ids: dict[int, str], whole_array: bool) -> list[str]:
        """The ids a later job names to wait for these tasks (``whole_array``: they are all the
        tasks of the jobs they belong to)."""
        return sorted(set(task_ids.values()))

    def queue(self) -> dict[str, QueueState]:
        """This user's jobs in the queue (queued or running) by task job id."""
        return {}

    def find(self, queue: dict[str, QueueState], job: str) -> QueueState | None:
        """The queue entry of a recorded task job id, if it is still in the queue."""
        return queue.get(job)

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel queued jobs (a rerun replaces those that would run on stale inputs or never)."""


class Slurm(Backend):
    """SLURM: a step is one job array (``sbatch --array``), dependencies ``--dependency=afterok:``."""

    name = "slurm"
    script_suffix = ".sbatch"
    template = "slurm.sbatch.j2"

    def commands(self, script, step, tasks, after, log_dir, job_name):
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={job_name}",
            f"--array={array_spec(tasks)}",
            f"--output={log_dir / (step + '-%a.out')}",
        ]
        if after:
            argv.append("--dependency=afterok:" + ":".join(after))
        return [argv + [str(script)]]

    def submit(self, script, step, tasks, after, log_dir, job_name):
        argv = self.commands(script, step, tasks, after, log_dir, job_name)[0]
        out = _run(argv, "submitting to SLURM").strip()
        job = out.split(";")[0].strip()  # --parsable: "<id>" or "<id>;<cluster>"
        if not job.isdigit():
            raise SchedulerError(f"sbatch answered {out!r}, not a job id")
        return {t: f"{job}_{t}" for t in tasks}, [argv]

    def dependency_ids(self, task_ids, whole_array):
        if whole_array:  # afterok:<array id> waits for every task of the array
            return sorted({j.split("_")[0] for j in task_ids.values()})
        return sorted(set(task_ids.values()))  # afterok:<id>_<task>: those tasks only

    def queue(self):
        out = _run(
            ["squeue", "--noheader", "--array", f"--user={getpass.getuser()}", "--format=%i|%T|%r"],
            "asking SLURM for the queue",
        )
        states = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3:
                continue
            job, raw, reason = parts
            state = "queued" if raw in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "SUSPENDED") else "running"
            for jid in _expand_slurm_id(job):
                states[jid] = QueueState(state, raw, reason)
        return states

    def cancel(self, job_ids):
        if job_ids:
            _run(["scancel", *job_ids], "cancelling SLURM jobs")


def _expand_slurm_id(job: str) -> list[str]:
    """squeue ids: "12_3" -> ["12_3"]; a pending array not split yet, "12_[4-6,8%2]" -> 12_4 .. 12_8."""
    m = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(?:%\d+)?\]", job)
    if not m:
        return [job]
    ids = []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition("-")
        ids += [f"{m.group(1)}_{t}" for t in range(int(lo), int(hi or lo) + 1)]
    return ids


class Pbs(Backend):
    """Torque / OpenPBS: one job per task (``qsub -v JPI_TASK=<id>``, as the original submitted one
    job per fold), dependencies ``-W depend=afterok:<id>:<id>``. Not tested here: Debian ships no
    Torque or OpenPBS server."""

    name = "pbs"
    script_suffix = ".pbs"
    template = "pbs.qsub.j2"

    def commands(self, script, step, tasks, after, log_dir, job_name):
        depend = ["-W", "depend=afterok:" + ":".join(after)] if after else []
        return [
            [
                "qsub",
                "-N",
                f"{job_name}-{t}",
                "-o",
                str(log_dir / f"{step}-{t}.out"),
                "-j",
                "oe",
                "-v",
                f"{TASK_ENV}={t}",
                *depend,
                str(script),
            ]
            for t in tasks
        ]

    def submit(self, script, step, tasks, after, log_dir, job_name):
        ids, cmds = {}, self.commands(script, step, tasks, after, log_dir, job_name)
        for t, argv in zip(tasks, cmds):
            out = _run(argv, "submitting to PBS").strip()
            if not out:
                raise SchedulerError(f"{' '.join(argv)} printed no job id")
            ids[t] = out.splitlines()[0].strip()
        return ids, cmds

    def queue(self):
        out = _run(["qstat", "-u", getpass.getuser()], "asking PBS for the queue")
        return parse_qstat(out)

    def find(self, queue, job):
        # qstat may shorten a job id ("123.serv*"): the numeric parts must agree
        return next((q for j, q in queue.items() if j.split(".")[0] == job.split(".")[0]), None)

    def cancel(self, job_ids):
        if job_ids:
            _run(["qdel", *job_ids], "cancelling PBS jobs")


def parse_qstat(text: str) -> dict[str, QueueState]:
    """Jobs of ``qstat -u USER`` (Torque and OpenPBS print the same columns: job id first, the
    state letter second to last: Q queued, H held, W waiting, R running, E exiting, C completed)."""
    states = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not re.match(r"^\d+", fields[0]):
            continue
        letter = fields[-2]
        if letter in ("Q", "H", "W", "T", "S"):
            states[fields[0]] = QueueState("queued", letter)
        elif letter in ("R", "E", "B"):
            states[fields[0]] = QueueState("running", letter)
    return states


class Local(Backend):
    """This machine: each task runs now, one after the other (``bash <script>`` with JPI_TASK)."""

    name = "local"
    template = "local.sh.j2"
    runs_now = True

    def commands(self, script, step, tasks, after, log_dir, job_name):
        return [["env", f"{TASK_ENV}={t}", "bash", str(script)] for t in tasks]

    def submit(self, script, step, tasks, after, log_dir, job_name):
        ids, cmds = {}, self.commands(script, step, tasks, after, log_dir, job_name)
        for t, argv in zip(tasks, cmds):
            logf = log_dir / f"{step}-{t}.out"
            log.info("local: %s task %d (log %s)", step, t, logf)
            with open(logf, "w") as fh:
                subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT)
            ids[t] = "local"
        return ids, cmds


BACKENDS: dict[str, type[Backend]] = {"slurm": Slurm, "pbs": Pbs, "local": Local}


def get(name: str) -> Backend:
    """The backend called ``name``; ValueError naming the known ones otherwise."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(BACKENDS)}") from None
