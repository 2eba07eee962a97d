"""Data sets on disk: explicit downloads, safe extraction, and finding a use case's folder in them.

Real data sets are fetched only by explicit commands (``python -m pipeline data <use case>``);
tests and demos use generated data and the shared real patches. What each use case's archive is
and looks like is declared by the use case (``UseCase.archives``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline import download

log = logging.getLogger(__name__)


def find_image_folder(path: Path, pattern: str, description: str, max_depth: int = 3) -> Path:
    """The folder (``path`` or below, breadth first) holding files matching ``pattern``."""
    path = Path(path)
    frontier = [path]
    for _ in range(max_depth + 1):
        for d in frontier:
            if d.is_dir() and any(d.glob(pattern)):
                return d
        frontier = [c for d in frontier if d.is_dir() for c in sorted(d.iterdir()) if c.is_dir()]
    raise FileNotFoundError(f"{path}: no {pattern} files found (expected the {description} layout)")


def prepare_images(data: Path, pattern: str, description: str, cache: Path, usecase: str) -> Path:
    """The image folder of an archive (extracted once, safely, under ``cache``) or a folder."""
    data = Path(data)
    if data.is_file():
        extracted = download.extract(data, Path(cache) / (data.name.split(".")[0] + "_extracted"))
        return find_image_folder(extracted, pattern, description)
    if data.is_dir():
        return find_image_folder(data, pattern, description)
    raise FileNotFoundError(f"{data}: neither an archive nor a folder. Download it with "
                            f"`python -m pipeline data {usecase} --dest DIR` or put the archive there by hand.")


def fetch_archive(url: str, name: str, dest: Path, sha256: str | None = None, show_progress: bool = True) -> Path:
    """Download an archive into ``dest`` (resumable; Content-Length and sha256 recorded beside it;
    checked against ``sha256`` when one was published)."""
    return download.download(url, Path(dest) / name, sha256=sha256, show_progress=show_progress,
                             offline_hint=f"Download {url} elsewhere and put {name} into {dest}.")
