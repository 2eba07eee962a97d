"""Step-5 engines behind one interface (:class:`Engine`): reference, exact, fcn."""

from __future__ import annotations

from pathlib import Path

from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.engines.exact import ExactEngine
from pipeline.inference.engines.fcn import FCNEngine
from pipeline.inference.engines.reference import ReferenceEngine

#: The engines by ``--mode`` name.
ENGINES: dict[str, type[Engine]] = {e.name: e for e in (ReferenceEngine, ExactEngine, FCNEngine)}


def make_engine(
    mode: str,
    model: Path,
    mean: Path,
    deploy: Path | None = None,
    dropout: bool = False,
    gpu: bool = False,
    net_dir: Path | None = None,
) -> Engine:
    """An engine of the given mode ("reference", "exact", "fcn"); nets it renders go to ``net_dir``."""
    if mode not in ENGINES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(ENGINES)}")
    return ENGINES[mode](model, mean, deploy=deploy, dropout=dropout, gpu=gpu, net_dir=net_dir)


__all__ = ["ENGINES", "Engine", "ExactEngine", "FCNEngine", "Options", "Progress", "ReferenceEngine", "make_engine"]
