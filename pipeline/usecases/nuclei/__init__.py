"""Use case 1, nuclei segmentation: patches (MATLAB step 1 ported), per-nucleus scores, released models.

Input: ``<pid>_500_f<id>_original.tif`` (2000 x 2000 at 40x) with ``<pid>_500_f<id>_mask.png``
(incomplete nucleus annotation). Per image (DL tutorial Code/1-nuclei/step1_make_patches.m,
common/func_extraction_worker_w_rots.m), image and mask padded 32 px symmetric (``padarray``), then:

- positives: ``find(mask)`` (class 1, "p"), up to 2500;
- edge: the mask dilated three times with a 3x3 square minus the mask (class 0, "e"), npos x 1;
- background: ``makeNegativeMask(io, 50)`` of the padded image (class 0, "b"), round(npos x 0.3);
  it does not exclude the edge ring (RADHicaL's level 1 does); quirk Q2 of makeNegativeMask
  (``J < .3`` on uint8) applies here too (``--negative-rule corrected`` fixes it);
- centres, border rule, rotations 0 and 90, names ``<pid>_<fi>_<class>_<p|e|b>_<n>_<deg>.png``:
  :mod:`pipeline.sampling`; lists negatives then positives per image (common step 2).

Scores (invented here: the tutorial's step 6 was visual): each test image's ``P(class 1) >
threshold`` (default .5), holes filled, graded per annotated nucleus as RADHicaL's
grade_single_image.m does (F-score, TPR, PPV, detection rate; :mod:`pipeline.nuclei_grading`).

Modules: ``patches``, ``scores``, ``regression`` (re-exported here).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import artefacts, inference, nuclei, nuclei_grading
from pipeline.export import Spec
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure
from pipeline.usecases.nuclei.patches import PAD, ROTATIONS, Params, _process_image, class_masks, load_pair, run_patches  # noqa: F401
from pipeline.usecases.nuclei.regression import patch_set, regress_models  # noqa: F401
from pipeline.usecases.nuclei.scores import score_fold, scores_markdown, segmentation  # noqa: F401

log = logging.getLogger(__name__)


class Nuclei(CrossValidatedUseCase):
    """Use case 1: nuclei segmentation in ER+ breast cancer H&E (40x), 5 patient folds, 2 classes."""

    name = "nuclei"
    number = 1
    title = "nuclei segmentation (pixel level, graded per nucleus)"
    command = "usecase1"
    demo_command = "demo-nuclei"
    magnification = 1.0
    archives = (datasets.NUCLEI,)
    reads = (datasets.NUCLEI_SIDE_BY_SIDE,)
    released_folder = "uc1-nuclei"
    published = (Figure("f_score", 0.83, "recalled", "JPI 2016, use case 1"),)
    validation = False
    export = Spec("segmentation", "Nucleus", (0, 0, 200), "detection")
    max_positive = 2500
    demo_max_positive = 150

    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument(
            "--threshold",
            type=float,
            default=0.5,
            help="segmentation: P(nucleus) > threshold, holes filled (default .5)",
        )
        parser.add_argument(
            "--negative-rule",
            default="faithful",
            choices=nuclei.NEGATIVE_RULES,
            help="Q2: makeNegativeMask's J<.3 on uint8 (faithful: J==0) or on J/255 (corrected)",
        )

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return nuclei.images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(max_positive=args.max_positive, negative_rule=args.negative_rule)

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        if not 0 <= args.threshold <= 1:
            raise ValueError(f"--threshold {args.threshold} is outside [0, 1]")
        return {"threshold": args.threshold}

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return score_fold(out_dir, k, test, cfg.scoring.get("threshold", 0.5))

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        pooled = nuclei_grading.summarize([g for f in fold_scores for g in f.pop("grades")])
        return {
            "folds": fold_scores,
            "pooled": pooled,
            "threshold": cfg.scoring.get("threshold", 0.5),
            "published": [f.__dict__ for f in self.published],
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """The five released fold models (and ``--ours``) on ``--images`` or the images of ``--data``
        (patch and pixel level), plus the map comparison against the released ``--fold`` model."""
        images = inference.expand_inputs(args.images) if args.images else []
        if not images and args.data:
            images = [
                i
                for v in nuclei.images_by_patient(self.prepare_data(args.data, Path(args.out) / "data")).values()
                for i in v
            ]
        if not images:
            raise ValueError("regress --usecase nuclei needs --images or --data (images with their _mask.png)")
        if len(args.ours_mean) != len(args.ours):
            raise ValueError("give one --ours-mean per --ours model")
        rd = Path(released_dir)
        rd = rd / self.released_folder if (rd / self.released_folder).is_dir() else rd
        models = [
            (
                f"released fold {k}",
                artefacts.released_model(rd, k),
                artefacts.released_mean(rd, k),
            )
            for k in range(1, 6)
        ]
        models += [(f"ours {Path(m).name}", Path(m), Path(mm)) for m, mm in zip(args.ours, args.ours_mean)]
        regress_models(models, images, args.out, Params(max_positive=200), args.mode, args.gpu)
        if args.ours:
            args.images = [str(i) for i in images]
            super().regress(args, released_dir)
        return {"table": str(Path(args.out) / "regress_nuclei.md")}

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob(nuclei.MASK_GLOB)):
            nuclei.make_cohort(folder, n_patients=6, size=400, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic nuclei images), not real tissue", folder)
        return Path(folder)
