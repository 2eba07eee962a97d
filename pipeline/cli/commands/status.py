"""``python -m pipeline status WORK``: each task of a submitted run: done, queued, running, failed..."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.cli.usecase_command import parse_usecase_argv
from pipeline.scheduler import status


def add(sub) -> None:
    s = sub.add_parser("status", help="queued, running, done and failed tasks of a submitted work folder")
    s.add_argument("work", type=Path, help="the --work folder of a submitted run")
    s.add_argument("--json", action="store_true", help="print JSON instead of the table")
    s.set_defaults(func=run_status)


def run_status(a) -> int:
    result = status.status(a.work, parse_usecase_argv)
    if a.json:
        print(json.dumps(status.as_json(result), indent=1))
        return 0
    print(f"{result['command']}\n({result['scheduler']}; {result['work']})\n")
    print(status.table(result["states"]))
    if result["note"]:
        print(f"note: {result['note']}")
    print("summary: " + ", ".join(f"{n} {s}" for s, n in result["counts"].items()))
    return 0
