"""Use case 7's part of the run report, read from WORK/scores.json and WORK/output/<k>/: the headline
(per fold, pooled, published 0.97), the pooled confusion matrix, and example tiles with their votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.imageio import imread_matlab
from pipeline.report import Column, Content, Picture, Row, Section, Table, from_json
from pipeline.report.pictures import montages
from pipeline.usecases.lymphoma import tiles

SCORES = "scores.json"
HEADLINE = [Column("images", "test images", 0), Column("correct", "correct", 0), Column("accuracy", "accuracy")]


def headline(doc: dict, published: list[Row]) -> Table:
    """Per-fold and pooled image-level accuracy beside the published figure."""
    rows = [
        Row(f"fold {f['fold']}", {c.key: from_json(doc, SCORES, "folds", i, c.key) for c in HEADLINE})
        for i, f in enumerate(doc["folds"])
    ]
    rows.append(
        Row(
            "pooled",
            {c.key: from_json(doc, SCORES, "pooled", c.key) for c in HEADLINE},
            kind="pooled",
            note="all folds",
        )
    )
    lk = doc["leakage"]
    return Table(
        HEADLINE,
        rows + published,
        caption=(
            f"Image level (majority vote of the tiles), {doc.get('variant', 'plain')} net, folds {doc['folds_from']}; "
            f"{lk['slides_in_several_test_folds']} of {lk['slides']} slides have images in more than one test fold."
        ),
    )


def confusion_table(doc: dict) -> Table:
    """The pooled confusion matrix, rows predicted, columns true (the original's conf_matrix[pred, actual])."""
    cols = [Column(c, f"true {c}", 0) for c in tiles.CLASSES]
    rows = [
        Row(
            f"called {c}",
            {t: from_json(doc, SCORES, "pooled", "confusion_pred_by_true", i, j) for j, t in enumerate(tiles.CLASSES)},
        )
        for i, c in enumerate(tiles.CLASSES)
    ]
    return Table(cols, rows, corner="", caption="Pooled over the folds run: rows predicted, columns true.")


def example_tiles(work: Path, doc: dict, data: Path, pictures: Path) -> list[Picture]:
    """For one test image per true class (the first of the first fold that has one), its step-5 tiles
    grouped by their vote."""
    pics = []
    for f in doc["folds"]:
        votes = Path(work) / "output" / str(f["fold"]) / "votes.json"
        if not votes.is_file():
            continue
        chosen: dict[int, dict] = {}
        for rec in json.loads(votes.read_text())["images"]:
            chosen.setdefault(rec["true"], rec)
        for t, rec in sorted(chosen.items()):
            path = Path(data) / rec["image"]
            if not path.is_file():
                continue
            img = imread_matlab(path)
            _, patches = tiles.step5_patches(img)
            groups = {}
            for ci, c in enumerate(tiles.CLASSES):
                mine = [p for p, v in zip(patches, rec["votes"]) if v == ci][:24]
                groups[f"tiles voted {c} ({rec['counts'][ci]})"] = [np.asarray(p) for p in mine]
            called = tiles.CLASSES[rec["predicted"]]
            title = f"Fold {f['fold']}: {rec['image']} (true {tiles.CLASSES[t]}, called {called})"
            file = f"lymphoma_fold{f['fold']}_{Path(rec['image']).stem}.png"
            montages(groups, title, pictures / file, columns=8, scale=2, panel_columns=3)
            pics.append(Picture(file, title + ": its 36x36 step-5 tiles by their vote (up to 24 shown)."))
        break
    return pics


def content(work: Path, base: Content, published: list[Row], pictures: Path) -> Content:
    """The report content of a run (notes when the scores stage has not run)."""
    scores = Path(work) / SCORES
    if not scores.is_file():
        base.notes.append(f"no {SCORES} yet: the scores stage has not run")
        return base
    doc = json.loads(scores.read_text())
    base.headline = headline(doc, published)
    data = None
    for name in ("patches_report.json", "summary.json"):  # a --released-models run cuts no patches
        path = Path(work) / name
        if data is None and path.is_file() and "data" in json.loads(path.read_text()):
            data = Path(json.loads(path.read_text())["data"])
    pics = example_tiles(Path(work), doc, data, pictures) if data and data.is_dir() else []
    base.sections.append(Section("Confusion matrix", tables=[confusion_table(doc)]))
    base.sections.append(
        Section(
            "Example tiles and their votes",
            pictures=pics,
            text="Each test image is classified by the majority of its tiles' votes (ties to CLL, then FL)."
            if pics
            else "The input images are gone; no pictures.",
        )
    )
    return base
