"""``python -m pipeline caffe-train``: caffe train on any rendered solver (resuming)."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline import training
from pipeline.caffe_env import ALLOW_PYTHON_LAYERS_ENV


def add(sub) -> None:
    t = sub.add_parser("caffe-train", help="run caffe train on any rendered solver")
    t.add_argument("--solver", type=Path, required=True)
    t.add_argument("--gpu", action="store_true")
    t.add_argument("--no-resume", action="store_true", help="start from scratch even if snapshots exist")
    t.add_argument(
        "--allow-python-layers",
        action="store_true",
        help="train a net with Python layers (they import and run the module they name)",
    )
    t.set_defaults(func=run)


def run(a) -> int:
    if a.allow_python_layers:
        os.environ[ALLOW_PYTHON_LAYERS_ENV] = "1"
    res = training.train(a.solver, gpu=a.gpu, resume=not a.no_resume)
    print(
        f"model: {res.model}\nlog: {res.log}\ncsv: {res.csv}"
        + (f"\nresumed from {res.resumed_from}" if res.resumed_from else "")
    )
    return 0
