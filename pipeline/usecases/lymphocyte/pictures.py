"""Use case 4's report pictures: hits, misses and false alarms on test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference
from pipeline.detection import sort_centres
from pipeline.report import Picture
from pipeline.report.pictures import describe, detection_example, pick_examples
from pipeline.usecases.lymphocyte.scores import MATCH_RADIUS, map_peaks, true_centres


def image_centres(
    out_dir: Path, image: Path, scale: float, radius: float, source: str = "png"
) -> dict[str, np.ndarray]:
    """:func:`sort_centres` of an image's step-5 peaks, found as the scores find them
    (:func:`map_peaks`), and its annotation."""
    return sort_centres(map_peaks(out_dir, image, source), true_centres(image), scale, radius)


def report_pictures(work: Path, scores: dict, data_dir: Path, scale: float, pictures: Path) -> list[Picture]:
    """Per fold, the test images of best, median and worst detection F: true and detected centres
    (matched, missed, false) over the image at the scale step 5 saw it."""
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
            pics.append(
                detection_example(
                    inference.load_resized(data_dir / name, scale),
                    image_centres(out, data_dir / name, scale, radius, source),
                    per[name],
                    f"Fold {k}, {describe(label, len(have))}: {name}",
                    pictures / f"lymphocyte_fold{k}_{label}_{Path(name).stem}.png",
                )
            )
    return pics
