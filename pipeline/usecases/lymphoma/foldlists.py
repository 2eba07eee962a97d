"""Use case 7 folds: the published fold lists, freshly drawn folds, a slide-level split, and the
slide leakage across test folds; the per-fold patch lists of step 2.

An image is named as in the published lists, ``<CLASS>/<stem>.tif`` (``CLL/sj-03-2810_003.tif``).
A fold assignment maps each image to the fold (1..5) whose test set holds it; train_k is the rest.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

from pipeline import artefacts, lists
from pipeline import folds as shared_folds
from pipeline.usecases.lymphoma.tiles import CLASSES, slide_of

NFOLDS = 5
FOLDINGS = ("published", "fresh", "slide")


def read_parent_list(path: Path) -> list[str]:
    """The image names of a ``{train,test}_w32_parent_<k>.txt`` (one a line, LF endings)."""
    return lists.read_names(path)


def published_assignment(folder: Path, nfolds: int = NFOLDS) -> dict[str, int]:
    """Image -> test fold from ``test_w32_parent_<k>.txt`` in ``folder``; ValueError naming the file
    when one is missing or an image is in two test lists."""
    out: dict[str, int] = {}
    for k in range(1, nfolds + 1):
        path = Path(folder) / artefacts.parent_list("test", k)
        if not path.is_file():
            raise ValueError(f"{path}: fold list missing (the published lists: make fetch-released, or --folds-from)")
        for name in read_parent_list(path):
            if name in out:
                raise ValueError(f"{path}: {name} is already in the test list of fold {out[name]}")
            out[name] = k
    return out


def fresh_assignment(images: Sequence[str], seed: int, nfolds: int = NFOLDS) -> dict[str, int]:
    """Freshly drawn folds as step 2 drew them: ``crossvalind('Kfold', n, 5)`` per class over its
    images (unseeded in the original; here the seeded draw of :func:`pipeline.folds.assign_folds`)."""
    out: dict[str, int] = {}
    for ci, cls in enumerate(CLASSES):
        mine = [i for i in images if i.split("/", 1)[0] == cls]
        if mine:
            out.update(shared_folds.assign_folds(mine, nfolds, seed + ci))
    return out


def slide_assignment(images: Sequence[str], seed: int, nfolds: int = NFOLDS) -> dict[str, int]:
    """NOT the published protocol: whole slides in folds (per class, seeded), so that no slide is on
    both sides of a fold. ValueError when a class has fewer slides than folds."""
    out: dict[str, int] = {}
    for ci, cls in enumerate(CLASSES):
        by_slide: dict[str, list[str]] = defaultdict(list)
        for i in images:
            if i.split("/", 1)[0] == cls:
                by_slide[slide_of(i)].append(i)
        if not by_slide:
            continue
        if len(by_slide) < nfolds:
            raise ValueError(f"--folds-from slide: class {cls} has {len(by_slide)} slide(s), fewer than {nfolds} folds")
        for slide, k in shared_folds.assign_folds(sorted(by_slide), nfolds, seed + ci).items():
            out.update({i: k for i in by_slide[slide]})
    return out


def check_assignment(
    assignment: dict[str, int], images: Sequence[str], where: str, list_folder: Path | None = None
) -> None:
    """Bad input in one line: a listed image that is not in the data (naming the fold list that
    lists it, ``test_w32_parent_<k>.txt`` of ``list_folder``), or an image in no fold list."""
    have = set(images)
    missing = sorted(set(assignment) - have)
    if missing:
        first = missing[0]
        src = Path(list_folder) / artefacts.parent_list("test", assignment[first]) if list_folder else where
        raise ValueError(
            f"{src}: fold list names {first}, which is not in the data"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    unlisted = sorted(have - set(assignment))
    if unlisted:
        raise ValueError(
            f"{unlisted[0]}: image in no fold list of {where}"
            + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
            + "; remove it, or draw folds with --folds-from fresh"
        )


def leakage(assignment: dict[str, int]) -> dict[str, list[int]]:
    """Slides whose images sit in more than one test fold: slide -> sorted folds (the published
    folds split per image, so a slide's images are on both sides of a fold)."""
    folds_of: dict[str, set[int]] = defaultdict(set)
    for image, k in assignment.items():
        folds_of[slide_of(image)].add(k)
    return {s: sorted(f) for s, f in sorted(folds_of.items()) if len(f) > 1}


def leakage_summary(assignment: dict[str, int]) -> dict:
    """Slides, slides in more than one test fold, and how many test folds each slide spans (JSON-ready)."""
    slides = {slide_of(i) for i in assignment}
    leaks = leakage(assignment)
    spans: dict[int, int] = defaultdict(int)
    for s in slides:
        spans[len(leaks.get(s, [0]))] += 1
    return {
        "slides": len(slides),
        "slides_in_several_test_folds": len(leaks),
        "slides_by_number_of_test_folds": {str(n): spans[n] for n in sorted(spans)},
    }


def write_parent_lists(folder: Path, assignment: dict[str, int], order: Sequence[str], nfolds: int = NFOLDS) -> None:
    """``{train,test}_w32_parent_<k>.txt`` of an assignment, images in ``order``."""
    for k in range(1, nfolds + 1):
        lists.write_names(Path(folder) / artefacts.parent_list("test", k), [i for i in order if assignment[i] == k])
        lists.write_names(Path(folder) / artefacts.parent_list("train", k), [i for i in order if assignment[i] != k])


def fold_entries(names: Sequence[str], patches_of: dict[str, list[str]]) -> list[lists.Entry]:
    """Step 2's list lines of the images ``names``: every patch of each, its class the image's."""
    out = []
    for name in names:
        label = CLASSES.index(name.split("/", 1)[0])
        out += [lists.Entry(p, label) for p in patches_of[name]]
    return out
