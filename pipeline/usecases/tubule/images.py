"""Use case 3's inputs: the annotation-driven image list, the "patient" groups, and the benign /
malignant lists of step 1 (3-tubule/step1_make_patches.m = step1).

- Images are found through their annotations: ``dir('*_anno*.bmp')`` (step1:16); the image of
  ``<id>_anno.bmp`` is ``<id>.bmp`` (``strrep(fname, '_anno', '')``, step1:41).
- A "patient" is ``name(1:end-11)`` of an annotation (step1:17), which strips ``-N_anno.bmp``:
  ``09-1339-01-1_anno.bmp`` -> ``09-1339-01``; an m-name loses its last two characters too
  (``m6_10719 T3N2a_anno.bmp`` -> ``m6_10719 T3N``). Its images are the annotations matching
  ``<group>*_anno.bmp`` (step1:24), in name order (MATLAB ``dir``). ``group="case"`` (an option)
  groups by the first two dash fields instead (blocks of one case in one fold).
- Class (step1:34): malignant when the annotation's ``<id>`` equals a line of malignant.txt without
  ``.bmp``, else benign. Lines are whole lines (three names hold spaces), as ``importdata`` read them.

Bad input is named in one line each (image without annotation, annotation without image, image in
neither list, list line naming no image); the per-image problems (sizes) are in :mod:`.sampling`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline import REPO_ROOT

log = logging.getLogger(__name__)

ANNO = "_anno.bmp"
GROUPINGS = ("name", "case")
#: Where ``fetch-released`` puts the lists (released with the models, not with the data set).
RELEASED_LISTS = REPO_ROOT / "data" / "released" / "uc3-tubule"


def image_of(anno: Path) -> Path:
    """``<id>_anno.bmp`` -> ``<id>.bmp`` beside it (step1:41, ``strrep(fname, '_anno', '')``)."""
    return anno.with_name(anno.name.replace("_anno", ""))


def image_id(anno: Path | str) -> str:
    """``fname(1:end-9)``: the annotation's name without ``_anno.bmp``."""
    return Path(anno).name[: -len(ANNO)]


def group_of(anno_name: str, grouping: str = "name") -> str:
    """The "patient" of an annotation: ``name(1:end-11)`` (default, step1:17) or, with ``grouping``
    "case", the first two dash-separated fields of its id (``09-1339-01-1`` -> ``09-1339``)."""
    if grouping == "name":
        return anno_name[:-11]
    if grouping == "case":
        return "-".join(image_id(anno_name).split("-")[:2])
    raise ValueError(f"grouping {grouping!r} is not one of {GROUPINGS}")


def annotations(folder: Path) -> list[Path]:
    """``dir('*_anno*.bmp')`` of ``folder``, in name order."""
    return sorted(p for p in Path(folder).glob("*_anno*.bmp") if p.is_file())


def images_by_group(folder: Path, grouping: str = "name") -> dict[str, list[Path]]:
    """Annotation files per group, groups in sorted order (MATLAB ``unique``), each group's files
    those matching ``<group>*_anno.bmp`` (step1:24) in name order. Images without annotation are
    named in a warning line each (the original never looked at them)."""
    annos = annotations(folder)
    groups = sorted({group_of(a.name, grouping) for a in annos})
    out: dict[str, list[Path]] = {}
    for g in groups:
        if grouping == "name":
            out[g] = [a for a in annos if a.name.startswith(g) and a.name.endswith(ANNO)]
        else:
            out[g] = [a for a in annos if group_of(a.name, grouping) == g and a.name.endswith(ANNO)]
    annotated = {image_of(a).name for a in annos}
    for img in sorted(Path(folder).glob("*.bmp")):
        if "_anno" not in img.name and img.name not in annotated:
            log.warning("%s: image without annotation (no %s); not used", img, img.stem + ANNO)
    return out


@dataclass(frozen=True)
class ClassLists:
    """The lines of benign.txt and malignant.txt (whole lines, as ``importdata`` read them)."""

    benign: tuple[str, ...]
    malignant: tuple[str, ...]

    def is_malignant(self, anno: Path | str) -> bool:
        """step1:34: ``any(strcmp(x(1:end-4), fname(1:end-9)))`` over the malignant lines."""
        return any(x[:-4] == image_id(anno) for x in self.malignant)


def read_class_list(path: Path) -> tuple[str, ...]:
    """One image file name per non-empty line, kept whole (spaces inside included, line ends and
    trailing blanks dropped)."""
    return tuple(ln.rstrip(" \t\r") for ln in Path(path).read_text().splitlines() if ln.strip())


def find_class_lists(data: Path, benign: str | Path = "", malignant: str | Path = "") -> ClassLists:
    """Read the two lists: the paths given, else ``benign.txt``/``malignant.txt`` in the data folder,
    else in data/released/uc3-tubule (``python -m pipeline fetch-released --usecase tubule``).
    FileNotFoundError naming where they were looked for."""
    found = []
    for given, name in ((benign, "benign.txt"), (malignant, "malignant.txt")):
        places = [Path(given)] if given else [Path(data) / name, RELEASED_LISTS / name]
        path = next((p for p in places if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"{name}: not found (looked in {', '.join(str(p) for p in places)}); pass --{name[:-4]} FILE "
                "or run `python -m pipeline fetch-released --usecase tubule` (the lists were released with the models)"
            )
        found.append(read_class_list(path))
    return ClassLists(*found)


def check_class_lists(lists: ClassLists, annos: list[Path]) -> list[str]:
    """One warning line per list line naming no annotated image and per annotated image in neither
    list (the original counts those benign: its ``else`` branch); returns the lines (also logged)."""
    ids = {image_id(a) for a in annos}
    lines = []
    for fname, names in (("benign.txt", lists.benign), ("malignant.txt", lists.malignant)):
        for i, x in enumerate(names, start=1):
            if x[:-4] not in ids:
                lines.append(f"{fname}:{i}: names {x!r}, which has no image with an annotation in the data")
    listed = {x[:-4] for x in lists.benign + lists.malignant}
    for a in annos:
        if image_id(a) not in listed:
            lines.append(
                f"{image_of(a)}: in neither benign.txt nor malignant.txt; taken as benign, as the original did"
            )
    for line in lines:
        log.warning("%s", line)
    return lines
