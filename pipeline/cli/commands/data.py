"""``python -m pipeline data <use case>``: download a use case's data set archive (explicit; needs network)."""
from __future__ import annotations

from pathlib import Path


def add(sub) -> None:
    from pipeline.usecases import REGISTRY
    da = sub.add_parser("data", help="download a use case's data set archive (explicit; needs network)")
    da.add_argument("usecase", choices=[n for n, uc in REGISTRY.items() if uc.archives])
    da.add_argument("--url", help="override the published location")
    da.add_argument("--dest", type=Path, default=Path("data"))
    da.set_defaults(func=run)


def run(a) -> int:
    from pipeline import data
    from pipeline.usecases import get
    arch = get(a.usecase).archives[0]
    url = a.url or arch.url
    name = url.rsplit("/", 1)[-1] if a.url else arch.name
    path = data.fetch_archive(url, name, a.dest, sha256=None if a.url else arch.sha256)
    print(f"{a.usecase} archive: {path}")
    return 0
