"""``python -m pipeline submit``: a use-case run as cluster jobs (SLURM job arrays, PBS jobs, local runs)."""

from __future__ import annotations

import argparse

from pipeline.cli.usecase_command import parse_usecase_argv
from pipeline.scheduler import submit
from pipeline.scheduler.backends import BACKENDS


def add(sub) -> None:
    p = sub.add_parser(
        "submit",
        help="a use case's run as cluster jobs: SLURM job arrays, PBS jobs, or here; "
        "a rerun submits only what is missing",
        description="python -m pipeline submit --scheduler slurm [options] usecase2 --data ... "
        "--work ... [its options]: everything after the use-case command is its own.",
    )
    p.add_argument(
        "--scheduler",
        required=True,
        choices=list(BACKENDS),
        help="slurm (sbatch job arrays), pbs (qsub, one job per task: Torque/OpenPBS) or local (here, in turn)",
    )
    p.add_argument("--cpus", type=int, default=1, help="CPU cores per task (default 1)")
    p.add_argument(
        "--gpus", type=int, help="GPUs per training / step-5 task (default 1 with the command's --gpu, else 0)"
    )
    p.add_argument(
        "--time",
        dest="walltime",
        default="",
        help="time limit per task, e.g. 72:00:00 (SLURM --time; PBS walltime, default the original's 320:00:00)",
    )
    p.add_argument("--mem", default="", help="memory per task (SLURM --mem, e.g. 16G)")
    p.add_argument("--partition", default="", help="SLURM partition")
    p.add_argument("--account", default="", help="SLURM account")
    p.add_argument("--qos", default="", help="SLURM QOS")
    p.add_argument("--queue", default="", help="PBS queue (-q; the original's was gpufermi)")
    p.add_argument("--email", default="", help="PBS -M address (with -m bea, as the original)")
    p.add_argument(
        "--directive",
        dest="directives",
        action="append",
        default=[],
        help="a further #SBATCH / #PBS line, as written after the prefix (repeatable), "
        "e.g. --directive=--constraint=a100",
    )
    p.add_argument("--dry-run", action="store_true", help="render the scripts and show the commands; submit nothing")
    p.add_argument(
        "run",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ...",
        help="the use-case command and its options (usecase2 --data ... --work ...)",
    )
    p.set_defaults(func=run_submit)


def run_submit(a) -> int:
    res = submit.Resources(
        cpus=a.cpus,
        gpus=a.gpus,
        walltime=a.walltime,
        mem=a.mem,
        partition=a.partition,
        account=a.account,
        qos=a.qos,
        queue=a.queue,
        email=a.email,
        directives=tuple(a.directives),
    )
    sub = submit.submit(a.run, a.scheduler, parse_usecase_argv, res, dry_run=a.dry_run)
    verb = "would submit" if a.dry_run else "ran" if sub.scheduler == "local" else "submitted"
    header = f"submission {sub.n}{' (dry run)' if a.dry_run else ''}" if sub.submitted else "nothing to submit"
    print(f"\n{sub.scheduler}, {header}:")
    for step in sub.done:
        parts = []
        if sub.done[step]:
            parts.append(f"done: task(s) {_ids(sub.done[step])}")
        if sub.active.get(step):
            parts.append(f"queued or running: {_ids(sub.active[step])}")
        if step in sub.submitted:
            jobs = " ".join(sorted(set(sub.submitted[step].values())))
            parts.append(
                f"{verb}: task(s) {_ids(sub.submitted[step])} as {jobs}"
                + (f" after {':'.join(sub.after[step])}" if sub.after.get(step) else "")
            )
        if step in sub.not_run:
            parts.append(sub.not_run[step])
        print(f"  {step}: {'; '.join(parts) or 'nothing to do'}")
        if a.dry_run and step in sub.commands:
            print("    " + " ".join(sub.commands[step][0]))
    if sub.cancelled:
        print(f"  cancelled (queued behind work submitted again): {' '.join(sub.cancelled)}")
    if not sub.submitted:
        print("  nothing submitted: every task is done, queued or running")
    work = _work_of(a.run)
    if sub.scripts:
        print(f"scripts and logs: {work}/jobs/{sub.n}/")
    print(f"state: python -m pipeline status {work}")
    return 1 if sub.not_run else 0


def _ids(tasks) -> str:
    return ",".join(str(t) for t in sorted(tasks))


def _work_of(argv: list[str]) -> str:
    for i, x in enumerate(argv):
        if x == "--work" and i + 1 < len(argv):
            return argv[i + 1]
        if x.startswith("--work="):
            return x.split("=", 1)[1]
    return "WORK"
