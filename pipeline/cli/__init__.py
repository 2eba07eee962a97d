"""Command line: ``python -m pipeline <command> ...`` (``--help`` on any command).

The parser is built from the parts: each shared command module below adds its own sub-command,
and each registered use case adds its commands (``usecase<N>``, its demo, extra ones), so the
``--usecase`` choices and use-case commands come from :data:`pipeline.usecases.REGISTRY`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipeline.cli import commands
from pipeline.cli.commands import report
from pipeline.cli.common import print_summary
from pipeline.usecases import REGISTRY

log = logging.getLogger("pipeline")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: shared ones, then each use case's."""
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")
    for module in commands.MODULES:
        module.add(sub)
    for uc in REGISTRY.values():
        uc.add_commands(sub)
    return p


def _run_usecase(a: argparse.Namespace) -> dict:
    """Run a use-case command, recorded in WORK/run.json, ending with WORK/report/index.html."""
    uc = a.usecase
    stages = uc.parse_stages(getattr(a, "stages", None))
    report.record_run(a.work, uc, a, stages)
    summary = uc.run(a, stages, demo=a.demo)
    report.record_run(a.work, uc, a, stages, finished=True)
    if getattr(a, "folds", ()):
        # a cluster task of some folds (``submit`` runs them in parallel in one WORK): the run's
        # last step, which runs alone, writes the report; parallel tasks would race for the folder
        log.info("--folds: report not rebuilt (python -m pipeline report %s after the last fold)", a.work)
        return summary
    try:
        summary["report"] = str(report.build_for(a.work))
    except Exception as exc:  # the run's results are safe in WORK; say how to retry
        raise RuntimeError(
            f"the run finished (results in {a.work}), but building its report failed: {exc!r}; "
            f"retry with python -m pipeline -v report {a.work}"
        ) from exc
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors print one clear line, not a traceback."""
    a = build_parser().parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    func = getattr(a, "func", None) or _run_usecase
    try:
        result = func(a)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        if a.verbose:
            raise
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; rerun the same command to resume")
        return 130
    if isinstance(result, int):
        return result
    if result is not None:
        print_summary(result)
    return 0
