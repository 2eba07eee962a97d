"""What a work folder records of its cluster jobs (WORK/jobs/).

    WORK/jobs/submissions.json        every submission: scheduler, command, options, job id of each task
    WORK/jobs/<n>/<step>.<suffix>     the job scripts of submission n (as submitted)
    WORK/jobs/<n>/logs/<step>-<task>.out   the tasks' output
    WORK/jobs/tasks/<step>.<task>.start    "<job id> <host> <epoch s>", written when a task starts
    WORK/jobs/tasks/<step>.<task>.exit     "<exit status> <job id> <host> <epoch s>", when it ends

The start and exit records are written by the job scripts themselves, so they tell what happened to
a task whatever the scheduler keeps (SLURM forgets finished jobs after MinJobAge without accounting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline import atomic


def jobs_dir(work: Path) -> Path:
    """WORK/jobs."""
    return Path(work) / "jobs"


def marks_dir(work: Path) -> Path:
    """WORK/jobs/tasks: the tasks' start and exit records."""
    return jobs_dir(work) / "tasks"


def read_submissions(work: Path) -> list[dict]:
    """The submissions recorded in WORK/jobs/submissions.json, oldest first (none: [])."""
    path = jobs_dir(work) / "submissions.json"
    if not path.is_file():
        return []
    try:
        subs = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(
            f"{path}: not a submissions record ({exc}); move it away to start the records afresh"
        ) from None
    if not isinstance(subs, list):
        raise ValueError(f"{path}: not a submissions record (expected a list)")
    return subs


def write_submission(work: Path, record: dict) -> None:
    """Add or replace (same ``n``) a submission in WORK/jobs/submissions.json (rewritten atomically)."""
    subs = [s for s in read_submissions(work) if s["n"] != record["n"]]
    atomic.write_text(jobs_dir(work) / "submissions.json", json.dumps(subs + [record], indent=1))


def latest_jobs(submissions: list[dict]) -> dict[tuple[str, int], tuple[str, int]]:
    """(step, task) -> (job id, submission number) of the newest submission of each task."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for sub in submissions:
        for step, rec in sub.get("steps", {}).items():
            for task, job in rec.get("tasks", {}).items():
                out[(step, int(task))] = (job, sub["n"])
    return out


@dataclass(frozen=True)
class Mark:
    """A task's start or exit record."""

    job: str
    host: str
    time: float
    status: int | None = None  # exit status (exit records)


def read_mark(work: Path, step: str, task: int, kind: str) -> Mark | None:
    """The ``kind`` ("start" or "exit") record of a task, None when absent or unreadable."""
    try:
        fields = (marks_dir(work) / f"{step}.{task}.{kind}").read_text().split()
        if kind == "exit":
            return Mark(fields[1], fields[2], float(fields[3]), int(fields[0]))
        return Mark(fields[0], fields[1], float(fields[2]))
    except (OSError, IndexError, ValueError):
        return None


def clear_marks(work: Path, step: str, task: int) -> None:
    """Remove a task's records before it is submitted again."""
    for kind in ("start", "exit"):
        (marks_dir(work) / f"{step}.{task}.{kind}").unlink(missing_ok=True)
