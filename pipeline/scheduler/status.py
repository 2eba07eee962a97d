"""``python -m pipeline status WORK``: each task of a submitted run, from its artefacts, the
scheduler's queue and the tasks' own start/exit records.

A task is **done** when its artefacts exist (whatever the scheduler says), **queued** or
**running** while the scheduler lists it, **failed** when it exited non-zero or started and never
recorded its exit (killed: time limit, memory, node failure), **incomplete** when it exited 0
without its artefacts (say, one of an array of interchangeable workers whose share others still compute), **cancelled**
when it left the queue without ever starting, and **not submitted** otherwise.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from pipeline.scheduler import backends, records
from pipeline.scheduler.plan import JobStep, ParseCommand

log = logging.getLogger(__name__)

#: States in the order tables list their counts.
STATES = ("done", "queued", "running", "failed", "incomplete", "cancelled", "not submitted")
ACTIVE = ("queued", "running")


@dataclass
class TaskStatus:
    """The state of one task of one step."""

    step: str
    task: int
    what: str
    state: str
    job: str = ""
    detail: str = ""
    log: str = ""
    never_runs: bool = False  # queued behind a failed dependency (SLURM: DependencyNeverSatisfied)

    @property
    def active(self) -> bool:
        """Queued or running, and able to run."""
        return self.state in ACTIVE and not self.never_runs


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def task_states(
    work: Path,
    steps: Sequence[JobStep],
    submissions: list[dict],
    backend: backends.Backend,
    queue: dict[str, backends.QueueState],
) -> dict[str, dict[int, TaskStatus]]:
    """State of every task of ``steps`` (step name -> task -> :class:`TaskStatus`)."""
    latest = records.latest_jobs(submissions)
    out: dict[str, dict[int, TaskStatus]] = {}
    for step in steps:
        out[step.name] = {}
        for task in step.tasks:
            job, n = latest.get((step.name, task), ("", 0))
            st = TaskStatus(step.name, task, step.describe(task), "not submitted", job)
            if n:
                st.log = str(records.jobs_dir(work) / str(n) / "logs" / f"{step.name}-{task}.out")
            out[step.name][task] = st
            if step.done(task):
                st.state = "done"
                continue
            if not job:
                continue
            q = backend.find(queue, job)
            if q is not None:
                st.state, st.never_runs = q.state, q.never_runs
                st.detail = (
                    f"{q.raw} ({q.reason}): never runs, a step it waits for failed"
                    if q.never_runs
                    else f"{q.raw}" + (f" ({q.reason})" if q.reason and q.reason != "None" else "")
                )
                continue
            end = records.read_mark(work, step.name, task, "exit")
            start = records.read_mark(work, step.name, task, "start")
            if end is not None and end.job == job:
                if end.status != 0:
                    st.state = "failed"
                    st.detail = f"exit {end.status} on {end.host} at {_when(end.time)}"
                else:
                    st.state = "incomplete"
                    st.detail = f"ended (exit 0) at {_when(end.time)}; " + (
                        "the step's outputs are not all there yet" if step.workers else "its artefacts are missing"
                    )
            elif start is not None and start.job == job:
                st.state = "failed"
                st.detail = (
                    f"started on {start.host} at {_when(start.time)} and never recorded its exit "
                    "(killed: time limit, memory, node failure?)"
                )
            else:
                st.state = "cancelled"
                st.detail = "left the queue without starting (cancelled?)"
    return out


def counts(states: dict[str, dict[int, TaskStatus]]) -> dict[str, int]:
    """How many tasks are in each state (states with none left out)."""
    every = [st.state for tasks in states.values() for st in tasks.values()]
    return {s: every.count(s) for s in STATES if s in every}


def table(states: dict[str, dict[int, TaskStatus]]) -> str:
    """A fixed-width table: step, task, state, job, what, detail."""
    rows = [("step", "task", "state", "job", "what", "detail")]
    for tasks in states.values():
        for st in tasks.values():
            rows.append((st.step, str(st.task), st.state, st.job or "-", st.what, st.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return (
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + ("  " + r[5] if r[5] else "") for r in rows
        ).rstrip()
        + "\n"
    )


def rebuild(work: Path, parse: ParseCommand) -> tuple[object, argparse.Namespace, list[str], dict]:
    """The use case, parsed options and command of WORK's newest submission, paths made absolute
    against the folder it was submitted from. ValueError when WORK has no submission."""
    subs = records.read_submissions(work)
    if not subs:
        raise ValueError(
            f"{work}: no submissions recorded in {records.jobs_dir(work)} "
            "(python -m pipeline submit --scheduler ... <use case command> ... makes them)"
        )
    last = subs[-1]
    uc, args = parse(last["argv"], Path(last["cwd"]))
    return uc, args, last["argv"], last


def status(work: Path, parse: ParseCommand) -> dict:
    """Each task's state (see the module docstring) of WORK's submitted run, with counts; ``parse``
    reads the recorded use-case command (:data:`pipeline.scheduler.plan.ParseCommand`)."""
    uc, args, argv, last = rebuild(work, parse)
    steps = uc.job_steps(args)
    backend = backends.get(last["scheduler"])
    note = ""
    try:
        queue = backend.queue()
    except backends.SchedulerError as exc:
        queue, note = {}, f"the scheduler's queue could not be read ({exc}); states from the records only"
        log.warning("%s", note)
    states = task_states(Path(args.work), steps, records.read_submissions(work), backend, queue)
    return {
        "work": str(work),
        "scheduler": last["scheduler"],
        "command": " ".join(argv),
        "states": states,
        "counts": counts(states),
        "note": note,
    }


def as_json(result: dict) -> dict:
    """``result`` of :func:`status` as plain JSON data."""
    return {
        **result,
        "states": {s: {str(t): asdict(st) for t, st in tasks.items()} for s, tasks in result["states"].items()},
    }
