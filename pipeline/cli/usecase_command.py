"""A use case's command line as data: what ``python -m pipeline submit`` and ``status`` run as jobs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from pipeline.usecases import REGISTRY


def usecase_parser() -> argparse.ArgumentParser:
    """A parser of the use cases' commands only (as ``python -m pipeline`` parses them)."""
    p = argparse.ArgumentParser(prog="python -m pipeline")
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")
    for uc in REGISTRY.values():
        uc.add_commands(sub)
    return p


def parse_usecase_argv(argv: Sequence[str], cwd: Path) -> tuple[Any, argparse.Namespace]:
    """The use case and parsed options of a use-case command line (``usecase2 --data ...``), its
    relative paths made absolute against ``cwd``. ValueError for anything but a use case's run."""
    commands = {c: uc for uc in REGISTRY.values() for c in (uc.command, uc.demo_command) if c}
    if not argv or argv[0] not in commands:
        raise ValueError(
            f"submit runs a use case's command ({', '.join(sorted(commands))}), got {' '.join(argv) or 'nothing'}"
        )
    args = usecase_parser().parse_args(list(argv))
    for k, v in vars(args).items():
        if isinstance(v, Path) and not v.is_absolute():
            setattr(args, k, Path(cwd) / v)
    return commands[argv[0]], args
