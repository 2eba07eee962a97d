"""Use case 6: regression of models against the released ones at patch level.

For each released IDC model (w32 = resize, w32_noresize = crop, w32_noresize_morerot = crop with
extra rotations, w32_dropout = resize with the dropout net) and each of the user's models, the same
test patches are classified with `pipeline.evaluation` (each on the patch variant it was trained
for), and a table reports confusion counts, F-score, balanced accuracy, agreement with the released
model of the same variant (share of patches given the same class, mean |dP(class 1)|) and the
published figure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import artefacts, atomic
from pipeline.classify import PatchClassifier, read_model
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.base import Figure
from pipeline.usecases.idc import evaluation

log = logging.getLogger(__name__)

RELEASED_FOR_VARIANT = {"crop": "w32_noresize", "resize": "w32", "crop-morerot": "w32_noresize_morerot"}


@dataclass(frozen=True)
class ReleasedIDC:
    """One released use-case-6 model and the patch variant it was trained on."""

    name: str  # "w32", "w32_noresize", ...
    variant: str  # patch variant (pipeline.usecases.idc.patches.VARIANTS)
    dropout: bool
    model: str  # file name
    mean: str  # file name


def _released(name: str, variant: str, dropout: bool = False, mean: str | None = None) -> ReleasedIDC:
    """A released model named ``name`` ("w32_noresize"): its caffemodel and its mean (``mean``: the
    variant whose mean it shares) as :mod:`pipeline.artefacts` names them."""
    model = artefacts.model(1, artefacts.RELEASED_ITERATIONS, artefacts.variant_snapshot(name))
    return ReleasedIDC(name, variant, dropout, model, artefacts.variant_mean(mean or name))


IDC_MODELS = [
    _released("w32", "resize"),
    _released("w32_noresize", "crop"),
    _released("w32_noresize_morerot", "crop-morerot"),
    _released("w32_dropout", "resize", dropout=True, mean="w32"),
]


@dataclass
class Candidate:
    """A model to compare: name, files, patch variant, net."""

    name: str
    model: Path
    mean: Path
    variant: str
    dropout: bool
    released: bool


def has_dropout(model: Path) -> bool:
    """Whether a caffemodel's net has Dropout layers (they are stored without blobs)."""
    p = read_model(model)
    return any(l.type == "Dropout" for l in p.layer) or any(l.type == 18 for l in p.layers)  # V1 DROPOUT = 18


def default_mean_for(model: Path) -> Path:
    """The mean a pipeline work folder pairs with a model: WORK/DB_train_w32_1.binaryproto."""
    name = artefacts.mean(1)
    for cand in (Path(model).parent.parent / name, Path(model).parent / name):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{model}: no mean given and no {name} beside its work folder; pass --ours-mean")


def candidates(released_dir: Path, ours: list[Path], ours_means: list[Path], ours_variant: str) -> list[Candidate]:
    """The four released IDC models (from ``released_dir``, flat or in uc6-idc/) and the user's."""
    rd = Path(released_dir)
    if (rd / "uc6-idc").is_dir():
        rd = rd / "uc6-idc"
    out = []
    for r in IDC_MODELS:
        model, mean = rd / r.model, rd / r.mean
        for f in (model, mean):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: released file missing (python -m pipeline fetch-released --usecase idc)")
        out.append(Candidate(f"released {r.name}", model, mean, r.variant, r.dropout, True))
    for i, m in enumerate(ours):
        mean = ours_means[i] if i < len(ours_means) else default_mean_for(m)
        out.append(Candidate(f"ours {Path(m).name}", Path(m), Path(mean), ours_variant, has_dropout(m), False))
    return out


def run(
    released_dir: Path,
    data_root: Path,
    out_dir: Path,
    ours: list[Path] | None = None,
    ours_means: list[Path] | None = None,
    ours_variant: str = "crop",
    patients: list[str] | None = None,
    gpu: bool = False,
    figures: tuple[Figure, ...] = (),
    show_progress: bool = True,
) -> dict:
    """Evaluate every candidate on the same patients; write ``regress.json`` and ``regress.md``.

    ``figures``: the published figures; each released model's row shows the F-score of its variant.
    """
    out_dir = Path(out_dir)
    cands = candidates(released_dir, list(ours or []), list(ours_means or []), ours_variant)
    patch_sets: dict[str, evaluation.PatchSet] = {}
    results: dict[str, dict] = {}
    probs: dict[str, np.ndarray] = {}
    for c in cands:
        if c.variant not in patch_sets:
            patch_sets[c.variant] = evaluation.from_patients(
                data_root, c.variant, patients, show_progress=show_progress
            )
        ps = patch_sets[c.variant]
        clf = PatchClassifier(c.model, c.mean, dropout=c.dropout, gpu=gpu, net_dir=out_dir)
        p = evaluation.classify(clf, ps)
        res = evaluation.summarize(ps, p)
        slug = c.name.replace(" ", "_")
        evaluation.write_outputs(ps, p, res, out_dir / f"{slug}.json")
        results[c.name], probs[c.name] = res, p
        log.info("%s (%s): F %s", c.name, c.variant, res["overall"]["f_score"])
    rows = []
    for c in cands:
        ref = f"released {RELEASED_FOR_VARIANT[c.variant]}"
        o = results[c.name]["overall"]
        same = float(np.mean(probs[c.name].argmax(1) == probs[ref].argmax(1)))
        dp = float(np.mean(np.abs(probs[c.name][:, 1] - probs[ref][:, 1])))
        pub = (
            next((f.value for f in figures if f.metric == "f_score" and f.variant == c.variant), None)
            if c.released
            else None
        )
        rows.append(
            {
                "model": c.name,
                "variant": c.variant + (" +dropout" if c.dropout else ""),
                **{k: o[k] for k in ("tp", "fp", "fn", "tn", "n", "f_score", "balanced_accuracy", "accuracy")},
                "agreement_with": ref,
                "same_class": same,
                "mean_abs_dp": dp,
                "published_f_score": pub,
            }
        )
    report = {"data": str(data_root), "patients": sorted(set(next(iter(patch_sets.values())).patients)), "rows": rows}
    atomic.write_text(out_dir / "regress.json", json.dumps(report, indent=1))
    atomic.write_text(out_dir / "regress.md", markdown(report))
    return report


def markdown(report: dict) -> str:
    """The regression table."""
    header = (
        "model | variant | tp | fp | fn | tn | F-score | balanced acc. | accuracy | agreement with | same class | "
        "mean abs dP | published F"
    )
    rows = [
        [r["model"], r["variant"], r["tp"], r["fp"], r["fn"], r["tn"]]
        + [fixed(r["f_score"]), fixed(r["balanced_accuracy"]), fixed(r["accuracy"]), r["agreement_with"]]
        + [fixed(r["same_class"]), fixed(r["mean_abs_dp"], 5), fixed(r["published_f_score"])]
        for r in report["rows"]
    ]
    return document(
        f"Patients: {', '.join(report['patients'])} ({report['data']})", pipe_table(header.split(" | "), rows)
    )
