"""The models the authors released: checksum table and downloader.

Files (weights, means, the IDC split lists) come from the public repository choosehappy/public at
a pinned commit, folder "DL tutorial Code/<use case>/" (weights and means in its models/
sub-folder). ``resources/released.json`` holds the sha256 and size of each file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline import RESOURCE_DIR, artefacts, download

log = logging.getLogger(__name__)


def table() -> dict:
    """The checksum table (commit, URL pattern, files with sha256 and bytes)."""
    return json.loads((RESOURCE_DIR / "released.json").read_text())


def url_for(rel_path: str) -> str:
    """Download URL of a file given as "<uc folder>/<file>" (e.g. "uc6-idc/cases_test.txt")."""
    t = table()
    folder, name = rel_path.split("/", 1)
    sub = "" if name.startswith("cases_") or (folder == "uc3-tubule" and name.endswith(".txt")) else "models/"
    return t["url_pattern"].format(commit=t["commit"], folder=t["folders"][folder], sub=sub, file=name)


def folders() -> list[str]:
    """The folders of the checksum table ("uc2-epi", ...), one per use case with released files."""
    return sorted(table()["folders"])


def fetch(wanted: list[str], dest: Path, from_dir: Path | None = None, show_progress: bool = True) -> list[Path]:
    """Put the released files of the ``wanted`` folders ("uc6-idc", ...) under ``dest``.

    With ``from_dir`` the files are copied from a local folder (laid out as ``dest`` or flat) after
    their sha256 is checked, with no network. Files already present and verified are kept.
    """
    unknown = [w for w in wanted if w not in folders()]
    if unknown:
        raise ValueError(f"no released files for {', '.join(unknown)}; known: {', '.join(folders())}")
    out = []
    for f in table()["files"]:
        folder = f["path"].split("/", 1)[0]
        if folder not in wanted:
            continue
        target = Path(dest) / f["path"]
        if target.is_file() and download.sha256_of(target) == f["sha256"]:
            out.append(target)
            continue
        if from_dir is not None:
            src = Path(from_dir) / f["path"]
            if not src.is_file():
                src = Path(from_dir) / Path(f["path"]).name
            if not src.is_file():
                raise FileNotFoundError(f"{from_dir}: has no {f['path']} (nor {Path(f['path']).name})")
            download.copy_verified(src, target, f["sha256"])
        else:
            download.fetch(
                url_for(f["path"]),
                target,
                sha256=f["sha256"],
                show_progress=show_progress,
                offline_hint="Use --from DIR with a folder that holds the files (e.g. ../shared/released).",
                override_hint="",
            )
        out.append(target)
    log.info("released files of %s: %d verified in %s", ", ".join(wanted), len(out), dest)
    return out


def epi_fold(folder: Path, k: int = 1) -> tuple[Path, Path]:
    """(weights, mean) of the released use-case-2 fold-``k`` model in ``folder`` (a copy of "uc2-epi")."""
    folder = Path(folder)
    return artefacts.released_model(folder, k), artefacts.released_mean(folder, k)
