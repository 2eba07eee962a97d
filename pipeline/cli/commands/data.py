"""``python -m pipeline data``: download a data set (explicit; needs network) or check one.

- ``data fetch NAME [--dest data] [--url URL] [--no-verify]`` (``data NAME`` is the same);
- ``data check DATA --usecase X [--work DIR] [--json FILE] [--no-verify]``: what an archive or
  folder holds, before any long run; exit status 1 when something would stop the run.

NAME and X are a use case (name or command, e.g. ``epi`` or ``usecase2``) or a data set of
``pipeline/usecases/datasets.py`` (``nuclei``, ``tubule``...).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pipeline import data, datacheck
from pipeline.usecases import REGISTRY
from pipeline.usecases.datasets import DATASETS


def _sources() -> dict[str, tuple[str, tuple]]:
    """name -> (title, archives) for every use case with archives and every declared data set."""
    out = {name: (f"data set {a.name}", (a,)) for name, a in DATASETS.items()}
    for name, uc in REGISTRY.items():
        if uc.archives:
            out[name] = (f"use case {uc.number or name}: {uc.title}", uc.archives)
            out[uc.command] = out[name]
    return out


def _fetch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="another location of the same archive (a mirror)")
    p.add_argument("--dest", type=Path, default=Path("data"), help="folder to download into (default data/)")
    p.add_argument("--no-verify", action="store_true", help="do not check the published sha256 (deliberate)")
    p.set_defaults(func=run_fetch)


def add(sub) -> None:
    names = sorted(_sources())
    da = sub.add_parser(
        "data",
        help="download a data set (data fetch NAME) or check one (data check DATA --usecase X)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = da.add_subparsers(dest="data_command", required=True, metavar="{fetch,check,NAME}")
    f = dsub.add_parser("fetch", help="download a data set's archive (progress, resumable, sha256)")
    f.add_argument("name", choices=names, metavar="NAME", help="use case or data set: " + ", ".join(names))
    _fetch_options(f)
    c = dsub.add_parser("check", help="what an archive or folder holds (patients, images, masks, sizes, values)")
    c.add_argument("data", type=Path, help="archive or folder")
    c.add_argument(
        "--usecase", required=True, choices=names, metavar="X", help="use case or data set: " + ", ".join(names)
    )
    c.add_argument(
        "--work",
        type=Path,
        help="extract under WORK/data (as the use-case run does; default: a temporary folder, removed afterwards)",
    )
    c.add_argument("--json", type=Path, help="also write the report as JSON")
    c.add_argument("--no-verify", action="store_true", help="accept a checksum mismatch (deliberate)")
    c.set_defaults(func=run_check)
    for name in names:  # `data <name>`: same as `data fetch <name>`
        p = dsub.add_parser(name)  # no help: not listed
        p.set_defaults(name=name)
        _fetch_options(p)


def run_fetch(a) -> int:
    title, archives = _sources()[a.name]
    for arch in archives:
        if not (a.url or arch.url):  # use case 5: no public archive is known
            raise ValueError(
                f"{a.name}: no public archive is known; pass the folder itself with --data ({arch.layout})"
            )
        path = data.fetch(arch, a.dest, url=a.url, verify_hash=not a.no_verify)
        rec = json.loads(path.with_name(path.name + ".json").read_text())
        state = (
            "verified against the published sha256"
            if rec["verified"]
            else "UNVERIFIED: no published checksum"
            + (" (or --no-verify)" if arch.sha256 else "")
            + "; recorded in "
            + path.name
            + ".json"
        )
        print(f"{a.name} ({title}): {path}\n  {rec['bytes']} bytes, sha256 {rec['sha256']} ({state})")
    return 0


def run_check(a) -> int:
    title, archives = _sources()[a.usecase]
    with tempfile.TemporaryDirectory(prefix="data-check-") as tmp:
        cache = Path(a.work) / "data" if a.work else Path(tmp)
        match, check = data.locate(
            a.data,
            cache,
            archives,
            allow=data.allow_unverified(a.no_verify),
            always_hash=True,
            fetch_hint=f"python -m pipeline data fetch {a.usecase} --dest DIR",
        )
        report = datacheck.inventory(match)
    report = {"data": str(a.data), "archive": check.__dict__ if check else None, **report}
    print(datacheck.format_report(report, title))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report, indent=1))
    return 1 if report["errors"] else 0
