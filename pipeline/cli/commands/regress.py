"""``python -m pipeline regress``: the released models against yours, on the same inputs.

Shared options here; each use case adds its own (deduplicated: use cases sharing a regression
share its options) and runs the comparison (``UseCase.regress``).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.report import mdtable, table_report
from pipeline.usecases import REGISTRY, get


def add(sub) -> None:
    rg = sub.add_parser("regress", help="compare the released models and your own on the same inputs")
    rg.add_argument(
        "--usecase",
        default="idc",
        choices=[n for n, uc in REGISTRY.items() if uc.released_folder],
        help="idc: patch-level table on --data; image use cases: probability maps of --images",
    )
    rg.add_argument(
        "--released",
        type=Path,
        default=Path("data/released"),
        help="folder of released files (`make fetch-released`; `make regress` passes ../shared/released "
        "when it exists)",
    )
    rg.add_argument("--data", type=Path, help="data to evaluate on (idc: zip or folder of PATIENT/{0,1}/*.png)")
    rg.add_argument("--ours", type=Path, action="append", default=[], help="your caffemodel (repeatable)")
    rg.add_argument(
        "--ours-mean",
        type=Path,
        action="append",
        default=[],
        help="mean of each --ours model, in order (idc default: WORK/DB_train_w32_1.binaryproto)",
    )
    rg.add_argument("--gpu", action="store_true")
    rg.add_argument("--out", type=Path, default=Path("runs/regress"))
    seen = set()
    for uc in REGISTRY.values():
        hook = type(uc).add_regress_arguments
        if hook not in seen:
            seen.add(hook)
            uc.add_regress_arguments(rg)
    rg.set_defaults(func=run)


def run(a) -> dict:
    """The use case's regression, then ``OUT/report/index.html`` showing its table(s)."""
    uc = get(a.usecase)
    summary = uc.regress(a, a.released)
    if summary.get("table") and Path(summary["table"]).is_file():
        title = f"Regression against the released models: use case {uc.number}, {uc.title}"
        summary["report"] = str(
            table_report(
                a.out,
                title,
                mdtable.read_tables(Path(summary["table"])),
                facts=[("released models", str(a.released)), ("output", str(a.out))],
                section="The models on the same inputs",
            )
        )
    return summary
