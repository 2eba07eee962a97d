"""Use case 4's report pictures: hits, misses and false alarms on test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference
from pipeline.detection import to_original_scale
from pipeline.report import Picture
from pipeline.usecases.lymphocyte.scores import MATCH_RADIUS, map_peaks, match_pairs, true_centres


def sort_centres(peaks: np.ndarray, truth: np.ndarray, scale: float, radius: float) -> dict[str, np.ndarray]:
    """Detections ``peaks`` (at the output scale) and true centres (original scale), both (N, 2)
    row, col, sorted as scoring matches them (:func:`match_pairs` at the original scale, the peaks
    mapped back by :func:`to_original_scale`), returned at the output scale (the truth mapped
    forward by the resize's pixel mapping, x = (u + 0.5) scale - 0.5): "truth_matched",
    "truth_missed", "pred_matched", "pred_false"."""
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    pairs = match_pairs(to_original_scale(peaks, scale), truth, radius)
    pi, ti = {i for i, _ in pairs}, {j for _, j in pairs}
    shown = (truth + 0.5) * scale - 0.5
    return {
        "truth_matched": shown[sorted(ti)],
        "truth_missed": shown[[j for j in range(len(truth)) if j not in ti]],
        "pred_matched": peaks[sorted(pi)],
        "pred_false": peaks[[i for i in range(len(peaks)) if i not in pi]],
    }


def image_centres(
    out_dir: Path, image: Path, scale: float, radius: float, source: str = "png"
) -> dict[str, np.ndarray]:
    """:func:`sort_centres` of an image's step-5 peaks, found as the scores find them
    (:func:`map_peaks`), and its annotation."""
    return sort_centres(map_peaks(out_dir, image, source), true_centres(image), scale, radius)


def report_pictures(work: Path, scores: dict, data_dir: Path, scale: float, pictures: Path) -> list[Picture]:
    """Per fold, the test images of best, median and worst detection F: true and detected centres
    (matched, missed, false) over the image at the scale step 5 saw it."""
    from pipeline.report.pictures import centres, describe, pick_examples

    radius = scores.get("match_radius", MATCH_RADIUS)
    source = scores.get("score_from", "png")  # the maps the scores read: the pictures read them too
    suffix = "npy" if source == "npy" else "png"
    pics = []
    for f in scores["folds"]:
        k, out = f["fold"], Path(work) / "output" / str(f["fold"])
        per = {im["image"]: im for im in f["images"]}
        have = [
            (n, im["f_score"])
            for n, im in per.items()
            if (out / f"{Path(n).stem}_prob.{suffix}").is_file() and (data_dir / n).is_file()
        ]
        for label, name in pick_examples(have):
            s = per[name]
            c = image_centres(out, data_dir / name, scale, radius, source)
            fs = "–" if s["f_score"] is None else f"{s['f_score']:.3f}"
            title = f"Fold {k}, {describe(label, len(have))}: {name}\nF {fs} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"
            file = f"lymphocyte_fold{k}_{label}_{Path(name).stem}.png"
            centres(
                inference.load_resized(data_dir / name, scale),
                c["truth_matched"],
                c["truth_missed"],
                c["pred_matched"],
                c["pred_false"],
                title,
                pictures / file,
            )
            pics.append(Picture(file, title.replace("\n", ", ") + "."))
    return pics
