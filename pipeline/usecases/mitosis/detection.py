"""Use case 5: detections from the stage-2 probability maps, matched to the annotated mitoses.

The original ships no detection or scoring code for mitosis (``DL tutorial Code/5-mitosis`` ends at
step 6; the paper reports F 0.53 over 550 mitoses). Everything here is this project's INVENTION,
chosen from the paper's description and the AMIDA13 challenge the data set matches:

- peaks: use case 4's rule (step5_identify_peak_in_probs.m) on the step-5 ``_prob.png`` of the
  stage-2 model at the 0.5x scale: P(mitosis) = green / 255, correlated with ``fspecial('disk',
  3)`` after symmetric padding 16, greedy maxima above 0.5, a radius of 15 px (7.5 um at 0.5x of
  a 40x, 0.25 um/px frame) cleared around each;
- true mitoses: the centroids of the 8-connected components of ``_pc.png`` at the 40x scale;
- a detection (mapped back to 40x, (x + 0.5) / 0.5 - 0.5) matches a true mitosis within 30 px
  (7.5 um, AMIDA13's radius), one to one (Hungarian: most matches, then least distance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference, metrics
from pipeline.detection import detect_peaks, match_detections, sort_centres, to_original_scale
from pipeline.matlab import bwlabel
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.report.pictures import describe, detection_example, pick_examples
from pipeline.usecases.mitosis.sampling import SCALE, companions, read_mask

PEAK_DISK = 3  #: fspecial('disk', 3) at the 0.5x scale (invented)
PEAK_THRESHOLD = 0.5  #: maxima above 0.5 of green / 255 (invented)
PEAK_CLEAR_RADIUS = 15.0  #: px at 0.5x: 7.5 um (invented)
MATCH_RADIUS = 30.0  #: px at 40x: 7.5 um, AMIDA13's rule (invented here)
PUBLISHED_F = 0.53  #: J Pathol Inform 2016;7:29, abstract


def true_centres(image: Path) -> np.ndarray:
    """(N, 2) 0-based (row, col) centroids of the 8-connected components of the frame's
    ``_pc.png`` (40x scale); empty when there is none."""
    pc = companions(Path(image))[0]
    if not pc.is_file():
        return np.zeros((0, 2))
    lab, n = bwlabel(read_mask(pc) != 0, 8)
    return np.array([np.argwhere(lab == i).mean(axis=0) for i in range(1, n + 1)], dtype=np.float64).reshape(-1, 2)


def peaks(
    prob_green: np.ndarray, threshold: float = PEAK_THRESHOLD, clear: float = PEAK_CLEAR_RADIUS, disk: int = PEAK_DISK
) -> np.ndarray:
    """(N, 2) 0-based (row, col) detections of a P(mitosis) map in [0, 1] at the 0.5x scale."""
    return np.array(detect_peaks(prob_green, threshold, clear, disk), dtype=np.float64).reshape(-1, 2)


def default_scoring() -> dict:
    """The scoring options of the command line's defaults (a run's ``Config.scoring``): peak threshold,
    disk and clear radius (0.5x), match radius (40x)."""
    return {
        "peak_threshold": PEAK_THRESHOLD,
        "peak_disk": PEAK_DISK,
        "peak_clear_radius": PEAK_CLEAR_RADIUS,
        "match_radius": MATCH_RADIUS,
    }


def peak_options(scoring: dict) -> dict:
    """:func:`peaks`' keyword arguments from the scoring options (``peak_threshold``,
    ``peak_clear_radius``, ``peak_disk``: the command line's and the scores JSON's names)."""
    return {"threshold": scoring["peak_threshold"], "clear": scoring["peak_clear_radius"], "disk": scoring["peak_disk"]}


def map_peaks(out_dir: Path, image: Path, source: str = "png", **peak_options) -> np.ndarray:
    """Detections of ``image``'s step-5 map in ``out_dir`` (0.5x scale): the _prob.png green / 255,
    or the float map (``source`` "npy")."""
    green, _ = inference.read_maps(Path(out_dir), Path(image).stem, source)
    return peaks(green, **peak_options)


def score_images(
    out_dir: Path,
    images: list[Path],
    scale: float = SCALE,
    radius: float = MATCH_RADIUS,
    source: str = "png",
    **peak_options,
) -> dict:
    """Detection counts of ``images`` (tp, fp, fn, precision, recall, F), pooled and per image."""
    per_image, tot = [], {"tp": 0, "fp": 0, "fn": 0}
    for img in images:
        pred = to_original_scale(map_peaks(out_dir, img, source, **peak_options), scale)
        s = match_detections(pred, true_centres(img), radius)
        per_image.append({"image": Path(img).name, **s})
        for key in tot:
            tot[key] += s[key]
    pooled = metrics.scores({**tot, "tn": 0})
    return {"detection": {**tot, **{m: pooled[m] for m in ("precision", "recall", "f_score")}}, "images": per_image}


def pool(fold_scores: list[dict], options: dict) -> dict:
    """The scores JSON: per fold, pooled over folds, the rule's options and the published F."""
    c = {m: sum(f["detection"][m] for f in fold_scores) for m in ("tp", "fp", "fn")}
    pooled = metrics.scores({**c, "tn": 0})
    return {
        "folds": fold_scores,
        "pooled": {**c, **{m: pooled[m] for m in ("precision", "recall", "f_score")}},
        **options,
        "published_f": PUBLISHED_F,
    }


