"""A run as cluster jobs: steps (a job or a job array each), their order, and which tasks are done.

The original submitted one Torque job per fold (``step4_submit_jobs.py`` piping ``BASE-qsub.pbs`` to
``qsub``; ``submit_jobs_levels.py`` one per fold and level) and ran step 5 on many machines that
shared one output folder (``step5_create_output_images_kfold.py``: a placeholder ``_class.png``
claimed an image). Here a use case describes its run as :class:`JobStep` objects
(:meth:`pipeline.usecases.base.UseCase.job_steps`); :mod:`pipeline.scheduler.submit` turns them into
job scripts and scheduler dependencies. Pure: nothing here runs or submits anything.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

#: Parses a use-case command line (``["usecase2", "--data", ...]``) run from a folder into the use case
#: (an object with ``name`` and ``job_steps``) and its options; the command line supplies it
#: (:func:`pipeline.cli.usecase_command.parse_usecase_argv`), as this package knows no use case.
ParseCommand = Callable[[Sequence[str], Path], tuple[Any, argparse.Namespace]]


def _never(task: int) -> bool:
    return False


@dataclass(frozen=True)
class JobStep:
    """One job (one task) or job array of a run; every task runs the use-case command with ``--stages``.

    Each task runs ``python -m pipeline <the submitted command and options> --stages <stages>``,
    followed by ``task_option <task id>`` when ``task_option`` is set (``--folds 3``: array task 3
    trains fold 3), then ``options``. Without ``task_option`` the tasks are interchangeable workers
    that share the work through the stage's own claims (step 5's per-image lock files).
    """

    name: str  # unique in the plan: "prepare", "train", "outputs", "scores"
    stages: tuple[str, ...]  # the use-case stages its tasks run (--stages)
    tasks: tuple[int, ...] = (1,)  # array task ids; folds for training
    after: tuple[str, ...] = ()  # steps whose tasks must all end successfully first (afterok)
    task_option: str | None = None  # option that passes the task id, e.g. "--folds"
    options: tuple[str, ...] = ()  # further arguments of every task
    gpu: bool = False  # asks for the GPU resources of the submission
    done: Callable[[int], bool] = field(default=_never, compare=False)  # task's artefacts exist
    what: str = ""  # in words, for status tables: "train fold {task}"

    @property
    def workers(self) -> bool:
        """Tasks are interchangeable workers (no task option): a rerun starts them all again."""
        return self.task_option is None and len(self.tasks) > 1

    def task_argv(self, base: Sequence[str], task: int) -> list[str]:
        """Arguments after ``python -m pipeline`` of ``task``: ``base`` (the command and its options,
        without ``--stages`` and the task option), then ``--stages``, the task option and :attr:`options`."""
        argv = [
            *(strip_option(base, self.task_option) if self.task_option else base),
            "--stages",
            ",".join(self.stages),
        ]
        if self.task_option:  # replaces the command's own (``--folds 1,2`` -> task 2: ``--folds 2``)
            argv += [self.task_option, str(task)]
        return argv + list(self.options)

    def describe(self, task: int) -> str:
        """What ``task`` does, in words."""
        return (self.what or self.name).format(task=task)


def check_plan(steps: Sequence[JobStep]) -> None:
    """Names unique and plain (letters, digits, ``_``, ``-``: they are written into job scripts and
    file names), tasks non-empty, every ``after`` naming an earlier step; ValueError otherwise."""
    seen: set[str] = set()
    for s in steps:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", s.name):
            raise ValueError(f"job plan: step name {s.name!r} is not plain (letters, digits, _ and - only)")
        if s.name in seen:
            raise ValueError(f"job plan: step {s.name!r} appears twice")
        if not s.tasks or len(set(s.tasks)) != len(s.tasks) or min(s.tasks) < 0:
            raise ValueError(f"job plan: step {s.name!r} has task ids {s.tasks!r}")
        unknown = [a for a in s.after if a not in seen]
        if unknown:
            raise ValueError(f"job plan: step {s.name!r} runs after {', '.join(unknown)}, which is not an earlier step")
        seen.add(s.name)


def strip_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--stages a,b`` or ``--stages=a,b``), wherever it is."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


def array_spec(tasks: Sequence[int]) -> str:
    """SLURM's ``--array`` text for task ids, runs compressed: (1, 2, 3, 5) -> "1-3,5"."""
    ids = sorted(set(tasks))
    parts: list[str] = []
    start = prev = ids[0]
    for t in ids[1:] + [None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if t is not None:
            start = prev = t
    return ",".join(parts)


def restrict(steps: Sequence[JobStep], stages: Sequence[str]) -> tuple[JobStep, ...]:
    """The steps running any of ``stages`` (``--stages``), each running only those; a step that
    waited for a dropped step waits for what that one waited for (train,scores: scores after train)."""
    kept: list[JobStep] = []
    waits: dict[str, tuple[str, ...]] = {}  # step -> the kept steps it (transitively) runs after
    for s in steps:
        after = tuple(dict.fromkeys(a for b in s.after for a in ((b,) if b in {k.name for k in kept} else waits[b])))
        waits[s.name] = after
        mine = tuple(x for x in s.stages if x in stages)
        if mine:
            kept.append(replace(s, stages=mine, after=after))
    return tuple(kept)
