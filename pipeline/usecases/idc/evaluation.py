"""Patch-level evaluation of a model (use case 6): confusion counts and scores, overall and per patient.

Each original 50x50 patch under ROOT/PATIENT/{0,1}/ is cut or resized exactly as the patches stage
does (unrotated, unless ``with_rotations``), so a model sees what it was trained on; or the
32x32 patches named in a list file are read from a patch folder. Writes JSON ({"overall": ...,
"patients": {...}}), a per-patch CSV of probabilities and a Markdown table.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, folds, lists, metrics
from pipeline.classify import PatchClassifier
from pipeline.patches import read_rgb_like_matlab
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.base import Figure
from pipeline.usecases.idc.patches import VARIANTS, make_patches, output_name

log = logging.getLogger(__name__)


@dataclass
class PatchSet:
    """Patches to classify: names, patient IDs, true labels and uint8 RGB pixels (N x 32 x 32 x 3)."""

    names: list[str]
    patients: list[str]
    labels: np.ndarray
    pixels: np.ndarray


def from_patients(
    root: Path,
    variant: str,
    patients: list[str] | None = None,
    with_rotations: bool = False,
    show_progress: bool = True,
) -> PatchSet:
    """Cut/resize each original patch of ``patients`` (all folders of ``root`` if None)."""
    from tqdm import tqdm

    root = Path(root)
    v = VARIANTS[variant]
    if patients is None:
        patients = sorted(p.name for p in root.iterdir() if p.is_dir())
    names, pids, labels, pix = [], [], [], []
    for pid in tqdm(patients, desc="read patches", unit="patient", disable=not show_progress):
        pdir = root / pid
        if not pdir.is_dir():
            log.warning("patient %s: no folder under %s", pid, root)
            continue
        files = [
            (label, f)
            for label in (0, 1)
            if (pdir / str(label)).is_dir()
            for f in sorted((pdir / str(label)).glob("*.png"))
        ]
        if not files:
            raise FileNotFoundError(f"{pdir}: patient folder holds no PNG patches under 0/ or 1/")
        for label, f in files:
            img = read_rgb_like_matlab(f)
            try:
                outs = make_patches(img, v, label)
            except IndexError as exc:
                log.warning("skipped %s: %s", f, exc)
                continue
            for k, sub, reason in outs if with_rotations else outs[:1]:
                if sub is None:
                    log.warning("skipped %s: %s", f, reason)
                    continue
                names.append(output_name(f.name, k) if with_rotations else f.name)
                pids.append(pid)
                labels.append(label)
                pix.append(sub)
    if not pix:
        raise ValueError(f"{root}: no patches to evaluate for patients {patients}")
    return PatchSet(names, pids, np.array(labels, dtype=np.int64), np.stack(pix))


def from_list(list_path: Path, patch_dir: Path) -> PatchSet:
    """The 32x32 patches named in a list file (TAB or space separated), read from ``patch_dir``."""
    entries = lists.read_list(list_path)
    if not entries:
        raise ValueError(f"{list_path}: list is empty")
    pix = []
    for n, e in enumerate(entries, start=1):
        if not (Path(patch_dir) / e.name).is_file():
            raise FileNotFoundError(f"{list_path}: entry {n} names {e.name}, which is not in {patch_dir}")
        img = read_rgb_like_matlab(Path(patch_dir) / e.name)
        if img.shape != (32, 32, 3):
            raise ValueError(f"{Path(patch_dir) / e.name}: patch has shape {img.shape}, expected 32x32x3")
        pix.append(img)
    pids = [folds.patient_of(e.name) if "_" in e.name else "all" for e in entries]
    return PatchSet([e.name for e in entries], pids, np.array([e.label for e in entries]), np.stack(pix))


def classify(clf: PatchClassifier, ps: PatchSet, oversample: bool = True) -> np.ndarray:
    """Probabilities (N x classes) of a patch set; pixels as load_image would give them (x/255)."""
    windows = (ps.pixels.astype(np.float64) / 255.0).astype(np.float32)
    return clf.predict(windows, oversample=oversample)


def summarize(ps: PatchSet, probs: np.ndarray) -> dict:
    """Scores overall and per patient (argmax decisions)."""
    pred = probs.argmax(axis=1)
    out = {"overall": metrics.scores(metrics.confusion(ps.labels, pred)), "patients": {}}
    pids = np.array(ps.patients)
    for pid in dict.fromkeys(ps.patients):
        m = pids == pid
        out["patients"][pid] = metrics.scores(metrics.confusion(ps.labels[m], pred[m]))
    return out


def write_outputs(ps: PatchSet, probs: np.ndarray, result: dict, json_out: Path, csv_out: Path | None = None) -> None:
    """Write the JSON result and the per-patch CSV (name, patient, label, p0, p1, predicted)."""
    atomic.write_text(Path(json_out), json.dumps(result, indent=1))
    csv_out = Path(csv_out) if csv_out else Path(json_out).with_suffix(".csv")
    with atomic.atomic_path(csv_out) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "patient", "label", *[f"p{i}" for i in range(probs.shape[1])], "predicted"])
        for n, pid, lab, p in zip(ps.names, ps.patients, ps.labels, probs):
            w.writerow([n, pid, int(lab), *[f"{v:.8f}" for v in p], int(p.argmax())])


def markdown_table(
    result: dict, variant: str, figures: tuple[Figure, ...] = (), title: str = "Use case 6 (IDC), patch level"
) -> str:
    """Measured scores beside the published ``figures`` (one row per figure note; figures of other
    variants left out), then one row per patient."""
    o = result["overall"]
    rows = [("measured (this run)", o["f_score"], o["balanced_accuracy"], o["accuracy"], "this run")]
    groups: dict[str, dict] = {}
    for fig in figures:
        if fig.variant not in (None, variant):
            continue
        g = groups.setdefault(fig.note, {"sources": []})
        g[fig.metric] = fig.value
        if fig.source not in g["sources"]:
            g["sources"].append(fig.source)
    for note, g in groups.items():
        rows.append((note, g.get("f_score"), g.get("balanced_accuracy"), g.get("accuracy"), ", ".join(g["sources"])))
    keys = ("f_score", "balanced_accuracy", "accuracy")
    patients = [
        [pid, *(p[k] for k in ("n", "tp", "fp", "fn", "tn")), *(fixed(p[k]) for k in keys)]
        for pid, p in result["patients"].items()
    ]
    return document(
        f"### {title} -- variant {variant}",
        f"Confusion (class 1 = IDC): tp {o['tp']}, fp {o['fp']}, fn {o['fn']}, tn {o['tn']} (n = {o['n']})",
        pipe_table(
            ["", "F-score", "balanced accuracy", "accuracy", "source"],
            [[a, fixed(f), fixed(b), fixed(c), s] for a, f, b, c, s in rows],
        ),
        pipe_table(["patient", "n", "tp", "fp", "fn", "tn", "F-score", "balanced accuracy", "accuracy"], patients),
    )


def evaluate(
    model: Path,
    mean: Path,
    variant: str,
    json_out: Path,
    patients_dir: Path | None = None,
    patients: list[str] | None = None,
    list_path: Path | None = None,
    patch_dir: Path | None = None,
    oversample: bool = True,
    dropout: bool = False,
    with_rotations: bool = False,
    gpu: bool = False,
    deploy: Path | None = None,
    figures: tuple[Figure, ...] = (),
    show_progress: bool = True,
) -> dict:
    """Classify and score; writes ``json_out``, its CSV and a Markdown table (``.md``) with the
    published ``figures`` beside the measured ones. The deploy net, unless given, is rendered
    beside ``json_out``."""
    if patients_dir is not None:
        ps = from_patients(patients_dir, variant, patients, with_rotations, show_progress)
    elif list_path is not None and patch_dir is not None:
        ps = from_list(list_path, patch_dir)
    else:
        raise ValueError("give either patients_dir or list_path and patch_dir")
    clf = PatchClassifier(model, mean, deploy=deploy, dropout=dropout, gpu=gpu, net_dir=Path(json_out).parent)
    probs = classify(clf, ps, oversample)
    result = summarize(ps, probs)
    result["config"] = {
        "model": str(model),
        "mean": str(mean),
        "variant": variant,
        "oversample": oversample,
        "dropout": dropout,
        "with_rotations": with_rotations,
    }
    write_outputs(ps, probs, result, json_out)
    atomic.write_text(Path(json_out).with_suffix(".md"), markdown_table(result, variant, figures))
    o = result["overall"]
    log.info(
        "evaluated %d patches: F %s, balanced accuracy %s, accuracy %s",
        o["n"],
        fixed(o["f_score"]),
        fixed(o["balanced_accuracy"]),
        fixed(o["accuracy"]),
    )
    return result
