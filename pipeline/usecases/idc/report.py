"""Use case 6's part of the run report: the patch-level headline (measured beside published), the
per-patient table and montages of true/false positives and negatives, all from ``WORK/eval/``.

Nothing is classified again: the per-patch probabilities come from ``eval/metrics.csv``, the
patches from the data folder the patches stage recorded (``patches_report.json``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.patches import read_rgb_like_matlab
from pipeline.report import Column, Content, Picture, Row, Section, Table, from_json
from pipeline.report.pictures import montages

METRICS = "eval/metrics.json"
HEADLINE = [
    Column("tp", "tp", 0),
    Column("fp", "fp", 0),
    Column("fn", "fn", 0),
    Column("tn", "tn", 0),
    Column("f_score", "F-score"),
    Column("balanced_accuracy", "balanced accuracy"),
    Column("accuracy", "accuracy"),
]
#: Groups of the montage: (name, true label, predicted label).
GROUPS = (
    ("true positives: IDC, called IDC", 1, 1),
    ("false positives: not IDC, called IDC", 0, 1),
    ("false negatives: IDC, called not IDC", 1, 0),
    ("true negatives: not IDC, called not IDC", 0, 0),
)


def headline(doc: dict, published: list[Row]) -> Table:
    """The test split's scores from ``eval/metrics.json`` beside the published rows."""
    o = doc["overall"]
    measured = Row(
        "test split",
        {c.key: from_json(doc, METRICS, "overall", c.key) for c in HEADLINE},
        note=f"{len(doc['patients'])} patient(s), {o['n']} patches",
    )
    return Table(
        HEADLINE,
        [measured] + published,
        caption=(
            f"Patch level, class 1 = IDC; variant {doc['config']['variant']}; each original 50x50 test patch once"
            + (", window and mirror averaged." if doc["config"].get("oversample", True) else ", window alone.")
        ),
    )


def per_patient(doc: dict) -> Table:
    """One row per test patient, numbers read from ``eval/metrics.json``."""
    cols = [Column("n", "patches", 0)] + HEADLINE
    rows = [Row(pid, {c.key: from_json(doc, METRICS, "patients", pid, c.key) for c in cols}) for pid in doc["patients"]]
    return Table(cols, rows, corner="patient", caption="Per test patient.")


def _pad_to(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``img`` cut or padded with white to (h, w) (border patches of the data set are smaller)."""
    out = np.full(shape + (3,), 255, np.uint8)
    h, w = min(shape[0], img.shape[0]), min(shape[1], img.shape[1])
    out[:h, :w] = img[:h, :w, :3] if img.ndim == 3 else img[:h, :w, None]
    return out


def montage(csv_path: Path, data_root: Path, out: Path, per_group: int = 24) -> tuple[Picture, dict[str, int]] | None:
    """Montages of the four outcome groups: at most ``per_group`` original patches each, evenly
    spaced in the ranking by the probability of the predicted class (most confident first)."""
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    groups: dict[str, list[np.ndarray]] = {}
    counts = {}
    for name, truth, pred in GROUPS:
        sel = [r for r in rows if int(r["label"]) == truth and int(r["predicted"]) == pred]
        sel.sort(key=lambda r: -float(r[f"p{pred}"]))
        counts[name] = len(sel)
        idx = np.unique(np.linspace(0, len(sel) - 1, min(per_group, len(sel))).round().astype(int)) if sel else []
        patches = []
        for i in idx:
            r = sel[i]
            f = Path(data_root) / r["patient"] / r["label"] / r["name"]
            if f.is_file():
                patches.append(_pad_to(read_rgb_like_matlab(f), (50, 50)))
        groups[f"{name} ({len(sel)})"] = patches
    if not any(groups.values()):
        return None
    montages(groups, "Test patches by outcome (most confident first)", out, columns=6, scale=2)
    return Picture(
        out.name,
        (
            "Test patches by outcome, as the data set holds them (50x50; the net saw the centre 32x32, or all of it "
            f"resized). Up to {per_group} per group, evenly spaced from the most to the least confident call, "
            "left to right, top to bottom; the count of each group in brackets."
        ),
    ), counts


def content(work: Path, content: Content, published: Callable[[str], list[Row]], pictures: Path) -> Content:
    """Fill ``content`` (training curves already in) from ``WORK/eval/`` and ``patches_report.json``;
    ``published(variant)``: the published rows of the evaluated variant."""
    metrics = Path(work) / METRICS
    if not metrics.is_file():
        content.notes.append(f"no {METRICS} yet: the evaluate stage has not run")
        return content
    doc = json.loads(metrics.read_text())
    content.headline = headline(doc, published(doc.get("config", {}).get("variant", "crop")))
    cfg = doc.get("config", {})
    content.options.update({k: cfg[k] for k in ("variant", "oversample", "dropout") if k in cfg})
    sections = [Section("Per patient", tables=[per_patient(doc)])]
    report = Path(work) / "patches_report.json"
    root = Path(json.loads(report.read_text())["config"]["data"]) if report.is_file() else None
    csv_path = metrics.with_suffix(".csv")
    if root is None or not root.is_dir() or not csv_path.is_file():
        content.notes.append(f"no patch montages: the patches ({root}) or {csv_path.name} are missing")
    else:
        made = montage(csv_path, root, pictures / "idc_outcomes.png")
        if made:
            sections.insert(0, Section("Patches by outcome", pictures=[made[0]]))
    content.sections += sections
    return content
