"""``python -m pipeline report WORK``: (re)build ``WORK/report/index.html`` from a work folder.

Every use-case command records itself in ``WORK/run.json`` (use case, command line, stages,
options, start and end) and ends by building the report; this command rebuilds it from the
folder alone, recomputing nothing. The use case's ``report`` hook supplies the headline and the
pictures (:mod:`pipeline.usecases.base`); the page is :mod:`pipeline.report`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import time
from pathlib import Path

from pipeline import REPO_ROOT, __version__, atomic, report
from pipeline.report import Option
from pipeline.usecases import REGISTRY, get

RUN_JSON = "run.json"
#: Parsed options never recorded (the command line's own machinery).
_NOT_OPTIONS = {"usecase", "demo", "func", "command", "verbose", "stages", "argv"}


def add(sub) -> None:
    r = sub.add_parser("report", help="rebuild WORK/report/index.html from a finished work folder (recomputes nothing)")
    r.add_argument("work", type=Path, help="work folder of a use-case run")
    r.add_argument(
        "--usecase",
        choices=list(REGISTRY),
        help=f"use case of the folder when it has no {RUN_JSON} (runs of older versions)",
    )
    r.set_defaults(func=run)


def run(a) -> int:
    if not Path(a.work).is_dir():
        raise FileNotFoundError(f"{a.work}: no such work folder")
    print(f"report: {build_for(Path(a.work), a.usecase)}")
    return 0


# --------------------------------------------------------------------------- run.json


def _jsonable(v):
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _version() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__} ({commit})" if commit else __version__


def read_run(work: Path) -> dict:
    """``WORK/run.json``, or {} when absent."""
    path = Path(work) / RUN_JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def record_run(work: Path, uc, args: argparse.Namespace, stages: tuple[str, ...], finished: bool = False) -> None:
    """Write ``WORK/run.json`` for a use-case command: before it runs, and again when it finished
    (with the options as the run left them). The commands of earlier runs in the folder are kept
    under "history"."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    old = read_run(work)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    command = "python -m pipeline " + shlex.join(getattr(args, "argv", []) or [])
    doc = {
        "usecase": uc.name,
        "command": command,
        "demo": bool(getattr(args, "demo", False)),
        "stages": list(stages),
        "options": {k: _jsonable(v) for k, v in sorted(vars(args).items()) if k not in _NOT_OPTIONS},
        "pipeline": _version(),
        "started": now,
        "finished": None,
    }
    if finished:
        doc["started"] = old.get("started", now)
        doc["finished"] = now
        doc["history"] = old.get("history", [])
    else:
        history = old.get("history", [])
        if old.get("command"):
            history = history + [{k: old.get(k) for k in ("command", "started", "finished")}]
        doc["history"] = history
    atomic.write_text(work / RUN_JSON, json.dumps(doc, indent=1))


# --------------------------------------------------------------------------- the page


def _duration(started: str | None, finished: str | None) -> str:
    """'1 h 02 min', '3 min 05 s' or '8 s' between two run.json times ('%Y-%m-%d %H:%M:%S'); '' when
    either is missing."""
    if not started or not finished:
        return ""
    fmt = "%Y-%m-%d %H:%M:%S"
    s = int(time.mktime(time.strptime(finished, fmt)) - time.mktime(time.strptime(started, fmt)))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def options_of(uc, run: dict) -> list:
    """The run's options, those changing numbers (``uc.numeric_options``) first, each beside the
    published run's value (the default of ``uc.command``)."""
    p = argparse.ArgumentParser(add_help=False)
    uc.add_arguments(p, demo=False)
    # argparse has no public list of a parser's actions; _actions has been stable since Python 2.7
    flags = {a.dest: a.option_strings[-1] if a.option_strings else a.dest for a in p._actions}
    negated = {a.dest for a in p._actions if a.option_strings and a.const is False and a.default is True}
    recorded = run.get("options", {})

    def flag(k: str) -> str:
        return flags.get(k, "--" + k.replace("_", "-"))

    out = [
        Option(k, flag(k), recorded.get(k), _jsonable(p.get_default(k)), True, k in negated) for k in uc.numeric_options
    ]
    out += [
        Option(k, flag(k), v, None, False, k in negated)
        for k, v in recorded.items()
        if k not in uc.numeric_options and k not in ("work", "data")
    ]
    return out


def build_for(work: Path, usecase: str | None = None) -> Path:
    """Build ``WORK/report/`` for the use case recorded in ``WORK/run.json`` (or ``usecase``)."""
    work = Path(work)
    run = read_run(work)
    name = usecase or run.get("usecase")
    if not name:
        raise ValueError(f"{work}: no {RUN_JSON} saying which use case made this folder; pass --usecase NAME")
    uc = get(name)
    title = f"Use case {uc.number}: {uc.title}" if uc.number else uc.title
    facts = [("work folder", str(work.resolve())), ("use case", f"{uc.name} ({uc.command})")]
    if run:
        facts += [
            ("stages", ", ".join(run.get("stages", []))),
            ("started", run.get("started") or "–"),
            ("finished", run.get("finished") or "not finished (interrupted, or still running)"),
            ("pipeline version", run.get("pipeline", "–")),
        ]
        took = _duration(run.get("started"), run.get("finished"))
        if took:
            facts.append(
                (
                    "this command took",
                    took
                    + (
                        " (artefacts finished by the earlier commands below were reused, not recomputed)"
                        if run.get("history")
                        else ""
                    ),
                )
            )
        facts += [
            (
                f"earlier command {i}",
                f"{h.get('command')} (started {h.get('started')}, "
                + (f"finished {h['finished']})" if h.get("finished") else "did not finish)"),
            )
            for i, h in enumerate(run.get("history", []), start=1)
        ]
    generated = (
        (
            "The data are GENERATED images (made by the demo, not real tissue): the numbers show the "
            "pipeline works end to end and say nothing about the published task. The demo also runs far "
            "fewer iterations than the publication (see the options)."
        )
        if run.get("demo")
        else ""
    )
    page = report.Page(
        title=title,
        command=run.get("command", ""),
        generated=generated,
        facts=facts,
        options=options_of(uc, run) if run else [],
        rebuild=f"python -m pipeline report {shlex.quote(str(work))}",
    )
    return report.build(work, page, lambda pictures: uc.report(work, run, pictures))
