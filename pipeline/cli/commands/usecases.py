"""``python -m pipeline usecases``: the registered use cases and their commands."""

from __future__ import annotations

from pipeline.usecases import REGISTRY


def add(sub) -> None:
    u = sub.add_parser("usecases", help="list the registered use cases, their commands and magnification")
    u.set_defaults(func=run)


def run(a) -> int:
    print("| name | use case | command | demo | step-5 magnification | stages |")
    print("|---|---|---|---|---|---|")
    for uc in REGISTRY.values():
        print(
            f"| {uc.name} | {uc.number or '–'}: {uc.title} | {uc.command} | {uc.demo_command or '–'} | "
            f"{uc.magnification:g} | {','.join(uc.stages)} |"
        )
    return 0
