"""Use case 4, lymphocyte detection: patches (MATLAB step 1 ported), peak detection and detection scores.

Input (4-lymphocyte/step1_make_patches.m): images ``im<N>.tif`` (100x100 at 20x) and masks
``<N>m.tif`` whose alpha channel marks lymphocyte centres; each image is its own patient.

- image and mask upscaled 4x (MATLAB imresize, bicubic; ``abs`` of the mask), padded 32 symmetric;
- positives: 2000 pixels drawn with replacement with the mask as weights (MATLAB ``datasample``),
  then the border rule, a shuffle and at most 2000 taken (func_extraction_worker_w_rots),
  rotations 0, 90, 180, 270, type "p";
- negatives: a pixel classifier trained on 1000 random pixels (RGB -> mask > 0); its positive calls
  (posterior > .5) outside the mask are ranked by distance to the nearest mask pixel (KD-tree) and
  taken greedily, the largest first, clearing a radius of 5 around each, at most
  round(2000 * 2) = 4000; rotations 0, 90, type "n".
  The code ran ``[class,err,post]=classify(ior,ior(ind,:),io_mask(ind)>0)`` (step1_make_patches.m
  line 67): MATLAB ``classify`` with its defaults, type 'linear' (linear discriminant analysis,
  pooled covariance) and a uniform prior -- the default here (``classifier="lda"``,
  :func:`pipeline.matlab.classify_linear`). The comment on that line and the tutorial say naive
  Bayes: ``classifier="nb"`` (scikit-learn's GaussianNB) is that reading.
- step 5 peaks (step5_identify_peak_in_probs.m): ``double(io(:,:,2))/255`` of the 8-bit _prob.png
  (min-max scaled by scipy.misc.imsave, so the threshold applies to P / max P quantised to 1/255),
  convolved with ``fspecial('disk', 6)`` (symmetric padding 16), maxima above 0.7706 taken
  greedily, clearing a radius of 28 around each (at the 4x scale).
- scores (invented: the original stops at the peak list ``test_vals``, in 4x pixels): peaks mapped
  back to the original image with the inverse of the 4x resize (0-based u = (x + 0.5) / 4 - 0.5),
  matched one to one with the annotated centres.

Modules: ``patches``, ``scores``, ``pictures``, ``cohort`` (re-exported here).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.export import Spec
from pipeline.report import DETECTION_COLUMNS, Section, Table, detection_rows
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure
from pipeline.usecases.lymphocyte.cohort import make_cohort  # noqa: F401
from pipeline.usecases.lymphocyte.patches import (  # noqa: F401
    CLASSIFIERS,
    Params,
    _process,
    images_by_patient,
    mask_path_for,
    negative_centres,
    pixel_posterior,
    read_pair,
    run_patches,
)
from pipeline.usecases.lymphocyte.pictures import image_centres, report_pictures, sort_centres  # noqa: F401
from pipeline.usecases.lymphocyte.scores import (  # noqa: F401
    DISK_RADIUS,
    MATCH_RADIUS,
    PEAK_CLEAR_RADIUS,
    PEAK_THRESHOLD,
    detect_peaks,
    disk_kernel,
    map_peaks,
    match_detections,
    match_pairs,
    peak_map,
    score_fold,
    scores_markdown,
    true_centres,
)

log = logging.getLogger(__name__)


class Lymphocytes(CrossValidatedUseCase):
    """Use case 4: lymphocyte detection in breast cancer H&E; each image its own patient, 5 folds."""

    name = "lymphocyte"
    number = 4
    title = "lymphocyte detection"
    command = "usecase4"
    demo_command = "demo-lymphocyte"
    magnification = Params.scale
    source_objective = 20.0  # tutorial: "scanned at 20x" (the paper says 40x; the author: 20x); model at "80x"
    archives = (datasets.LYMPHOCYTE,)  # its code reads both accepted layouts in place
    released_folder = "uc4-lymphocyte"
    published = (Figure("f_score", 0.90, "recalled", "detection, JPI 2016"),)
    validation = False
    export = Spec("detection", "Lymphocyte", (255, 0, 255), "detection")
    max_positive = 2000
    demo_max_positive = 100
    numeric_options = CrossValidatedUseCase.numeric_options + ("classifier", "match_radius")

    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument(
            "--classifier",
            default="lda",
            choices=list(CLASSIFIERS),
            help="negatives: lda (default: what the original code ran, MATLAB classify's linear "
            "discriminant with a uniform prior) or nb (naive Bayes, as its comment says)",
        )
        parser.add_argument(
            "--match-radius",
            type=float,
            default=MATCH_RADIUS,
            help="detections match true centres within this many pixels (original scale)",
        )

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(n_positive=args.max_positive, classifier=args.classifier)

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        return {"match_radius": args.match_radius}

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return score_fold(
            out_dir, k, test, cfg.params.scale, cfg.scoring.get("match_radius", MATCH_RADIUS), cfg.score_from
        )

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        c = {m: sum(f["detection"][m] for f in fold_scores) for m in ("tp", "fp", "fn")}
        pooled = metrics.scores({**c, "tn": 0})
        return {
            "folds": fold_scores,
            "pooled": {**c, **{m: pooled[m] for m in ("precision", "recall", "f_score")}},
            "match_radius": cfg.scoring.get("match_radius", MATCH_RADIUS),
            "score_from": cfg.score_from,
            "published_f_recalled": self.figures("f_score")[0].value,
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def report_headline(self, scores: dict) -> Table:
        return Table(
            DETECTION_COLUMNS,
            detection_rows(scores, "image") + self.published_rows({"f_score": "f_score"}),
            caption=(
                f"Detection: peaks of P(lymphocyte) (disk radius {DISK_RADIUS}, threshold {PEAK_THRESHOLD}, clearing "
                f"radius {PEAK_CLEAR_RADIUS} at the 4x scale) matched one to one to the annotated centres within "
                f"{scores.get('match_radius', MATCH_RADIUS):g} px at the original scale."
            ),
        )

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        import json

        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Detections on test images", text=f"{data_dir}: the input images are gone; no pictures.")]
        radius = scores.get("match_radius", MATCH_RADIUS)
        return [
            Section(
                "Detections on test images",
                pictures=report_pictures(work, scores, data_dir, Params.scale, pictures),
                text=(
                    "For each fold, the test images with the best, median and worst detection F-score, enlarged "
                    f"×{Params.scale:g} as the model saw them. Green circles: annotated centres with a detection within "
                    f"{radius:g} px (original scale), green plus signs those detections; thick orange circles: annotated "
                    "centres nothing detected (false negatives); magenta crosses: detections matching no centre "
                    "(false positives)."
                ),
            )
        ]

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("i*.tif")):
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic lymphocyte images), not real tissue", folder)
        return Path(folder)

    def export_peaks(self, folder: Path, stem: str, source: str = "png") -> tuple[np.ndarray, np.ndarray]:
        """The peaks the scores find (on the _prob.png as the original, or the float map: ``source``)
        and the map's value at each."""
        green = peak_map(folder, stem, source)
        peaks = np.array(detect_peaks(green), dtype=np.int64).reshape(-1, 2)
        return peaks, green[peaks[:, 0], peaks[:, 1]]
