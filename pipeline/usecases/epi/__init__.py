"""Use case 2, epithelium segmentation: patches (MATLAB step 1 ported), pixel scores, demo cohort.

Input: <patient>_<n>.tif with <patient>_<n>_mask.png (white = epithelium), 1000x1000 at 20x.
Per image (2-epi/step1_make_patches.m, common/func_extraction_worker_w_rots.m):

- image and mask ``imresize(., .5)`` (10x apparent magnification), padded 32 px symmetric;
- background: ``im2double(rgb2gray(io)) > .8``; positive: mask and not background;
  stroma: not (positive dilated 3 times, 3x3) and not background;
  edge: mask dilated 2 times minus the mask;
- centres, selection, rotations (0, 90) and names: :mod:`pipeline.sampling`; up to 5000
  positives, edge ``npos * 1``, stroma ``npos * 0.3``; type p (positive, class 1), e (edge, class
  0), b (stroma/background, class 0); image# is the 1-based index among the patient's images.

Scores (invented here: the original's step 6 was a visual check): pixel-level F-score, precision and
recall of the class maps against the masks (resized like the images), over the pixels the original
computes, per fold and pooled; and of ``P >= threshold`` with the threshold maximising F on the
validation images (the next fold's patients, on the training side of fold k; their maps are written
to WORK/validation/<k>/, apart from the test maps). By default both read the PNGs the original
wrote (``_class.png``; ``_prob.png`` green / 255, min-max scaled), so the threshold applies to the
values the tutorial's "use this threshold on the _prob image" meant; ``--score-from npy`` reads the
float maps.

Modules: ``patches``, ``scores``, ``pictures``, ``cohort`` (re-exported here).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline import metrics
from pipeline.artefacts import validation_dir
from pipeline.export import Spec
from pipeline.report import Column, Row, Section, Table
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure
from pipeline.usecases.epi.cohort import make_cohort  # noqa: F401
from pipeline.usecases.epi.patches import (  # noqa: F401
    ROTATIONS,
    BadPair,
    Params,
    class_masks,
    images_by_patient,
    load_pair,
    mask_path,
    read_mask,
    run_patches,
)
from pipeline.usecases.epi.pictures import report_pictures  # noqa: F401
from pipeline.usecases.epi.scores import (  # noqa: F401
    HEADLINE,
    headline_cells,
    score_fold,
    score_maps,
    scores_markdown,
    truth_mask,
)

log = logging.getLogger(__name__)


class Epithelium(CrossValidatedUseCase):
    """Use case 2: epithelium segmentation in ER+ breast cancer H&E, 5 patient folds."""

    name = "epi"
    number = 2
    title = "epithelium segmentation (pixel level)"
    command = "usecase2"
    demo_command = "demo-epi"
    magnification = Params.resize
    source_objective = 20.0  # tutorial: "42 ER+ BCa images scanned at 20x" (model at 10x)
    archives = (datasets.EPI,)
    reads = (datasets.EPI_SIDE_BY_SIDE,)  # masks beside the images, as the MATLAB read them
    released_folder = "uc2-epi"
    published = (Figure("f_score", 0.84, "recalled", "pixel level, JPI 2016"),)
    validation = True
    export = Spec("segmentation", "Epithelium", (200, 0, 0), "annotation")
    max_positive = 5000
    demo_max_positive = 150

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(max_positive=args.max_positive)

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return score_fold(out_dir, k, test, val, cfg.params.resize, validation_dir(cfg.work, k), cfg.score_from)

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        pooled = {
            key: metrics.scores({m: sum(f[key][m] for f in fold_scores) for m in ("tp", "fp", "fn", "tn")})
            for key in ("class_map", "thresholded")
        }
        return {
            "folds": fold_scores,
            "pooled": pooled,
            "score_from": cfg.score_from,
            "published_f_recalled": self.figures("f_score")[0].value,
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def report_headline(self, scores: dict) -> Table:
        rows = [
            Row(f"fold {f['fold']}", headline_cells(scores, "folds", i), note=f"{len(f['test_images'])} test image(s)")
            for i, f in enumerate(scores["folds"])
        ]
        rows.append(Row("pooled", headline_cells(scores, "pooled"), kind="pooled", note="all folds' test pixels"))
        return Table(
            HEADLINE,
            rows + self.published_rows({"f_score": "cm_f"}),
            corner="",
            caption="Pixel level, over the pixels the original computes. Class map: argmax of the "
            "probability map. P ≥ threshold: the threshold maximising F on validation images "
            "(the next fold's patients, seen in training: optimistic).",
        )

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Outlines on test images", text=f"{data_dir}: the input images are gone; no pictures.")]
        pics, rows = report_pictures(work, scores, data_dir, Params.resize, pictures)
        cols = [
            Column("fold", "fold", 0),
            Column("f", "F (class map)"),
            Column("p", "precision"),
            Column("r", "recall"),
        ]
        return [
            Section(
                "Outlines on test images",
                pictures=pics,
                text=(
                    "For each fold, the test images with the best, median and worst pixel F-score of the class map. "
                    "Left: the ground-truth epithelium (solid green) and the predicted class map (dashed yellow) "
                    f"outlined over the image resized ×{Params.resize:g}, as the model saw it. Right: the predicted "
                    "probability of epithelium."
                ),
            ),
            Section(
                "Test images",
                tables=[
                    Table(
                        cols,
                        rows,
                        corner="image",
                        caption=(
                            "Each test image's pixel scores of the class map, computed for this report from the saved "
                            "probability maps over the same pixels as the table above."
                        ),
                    )
                ],
            ),
        ]

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("*_mask.png")):
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic epithelium images), not real tissue", folder)
        return Path(folder)