def rule_text(s: dict) -> str:
    """The detection and matching rule of a scores JSON, in words (marked invented)."""
    return (
        f"Detection and matching are this project's (INVENTED: the original has no mitosis scoring code): peaks of "
        f"the stage-2 P(mitosis) ({'_prob.png green / 255' if s.get('score_from', 'png') == 'png' else 'float maps'}, "
        f"0.5x) smoothed by a disk of radius {s['peak_disk']}, maxima above {s['peak_threshold']}, "
        f"{s['peak_clear_radius']:g} px cleared around each; mapped to 40x and matched one to one to the "
        f"centroids of the _pc.png components within {s['match_radius']:g} px (7.5 um at 0.25 um/px)."
    )


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled detection scores beside the published F-score."""
    rows = [
        [label, d["tp"], d["fp"], d["fn"], *(fixed(d[k]) for k in ("precision", "recall", "f_score"))]
        for label, d in [(f["fold"], f["detection"]) for f in s["folds"]] + [("pooled", s["pooled"])]
    ]
    rows.append(
        ["published (paper, 550 mitoses, its own matching rule)", "", "", "", "", "", fixed(s["published_f"], 2)]
    )
    return document(
        "### Use case 5 (mitosis), detection",
        rule_text(s),
        pipe_table(["fold", "tp", "fp", "fn", "precision", "recall", "F-score"], rows),
    )


def report_pictures(work: Path, scores: dict, data_dir: Path, pictures: Path, scale: float = SCALE) -> list:
    """Per fold, the test frames of best, median and worst F: hits, misses and false alarms drawn
    on the frame as step 5 saw it (0.5x)."""
    renamed = peak_options(scores)
    source = scores.get("score_from", "png")
    pics = []
    for f in scores["folds"]:
        k, out = f["fold"], Path(work) / "output" / str(f["fold"])
        per = {im["image"]: im for im in f["images"]}
        have = [(n, im["f_score"]) for n, im in per.items() if (data_dir / n).is_file()]
        for label, name in pick_examples(have):
            found = sort_centres(
                map_peaks(out, data_dir / name, source, **renamed),
                true_centres(data_dir / name),
                scale,
                scores["match_radius"],
            )
            pics.append(
                detection_example(
                    inference.load_resized(data_dir / name, scale),
                    found,
                    per[name],
                    f"Fold {k}, {describe(label, len(have), 'test frame')}: {name}",
                    pictures / f"mitosis_fold{k}_{label}_{Path(name).stem}.png",
                )
            )
    return pics
