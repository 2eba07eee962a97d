"""``python -m pipeline submit``: a use-case run as cluster jobs, submitting only what is missing.

The use case gives its steps (:meth:`pipeline.usecases.base.UseCase.job_steps`, e.g. prepare ->
train array -> step-5 worker array -> scores); each step becomes one job script rendered from
job_templates/ and submitted with the scheduler's CLI, after the steps it depends on
(``--dependency=afterok:`` / ``-W depend=afterok:``). A rerun looks at every task first: tasks whose
artefacts exist are not submitted, tasks still queued or running are left alone (later steps wait
for them), and a step is submitted again when a step it depends on is (its queued jobs, which would
never start or would start on stale inputs, are cancelled). The submissions and the tasks' job ids
are recorded in WORK/jobs/ (:mod:`pipeline.scheduler.records`).

A work folder keeps the options it was first submitted with: a submission asking other options
(another ``--iter``, say) is refused, since the finished artefacts were made with the old ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2

from pipeline import JOB_TEMPLATE_DIR, REPO_ROOT, atomic
from pipeline.scheduler import backends, records
from pipeline.scheduler.plan import JobStep, ParseCommand, check_plan, strip_option
from pipeline.scheduler.status import task_states

log = logging.getLogger(__name__)

#: Options that do not change any artefact: a resubmission may change them.
NEUTRAL_OPTIONS = frozenset({"stages", "jobs", "folds", "force", "usecase", "demo", "func", "verbose", "command"})


@dataclass(frozen=True)
class Resources:
    """What each task asks the scheduler for, and the scheduler's own options.

    ``gpus`` applies to the steps that compute with Caffe's nets (training, step 5, evaluation);
    None: 1 when the use-case command has ``--gpu``, else 0. ``walltime`` is SLURM's ``--time``
    (none by default: the partition's limit) and PBS's ``walltime`` (the original's 320:00:00 by
    default). ``directives`` are further ``#SBATCH`` / ``#PBS`` lines, as written after the prefix.
    """

    cpus: int = 1
    gpus: int | None = None
    walltime: str = ""
    mem: str = ""
    partition: str = ""  # SLURM
    account: str = ""  # SLURM
    qos: str = ""  # SLURM
    queue: str = ""  # PBS -q
    email: str = ""  # PBS -M (with -m bea)
    directives: tuple[str, ...] = ()


#: Resource values as option names, for messages.
_RESOURCE_OPTIONS = {
    "walltime": "--time",
    "mem": "--mem",
    "partition": "--partition",
    "account": "--account",
    "qos": "--qos",
    "queue": "--queue",
    "email": "--email",
}


def check_resources(res: Resources) -> None:
    """Refuse resource values that would end or split a ``#SBATCH`` / ``#PBS`` line.

    A newline in a value ends the directive line: the rest becomes a line of the job script that the
    shell runs (and sbatch stops reading ``#SBATCH`` lines at the first non-comment line). Values
    are therefore refused, with ValueError naming the option, when they hold a control character
    (newline, carriage return, tab, ...); the single-word values (all but ``--directive``) also when
    they hold any whitespace, which the scheduler would read as the end of the value.
    """
    values = [(opt, getattr(res, field), False) for field, opt in _RESOURCE_OPTIONS.items()]
    values += [("--directive", d, True) for d in res.directives]
    for opt, value, spaces_ok in values:
        bad = next((c for c in str(value) if ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:
            raise ValueError(
                f"{opt} {value!r}: control character {bad!r} refused (it would end the job script's "
                f"directive line and run the rest as a command)"
            )
        if not spaces_ok and any(c.isspace() for c in str(value)):
            raise ValueError(f"{opt} {value!r}: whitespace refused in a scheduler resource value")


# --------------------------------------------------------------------------- the use-case command


def fingerprint(args: argparse.Namespace) -> dict:
    """The options of a run that change its artefacts, as plain JSON data."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)

    return {k: plain(v) for k, v in sorted(vars(args).items()) if k not in NEUTRAL_OPTIONS}


def check_same_options(work: Path, old: dict, new: dict) -> None:
    """Refuse options other than those WORK was submitted with, naming the first that differs."""
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            raise ValueError(
                f"{work} was submitted with {k}={json.dumps(old.get(k))}; this submission asks "
                f"{k}={json.dumps(new.get(k))}: its finished artefacts were made with the first; "
                f"use a new --work folder"
            )


# --------------------------------------------------------------------------- scripts


def script_environment() -> jinja2.Environment:
    """Jinja environment over job_templates/ with a ``q`` filter quoting a shell word."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(JOB_TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def render_script(
    backend: backends.Backend,
    step: JobStep,
    base: Sequence[str],
    work: Path,
    cwd: Path,
    res: Resources,
    gpus: int,
    out: Path,
) -> Path:
    """Write the job script of ``step`` (its template in job_templates/) to ``out`` (executable).

    Raises ValueError for resource values that could inject lines (:func:`check_resources`)."""
    check_resources(res)
    groups: dict[str, list[int]] = {}
    for t in step.tasks:
        cmd = shlex.join([sys.executable, "-m", "pipeline", *step.task_argv(base, t)])
        groups.setdefault(cmd, []).append(t)
    # the tasks run from the submitting folder: the checkout's pipeline package goes on the path
    path = os.pathsep.join(
        dict.fromkeys([str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    )
    env = [("PYTHONPATH", path), ("PYTHONUNBUFFERED", "1")] + [
        (k, os.environ[k]) for k in ("CAFFE_ROOT",) if os.environ.get(k)
    ]
    text = (
        script_environment()
        .get_template(backend.template)
        .render(
            step=step.name,
            title=step.what.format(task="<task>") or step.name,
            scheduler=backend.name,
            made=time.strftime("%Y-%m-%d %H:%M:%S"),
            marks=str(records.marks_dir(work)),
            cwd=str(cwd),
            env=env,
            commands=[(ids, cmd) for cmd, ids in groups.items()],
            cpus=res.cpus,
            gpus=gpus,
            time=res.walltime,
            mem=res.mem,
            partition=res.partition,
            account=res.account,
            qos=res.qos,
            extra=list(res.directives),
            walltime=res.walltime or "320:00:00",
            email=res.email,
            queue=res.queue,
            nodes=f"nodes=1:ppn={res.cpus}" + (f":gpus={gpus}:exclusive_process" if gpus else ""),
        )
    )
    atomic.write_text(out, text)
    out.chmod(0o755)
    return out


# --------------------------------------------------------------------------- submit


@dataclass
class Submission:
    """What one call of :func:`submit` did (or, dry, would do)."""

    n: int
    scheduler: str
    submitted: dict[str, dict[int, str]] = field(default_factory=dict)  # step -> task -> job id
    after: dict[str, list[str]] = field(default_factory=dict)  # step -> job ids it waits for
    commands: dict[str, list[list[str]]] = field(default_factory=dict)  # step -> scheduler commands run
    scripts: dict[str, str] = field(default_factory=dict)
    done: dict[str, list[int]] = field(default_factory=dict)  # step -> tasks already done
    active: dict[str, list[int]] = field(default_factory=dict)  # step -> tasks queued or running
    cancelled: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)  # local: step -> why it did not run


def submit(
    argv: Sequence[str],
    scheduler: str,
    parse: ParseCommand,
    res: Resources = Resources(),
    dry_run: bool = False,
    cwd: Path | None = None,
) -> Submission:
    """Submit the use-case command ``argv`` (``["usecase2", "--data", ...]``) as jobs to ``scheduler``.

    Renders WORK/jobs/<n>/<step>.<suffix>, submits the tasks that are neither done nor queued or
    running, chained by the steps' dependencies, and records them; ``dry_run`` renders and reports
    without submitting or recording. Raises ValueError (bad command, other options than the work
    folder's) and :class:`~pipeline.scheduler.backends.SchedulerError`.
    """
    check_resources(res)
    cwd = Path(cwd or Path.cwd()).resolve()
    uc, args = parse(argv, cwd)
    work = Path(args.work)
    backend = backends.get(scheduler)
    steps = uc.job_steps(args)
    check_plan(steps)
    by_name = {s.name: s for s in steps}
    base = strip_option(argv, "--stages")
    subs = records.read_submissions(work)
    fp = fingerprint(args)
    if subs:
        check_same_options(work, subs[-1]["fingerprint"], fp)
        if subs[-1]["scheduler"] != scheduler:
            raise ValueError(
                f"{work}'s jobs were submitted to {subs[-1]['scheduler']}; submit to the same scheduler "
                f"(its queue tells what is still running), or use a new --work folder"
            )
    try:
        queue = backend.queue()
    except backends.SchedulerError:
        if not dry_run:
            raise
        queue = {}
        log.warning("dry run: the %s queue cannot be read here; tasks that are not done count as missing", scheduler)
    states = task_states(work, steps, subs, backend, queue)
    gpus = res.gpus if res.gpus is not None else (1 if getattr(args, "gpu", False) else 0)
    if gpus and not getattr(args, "gpu", False):
        log.warning("%d GPU(s) per task asked, but the command has no --gpu: the tasks will compute on the CPU", gpus)
    sub = Submission(n=len(subs) + 1, scheduler=scheduler)
    folder = records.jobs_dir(work) / str(sub.n)
    for step in steps:
        st = states[step.name]
        sub.done[step.name] = [t for t in step.tasks if st[t].state == "done"]
        renewed = [a for a in step.after if a in sub.submitted]
        if renewed:  # its inputs are being made again: queued instances would never run, or run too early
            stale = [st[t].job for t in step.tasks if st[t].state == "queued"]
        else:
            stale = [st[t].job for t in step.tasks if st[t].never_runs]
        if step.workers and all(st[t].state == "done" for t in step.tasks):
            tasks = []
        else:
            tasks = [t for t in step.tasks if st[t].state != "done" and (st[t].job in stale or not st[t].active)]
        sub.active[step.name] = [t for t in step.tasks if st[t].active and st[t].job not in stale]
        if not tasks:
            continue
        after: list[str] = []
        for a in step.after:
            if a in sub.submitted:
                after += backend.dependency_ids(sub.submitted[a], whole_array=True)
            running = {t: s.job for t, s in states[a].items() if s.active}
            if running:
                after += backend.dependency_ids(running, whole_array=False)
        if backend.runs_now:
            failed = [
                f"{a} task {t}"
                for a in step.after
                for t in by_name[a].tasks
                if not by_name[a].done(t) and _exit_status(work, a, t) not in (0, None)
            ]
            if failed:
                sub.not_run[step.name] = f"not run: {', '.join(failed)} failed"
                log.error("%s: %s", step.name, sub.not_run[step.name])
                continue
        logs = folder / "logs"
        script = render_script(
            backend, step, base, work, cwd, res, gpus if step.gpu else 0, folder / f"{step.name}{backend.script_suffix}"
        )
        sub.scripts[step.name] = str(script)
        if dry_run:
            sub.submitted[step.name] = {t: f"<{step.name}>" for t in tasks}
            sub.after[step.name] = after
            sub.commands[step.name] = [
                backend.command_preview(script, step.name, tasks, after, logs, job_name(uc.name, step.name))
            ]
            continue
        if stale:
            backend.cancel(stale)
            sub.cancelled += stale
            log.info("%s: cancelled %s (queued behind work that is submitted again)", step.name, " ".join(stale))
        logs.mkdir(parents=True, exist_ok=True)
        records.marks_dir(work).mkdir(parents=True, exist_ok=True)
        for t in tasks:
            records.clear_marks(work, step.name, t)
        ids, cmds = backend.submit(script, step.name, tasks, after, logs, job_name(uc.name, step.name))
        sub.submitted[step.name], sub.after[step.name], sub.commands[step.name] = ids, after, cmds
        log.info(
            "%s: tasks %s submitted (%s)%s",
            step.name,
            ",".join(map(str, tasks)),
            " ".join(sorted(set(ids.values()))),
            f", after {':'.join(after)}" if after else "",
        )
        # the record is written after each step, so an error later leaves the submitted jobs recorded
        _record(work, sub, argv, base, fp, cwd, res)
    return sub


def _exit_status(work: Path, step: str, task: int) -> int | None:
    mark = records.read_mark(work, step, task, "exit")
    return None if mark is None else mark.status


def job_name(usecase: str, step: str) -> str:
    """The scheduler's name of a step's jobs: ``jpi-<use case>-<step>``."""
    return f"jpi-{usecase}-{step}"


def _record(
    work: Path, sub: Submission, argv: Sequence[str], base: Sequence[str], fp: dict, cwd: Path, res: Resources
) -> None:
    rec = {
        "n": sub.n,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scheduler": sub.scheduler,
        "cwd": str(cwd),
        "argv": list(base),
        "fingerprint": fp,
        "options": dataclasses.asdict(res),
        "steps": {
            s: {
                "tasks": {str(t): j for t, j in ids.items()},
                "after": sub.after.get(s, []),
                "script": sub.scripts.get(s, ""),
                "commands": sub.commands.get(s, []),
            }
            for s, ids in sub.submitted.items()
        },
        "cancelled": sub.cancelled,
    }
    records.write_submission(work, rec)
