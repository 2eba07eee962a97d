"""``python -m pipeline usecases``: the registered use cases and their commands."""

from __future__ import annotations

from pipeline.report.mdtable import MISSING, pipe_table
from pipeline.usecases import REGISTRY


def add(sub) -> None:
    u = sub.add_parser("usecases", help="list the registered use cases, their commands and magnification")
    u.set_defaults(func=run)


def run(a) -> int:
    rows = [
        [uc.name, f"{uc.number or MISSING}: {uc.title}", uc.command, uc.demo_command or MISSING]
        + [f"{uc.magnification:g}", ",".join(uc.stages)]
        for uc in REGISTRY.values()
    ]
    header = ["name", "use case", "command", "demo", "step-5 magnification", "stages"]
    print("\n".join(pipe_table(header, rows)))
    return 0
