"""Datasets: where they come from, how they are found on disk.

Real datasets are fetched only by explicit commands; tests and demos use generated data and the
shared real patches.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline import download

log = logging.getLogger(__name__)

#: Published location of the IDC patches (use case 6) and where users put it by hand when offline.
IDC_URL = "http://gleason.case.edu/webdata/jpi-dl-tutorial/IDC_regular_ps50_idx5.zip"
IDC_ZIP = "IDC_regular_ps50_idx5.zip"


def _is_patient_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "0").is_dir() or (p / "1").is_dir())


def find_patient_root(path: Path, max_depth: int = 3) -> Path:
    """The folder holding PATIENT/{0,1}/ sub-folders, searched up to ``max_depth`` levels down.

    Works for the original zip's layout and the Kaggle mirror's (whose extra patient folders are
    simply not in the split lists). Raises FileNotFoundError naming the path if there is none.
    """
    path = Path(path)
    best, best_n = None, 0
    frontier = [path]
    for _ in range(max_depth + 1):
        nxt = []
        for d in frontier:
            if not d.is_dir():
                continue
            children = [c for c in d.iterdir() if c.is_dir()]
            n = sum(_is_patient_dir(c) for c in children)
            if n > best_n:
                best, best_n = d, n
            nxt += children if n == 0 else []
        frontier = nxt
    if best is None:
        raise FileNotFoundError(f"{path}: no PATIENT/0 or PATIENT/1 folders found (expected the IDC layout "
                                "PATIENT/{0,1}/<patient>_idx5_x<X>_y<Y>_class<C>.png)")
    return best


def prepare_idc(data: Path, cache: Path) -> Path:
    """Return the patient root of the IDC data given as a zip or a folder (extracting a zip once)."""
    data = Path(data)
    if data.is_file():
        return find_patient_root(download.extract(data, Path(cache) / (data.stem + "_extracted")))
    if data.is_dir():
        return find_patient_root(data)
    raise FileNotFoundError(f"{data}: neither the IDC zip nor a folder. Download it with "
                            f"`python -m pipeline data idc --dest DIR` or put {IDC_ZIP} there by hand.")


def fetch_idc(dest: Path, show_progress: bool = True) -> Path:
    """Download the IDC zip (resumable; Content-Length and sha256 recorded beside it)."""
    return download.download(IDC_URL, Path(dest) / IDC_ZIP, show_progress=show_progress,
                             offline_hint=f"Download {IDC_URL} elsewhere and put {IDC_ZIP} into {dest}, "
                                          f"then pass DATA={Path(dest) / IDC_ZIP}.")


#: Published locations of the image use cases' archives (use case 2: 336 MB, use case 4: 6.3 MB);
#: ``--url`` overrides them. No sha256 is published: the one of the first download is recorded.
ARCHIVES = {
    "epi": "http://andrewjanowczyk.com/wp-static/epi.tgz",
    "lymphocyte": "http://andrewjanowczyk.com/wp-static/lymphocyte.tgz",
}
#: File pattern that identifies each image use case's data folder.
MARKERS = {"epi": "*_mask.png", "lymphocyte": "i*.tif"}


def find_image_folder(path: Path, usecase: str, max_depth: int = 3) -> Path:
    """The folder (``path`` or below) holding the use case's images and masks."""
    path = Path(path)
    frontier = [path]
    for _ in range(max_depth + 1):
        for d in frontier:
            if d.is_dir() and any(d.glob(MARKERS[usecase])):
                return d
        frontier = [c for d in frontier if d.is_dir() for c in sorted(d.iterdir()) if c.is_dir()]
    raise FileNotFoundError(f"{path}: no {MARKERS[usecase]} files found (expected the {usecase} layout)")


def prepare_images(data: Path, usecase: str, cache: Path) -> Path:
    """The image folder of an archive (extracted once, safely) or a folder."""
    data = Path(data)
    if data.is_file():
        return find_image_folder(download.extract(data, Path(cache) / (data.name.split(".")[0] + "_extracted")), usecase)
    if data.is_dir():
        return find_image_folder(data, usecase)
    raise FileNotFoundError(f"{data}: neither an archive nor a folder. Download it with "
                            f"`python -m pipeline data {usecase} --dest DIR` or put the archive there by hand.")


def fetch_archive(usecase: str, dest: Path, url: str | None = None, show_progress: bool = True) -> Path:
    """Download a use case's archive (resumable; Content-Length and sha256 recorded beside it)."""
    url = url or ARCHIVES[usecase]
    name = url.rsplit("/", 1)[-1]
    return download.download(url, Path(dest) / name, show_progress=show_progress,
                             offline_hint=f"Download {url} elsewhere and put {name} into {dest}.")
