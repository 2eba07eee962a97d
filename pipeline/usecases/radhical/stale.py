"""Stage completion keyed on what made an artefact: a rerun with other inputs or options rebuilds it.

A marker ``<artefact>.recipe.json`` beside the artefact holds the recipe (a small dict: list
checksums, seeds, options). :func:`refresh` removes the artefacts of a stale recipe before the
stage runs; :func:`mark` records the recipe once they are built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from pipeline import atomic

log = logging.getLogger(__name__)


def file_digest(path: Path) -> str | None:
    """sha256 of a file (None when it does not exist)."""
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _marker(artefact: Path) -> Path:
    return Path(artefact).with_name(Path(artefact).name + ".recipe.json")


def refresh(artefact: Path, recipe: dict, also: list[Path] = ()) -> bool:
    """True when ``artefact`` was built with ``recipe``. Otherwise it (and ``also``: files, folders
    or globs of what derives from it) is removed so the stage rebuilds it; returns False."""
    marker = _marker(artefact)
    recipe = json.loads(json.dumps(recipe, sort_keys=True))  # as stored: JSON keys are strings
    if marker.is_file() and json.loads(marker.read_text()) == recipe and Path(artefact).exists():
        return True
    if marker.is_file() or Path(artefact).exists():
        log.info("%s: built with other inputs or options; rebuilding", artefact)
    for p in [Path(artefact), *also]:
        for q in p.parent.glob(p.name) if any(ch in p.name for ch in "*?[") else [p]:
            if q.is_dir():
                shutil.rmtree(q)
            elif q.exists():
                q.unlink()
    marker.unlink(missing_ok=True)
    return False


def mark(artefact: Path, recipe: dict) -> None:
    """Record the recipe ``artefact`` was built with."""
    atomic.write_text(_marker(artefact), json.dumps(recipe, indent=1, sort_keys=True))
