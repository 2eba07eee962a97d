"""``python -m pipeline fetch-released``: the released weights and means, sha256-checked."""

from __future__ import annotations

from pathlib import Path

from pipeline import released
from pipeline.usecases import REGISTRY


def add(sub) -> None:
    names = [n for n, uc in REGISTRY.items() if uc.released_folder]
    fr = sub.add_parser(
        "fetch-released", help="download (or copy --from a folder) the released weights and means, sha256-checked"
    )
    fr.add_argument("--usecase", default="all", choices=names + ["all"])
    fr.add_argument("--dest", type=Path, default=Path("data/released"))
    fr.add_argument("--from", dest="from_dir", type=Path, help="offline: copy verified files from this folder")
    fr.set_defaults(func=run)


def run(a) -> int:
    wanted = [uc.released_folder for name, uc in REGISTRY.items() if uc.released_folder and a.usecase in (name, "all")]
    files = released.fetch(wanted, a.dest, from_dir=a.from_dir)
    print(f"{len(files)} released files verified in {a.dest}")
    return 0
