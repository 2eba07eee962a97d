"""Use case 2's report pictures: outlines of truth and prediction on test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import inference, metrics
from pipeline.report import Cell, Picture, Row
from pipeline.report.mdtable import fixed
from pipeline.report.pictures import describe, outlines, pick_examples
from pipeline.usecases.epi.scores import score_maps, truth_mask


def report_pictures(
    work: Path, scores: dict, data_dir: Path, factor: float, pictures: Path
) -> tuple[list[Picture], list[Row]]:
    """Per fold, the test images of best, median and worst F (class map): truth and predicted
    outlines over the image as step 5 saw it, P(epithelium) beside; and every test image's scores."""
    pics, rows = [], []
    for f in scores["folds"]:
        k, out = f["fold"], Path(work) / "output" / str(f["fold"])
        scored = []
        for name in f["test_images"]:
            if not (out / f"{Path(name).stem}_prob.npy").is_file() or not (data_dir / name).is_file():
                continue
            _, classes, truths = score_maps(out, [data_dir / name], factor, source="npy")
            s = metrics.pixel_scores(classes[0], truths[0])
            scored.append((name, s["f_score"]))
            rows.append(
                Row(
                    name,
                    {
                        "fold": Cell(k),
                        **{c: Cell(s[key]) for c, key in (("f", "f_score"), ("p", "precision"), ("r", "recall"))},
                    },
                )
            )
        for label, name in pick_examples(scored):
            img_path = data_dir / name
            prob = inference.read_record(out).filled(np.load(out / f"{img_path.stem}_prob.npy"))
            image = inference.load_resized(img_path, factor)
            truth = truth_mask(img_path, factor)
            h, w = (min(a.shape[0] for a in (prob, image, truth)), min(a.shape[1] for a in (prob, image, truth)))
            fs = fixed(dict(scored)[name], 3)
            title = f"Fold {k}, {describe(label, len(scored))}: {name}, F {fs}"
            file = f"epi_fold{k}_{label}_{img_path.stem}.png"
            outlines(
                image[:h, :w],
                truth[:h, :w],
                prob[:h, :w].argmax(2) == 1,
                prob[:h, :w, 1],
                title,
                pictures / file,
                prob_label="P(epithelium)",
            )
            pics.append(Picture(file, title + "."))
    return pics, rows
