"""Use case 4's detection scores: step5_identify_peak_in_probs.m's peaks on the probability map,
one-to-one matching to the annotated centres, per fold and pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import detection, inference, metrics
from pipeline.detection import to_original_scale
from pipeline.matlab import fspecial_disk
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.lymphocyte.patches import mask_path_for

PEAK_THRESHOLD = 0.7706


PEAK_CLEAR_RADIUS = 28


DISK_RADIUS = 6


#: Default radius (pixels at the original 20x scale) within which a detection matches a true centre:
#: about one lymphocyte radius (lymphocytes are about 10 px across at 20x).
MATCH_RADIUS = 6.0


def disk_kernel(radius: int = DISK_RADIUS) -> np.ndarray:
    """``fspecial('disk', radius)`` of step5_identify_peak_in_probs.m line 7 (exact MATLAB algorithm)."""
    return fspecial_disk(radius)


def detect_peaks(
    prob_green: np.ndarray,
    threshold: float = PEAK_THRESHOLD,
    clear_radius: float = PEAK_CLEAR_RADIUS,
    radius: int = DISK_RADIUS,
) -> list[tuple[int, int]]:
    """Lymphocyte centres (0-based row, col) of a P(lymphocyte) map in [0, 1] (by default the
    _prob.png green channel / 255): ``imfilter`` with the disk after symmetric padding 16 (a
    correlation, zero outside the padded image), greedy maxima above ``threshold``,
    ``clear_radius`` cleared around each (step5_identify_peak_in_probs.m; :func:`pipeline.detection.detect_peaks`)."""
    return detection.detect_peaks(prob_green, threshold, clear_radius, radius)


def match_pairs(pred: np.ndarray, truth: np.ndarray, radius: float = MATCH_RADIUS) -> list[tuple[int, int]]:
    """:func:`pipeline.detection.match_pairs` at use case 4's radius by default."""
    return detection.match_pairs(pred, truth, radius)


def match_detections(pred: np.ndarray, truth: np.ndarray, radius: float = MATCH_RADIUS) -> dict:
    """:func:`pipeline.detection.match_detections` at use case 4's radius by default."""
    return detection.match_detections(pred, truth, radius)


def true_centres(image: Path) -> np.ndarray:
    """Annotated centres (0-based row, col, original scale): non-zero pixels of the mask's alpha channel."""
    from PIL import Image

    with Image.open(mask_path_for(image)) as im:
        alpha = np.asarray(im)[:, :, -1]
    return np.argwhere(alpha > 0)


def peak_map(out_dir: Path, stem: str, source: str = "png") -> np.ndarray:
    """The P(lymphocyte) map peaks are found on, at the 4x scale: the _prob.png green channel / 255
    (``source`` "png", the original) or the float map ("npy").

    Maps computed with a stride (the folder's record, ``.outputs.json``) are first filled from their
    computed pixels as ``--all-pixels`` fills them: the disk filter would otherwise average the
    never-computed zeros in as probabilities 0."""
    green, _ = inference.read_maps(Path(out_dir), stem, source)
    return inference.read_record(Path(out_dir)).filled(green)


def map_peaks(out_dir: Path, image: Path, source: str = "png") -> np.ndarray:
    """(N, 2) row, col peaks of ``image``'s step-5 P(lymphocyte) map (:func:`peak_map`), at the 4x scale."""
    return np.array(detect_peaks(peak_map(out_dir, Path(image).stem, source)), dtype=np.float64).reshape(-1, 2)


def score_fold(out_dir: Path, k: int, test: list[Path], scale: float, match_radius: float, source: str = "png") -> dict:
    """Detection scores of fold k: peaks of each image's P(lymphocyte) map at the 4x scale (the
    _prob.png green channel / 255 by default, the float map with ``source`` "npy"), mapped back to
    the original scale (:func:`to_original_scale`) and matched to the true centres."""
    per_image, tot = [], {"tp": 0, "fp": 0, "fn": 0}
    for img in test:
        s = match_detections(to_original_scale(map_peaks(out_dir, img, source), scale), true_centres(img), match_radius)
        per_image.append({"image": img.name, **s})
        for key in tot:
            tot[key] += s[key]
    pooled = metrics.scores({**tot, "tn": 0})
    return {
        "fold": k,
        "detection": {
            **tot,
            "precision": pooled["precision"],
            "recall": pooled["recall"],
            "f_score": pooled["f_score"],
        },
        "images": per_image,
    }


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled detection scores beside the recalled published F-score."""
    maps = (
        "the 8-bit min-max scaled _prob.png (green / 255), as the original"
        if s.get("score_from", "png") == "png"
        else "the float probability maps (.npy)"
    )
    rows = [
        [label, d["tp"], d["fp"], d["fn"], *(fixed(d[k]) for k in ("precision", "recall", "f_score"))]
        for label, d in [(f["fold"], f["detection"]) for f in s["folds"]] + [("pooled", s["pooled"])]
    ]
    rows.append(["published (recalled, unchecked)", "", "", "", "", "", fixed(s["published_f_recalled"], 2)])
    return document(
        "### Use case 4 (lymphocytes), detection",
        f"Peaks: disk radius {DISK_RADIUS}, threshold {PEAK_THRESHOLD}, clearing radius {PEAK_CLEAR_RADIUS} (4x "
        f"scale) on {maps}; peaks mapped to the original scale ((x + 0.5) / 4 - 0.5) and matched one to one within "
        f"{s['match_radius']} px.",
        pipe_table(["fold", "tp", "fp", "fn", "precision", "recall", "F-score"], rows),
    )
