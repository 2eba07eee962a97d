"""Use case 1's scores: per-nucleus grading of the thresholded probability maps, per fold and pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference, nuclei, nuclei_grading
from pipeline.matlab import imfill_holes
from pipeline.report.mdtable import document, fixed, pipe_table


def segmentation(prob: np.ndarray, threshold: float) -> np.ndarray:
    """``P(class 1) > threshold`` with holes filled (the final step of RADHicaL's get_masks)."""
    return imfill_holes(prob[:, :, 1] > threshold)


def score_fold(out_dir: Path, k: int, test: list[Path], threshold: float) -> dict:
    """Per-nucleus scores of fold k's test images (from their float maps, WORK/output/<k>/*.npy).

    Maps computed with a stride (the folder's record, ``.outputs.json``) are first filled from their
    computed pixels as ``--all-pixels`` fills them: the never-computed zeros would otherwise be
    segmented as background, cutting every nucleus into dots."""
    grades, per_image = [], []
    record = inference.read_record(Path(out_dir))
    for img in test:
        prob = record.filled(np.load(Path(out_dir) / f"{img.stem}_prob.npy"))
        g = nuclei_grading.grade_single_image(
            nuclei.read_mask(nuclei.mask_path(img)).values, segmentation(prob, threshold)
        )
        grades.append(g)
        per_image.append({"image": img.name, **nuclei_grading.image_scores(g)})
    return {
        "fold": k,
        "threshold": threshold,
        "scores": nuclei_grading.summarize(grades),
        "images": per_image,
        "grades": grades,
    }


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled per-nucleus scores beside the recalled published F-score."""
    rows = [
        [f["fold"], c["images"], c["nuclei"], *(fixed(c[k]) for k in ("detection_rate", "f_score", "tpr", "ppv"))]
        for f in s["folds"] + [{"fold": "pooled", "scores": s["pooled"]}]
        for c in [f["scores"]]
    ]
    rows += [
        [f"published ({fig['source']}, unchecked: {fig['note']})", "", "", "", fixed(fig["value"]), "", ""]
        for fig in s["published"]
    ]
    return document(
        "### Use case 1 (nuclei), per annotated nucleus",
        f"P(nucleus) > {s['threshold']:g}, holes filled, graded as grade_single_image.m (mean per image, "
        "nanmean over images).",
        pipe_table(["fold", "images", "nuclei", "detection rate", "F-score", "TPR", "PPV"], rows),
    )
