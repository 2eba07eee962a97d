"""Use case 3, tubule segmentation in colorectal H&E: the registered plug-in.

Step 1 (hard-example mining, :mod:`.sampling`), then the shared patient folds, databases, nets,
training and step 5 (:mod:`pipeline.crossval`) at 0.25, then pixel and object scores (:mod:`.scores`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from pipeline import crossval, inference
from pipeline.export import Spec
from pipeline.imageio import imread_matlab, write_png
from pipeline.matlab import imresize_scale
from pipeline.report import Column, Picture, Row, Section, Table, from_json
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.report.pictures import describe, outlines, pick_examples
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure
from pipeline.usecases.tubule import demo, features, images, lists, regress, sampling, scores

log = logging.getLogger(__name__)

HEADLINE = [
    Column(f"{lvl}_{k}", label, 0 if k in ("tp", "fp", "fn") else 4, group=group)
    for lvl, group in (("pixel", "pixel level"), ("object", "object level (per tubule, invented)"))
    for k, label in (
        ("tp", "tp"),
        ("fp", "fp"),
        ("fn", "fn"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f_score", "F-score"),
    )
]


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled pixel and object scores beside the published F-score."""

    def row(label: object, e: dict) -> list:
        return [label] + [
            fixed(e[level][k]) if k in ("precision", "recall", "f_score") else e[level][k]
            for level in ("pixel", "object")
            for k in ("tp", "fp", "fn", "precision", "recall", "f_score")
        ]

    rows = [row(f["fold"], f) for f in s["folds"]] + [row("pooled", s["pooled"])]
    rows.append(["published (paper, level not stated)", "", "", "", "", "", fixed(s["published_f"], 2)] + [""] * 6)
    header = "fold | pixel tp | fp | fn | precision | recall | F | tubules tp | fp | fn | precision | recall | F"
    return document(
        "### Use case 3 (tubules): pixel and object level",
        f"Class maps (argmax) of step 5 at 0.25 ({s.get('step5_resize', 'caffe.io bilinear')}) against the "
        "annotations resized as step 1 (nearest). "
        "Object level is invented here: 8-connected components matched one to one when they overlap by more "
        "than half of each. The paper's F 0.83 does not say which level it is.",
        pipe_table(header.split(" | "), rows),
    )


STEP5_INPUTS = "step5_inputs"


def step5_input(image: Path, folder: Path, factor: float = 0.25) -> Path:
    """``folder/<id>.png``: the image resized as step 1 resizes it (MATLAB nearest, ceil sizes), for
    step 5 with ``--match-training-resize``; written (atomically) when missing."""
    out = Path(folder) / f"{image.stem}.png"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        io = imread_matlab(image)
        io = np.repeat(io[..., None], 3, axis=2) if io.ndim == 2 else io[..., :3]
        write_png(out, imresize_scale(io, factor, method="nearest"))
    return out


class Tubule(CrossValidatedUseCase):
    """Use case 3: tubule segmentation in colorectal H&E (40x, 775x522), 5 folds over image groups."""

    name = "tubule"
    number = 3
    title = "tubule segmentation (hard-negative mining; pixel and per-tubule scores)"
    command = "usecase3"
    demo_command = "demo-tubule"
    magnification = sampling.Params.resize
    source_objective = 40.0  # tutorial: "85 images ... 775x522 at 40x"; the model sees 10x
    archives = (datasets.TUBULE,)
    released_folder = "uc3-tubule"
    export = Spec("segmentation", "Tubule", (0, 120, 200), "annotation")
    published = (Figure("f_score", 0.83, "paper", "F-score from 795 tubules, JPI 2016 abstract"),)
    validation = False
    max_positive = 2000
    demo_max_positive = 60
    numeric_options = CrossValidatedUseCase.numeric_options + (
        "limit_benign",
        "classifier",
        "classifier_pixels",
        "literal_ilf",
        "legacy_list_parse",
        "group",
        "match_training_resize",
    )
    _grouping = "name"
    #: With ``--match-training-resize``: the folder of the nearest-resized step-5 inputs (then
    #: :attr:`magnification` is 1 for this run: the inputs are already at 0.25).
    _step5_dir: Path | None = None

    # ------------------------------------------------------------------ options
    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument(
            "--limit-benign",
            type=int,
            default=None,
            help="hard-positive centres per benign image (default: half of --max-positive, the malignant "
            "images' limit; published 1000 and 2000)",
        )
        parser.add_argument(
            "--classifier",
            default="lda",
            choices=list(features.CLASSIFIERS),
            help="pixel classifier of the mining: lda (default: what the code ran, MATLAB classify's linear "
            "discriminant, pooled covariance, equal priors) or nb (naive Bayes, as the tutorial says)",
        )
        parser.add_argument(
            "--classifier-pixels",
            default="padded",
            choices=list(features.CLASSIFIER_PIXELS),
            help="where the 12,000 training pixels are drawn: padded (default, the original: the mirrored pad "
            "included) or image (the unpadded image only)",
        )
        parser.add_argument(
            "--literal-ilf",
            action="store_true",
            help="reproduce the shipped step 1's misspelt variable (ilf for ilfo): every image is skipped with "
            "MATLAB's \"Undefined function or variable 'ilf'.\" and nothing is trained",
        )
        parser.add_argument(
            "--legacy-list-parse",
            action="store_true",
            help="read the lists as convert_imageset did before 2016-04-27: a name with a space ends the list "
            "(default: the pinned Caffe, which splits at the last space and keeps them)",
        )
        parser.add_argument(
            "--group",
            default="name",
            choices=list(images.GROUPINGS),
            help="folds over name(1:end-11) groups (default, the original: blocks of one case apart) or over "
            "cases (first two dash fields)",
        )
        parser.add_argument(
            "--match-training-resize",
            action="store_true",
            help="step 5 sees the images resized as step 1 did (nearest, ceil sizes) instead of the template's "
            "caffe.io bilinear resize (floor sizes), the original's",
        )
        parser.add_argument("--benign", default="", help="benign.txt (default: beside the data, else data/released)")
        parser.add_argument("--malignant", default="", help="malignant.txt (default: as --benign)")

    def params_from_args(self, args: argparse.Namespace) -> sampling.Params:
        self._grouping = args.group
        mp = args.max_positive
        return sampling.Params(
            limit_malignant=mp,
            limit_benign=args.limit_benign if args.limit_benign is not None else int(np.floor(mp / 2 + 0.5)),
            classifier=args.classifier,
            classifier_pixels=args.classifier_pixels,
            literal_ilf=args.literal_ilf,
            legacy_list_parse=args.legacy_list_parse,
            grouping=args.group,
            benign_list=str(args.benign or ""),
            malignant_list=str(args.malignant or ""),
        )

    # ------------------------------------------------------------------ stages
    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        """Step 5's images per group: the data's ``<id>.bmp``, or with ``--match-training-resize``
        their nearest 0.25 copies (``WORK/step5_inputs/<id>.png``, written when missing)."""
        groups = images.images_by_group(folder, self._grouping)
        if self._step5_dir is None:
            return {g: [images.image_of(a) for a in v] for g, v in groups.items()}
        return {g: [step5_input(images.image_of(a), self._step5_dir) for a in v] for g, v in groups.items()}

    def sample_patches(self, cfg) -> dict:
        return sampling.run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        """As every cross-validated use case; with ``--legacy-list-parse`` the fold lists are cut
        where the old convert_imageset stopped before the databases are built; with
        ``--match-training-resize`` step 5 reads nearest-resized copies at magnification 1."""
        match = getattr(args, "match_training_resize", False)
        self._step5_dir = Path(args.work) / STEP5_INPUTS if match else None
        self.magnification = 1.0 if match else sampling.Params.resize
        if not args.legacy_list_parse:
            return super().run(args, stages, demo)
        upto = crossval.STAGES.index("folds")
        first = tuple(s for s in stages if crossval.STAGES.index(s) <= upto)
        if first:
            super().run(args, first, demo)
        if (Path(args.work) / "lists").is_dir():
            lists.apply_legacy_parse(Path(args.work) / "lists")
        rest = tuple(s for s in stages if crossval.STAGES.index(s) > upto)
        return super().run(args, rest, demo) if rest else json.loads((Path(args.work) / "summary.json").read_text())

    def job_steps(self, args: argparse.Namespace):
        """As every cross-validated use case, with the grouping of ``--group`` (its step-5 images per fold)."""
        self._grouping = getattr(args, "group", "name")
        return super().job_steps(args)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return scores.score_fold(out_dir, k, test, cfg.stride, cfg.score_from, anno_dir=cfg.data)

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        return {
            "folds": fold_scores,
            "pooled": scores.sum_scores(fold_scores),
            "score_from": cfg.score_from,
            "step5_resize": "nearest, ceil sizes (--match-training-resize)"
            if self._step5_dir
            else "caffe.io bilinear, floor sizes (the original's template)",
            "published_f": self.figures("f_score")[0].value,
        }

    def markdown(self, scores_doc: dict) -> str:
        return scores_markdown(scores_doc)

    # ------------------------------------------------------------------ report
    def report_headline(self, s: dict) -> Table:
        def cells(*path):
            return {c.key: from_json(s, "scores.json", *path, *c.key.split("_", 1)) for c in HEADLINE}

        rows = [
            Row(f"fold {f['fold']}", cells("folds", i), note=f"{len(f['images'])} test image(s)")
            for i, f in enumerate(s["folds"])
        ]
        rows.append(Row("pooled", cells("pooled"), kind="pooled", note="all folds' test images"))
        return Table(
            HEADLINE,
            rows + self.published_rows({"f_score": "pixel_f_score"}),
            caption="Class maps (argmax) of step 5 at 0.25 against the annotations resized as step 1 did (nearest). "
            "Pixel level over the pixels step 5 computes. Object level (invented): 8-connected components matched "
            "one to one when they overlap by more than half of each. The published F (0.83, from 795 tubules) does "
            "not say its level; it is shown in the pixel column.",
        )

    def report_sections(self, work: Path, run: dict, s: dict, pictures: Path) -> list[Section]:
        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Tubules on test images", text=f"{data_dir}: the input images are gone; no pictures.")]
        pics = []
        for f in s["folds"]:
            k, out = f["fold"], Path(work) / "output" / str(f["fold"])
            have = [
                (im["image"], im["pixel"]["f_score"])
                for im in f["images"]
                if (out / f"{Path(im['image']).stem}_prob.npy").is_file() and (data_dir / im["image"]).is_file()
            ]
            for label, name in pick_examples(have):
                img = data_dir / name
                prob = np.load(out / f"{img.stem}_prob.npy")
                resized = Path(work) / STEP5_INPUTS / f"{img.stem}.png"  # --match-training-resize
                image = (
                    inference.load_resized(resized, 1.0)
                    if resized.is_file()
                    else inference.load_resized(img, sampling.Params.resize)
                )
                truth = scores.truth_mask(img.with_name(img.stem + images.ANNO), prob.shape[:2])
                h, w = truth.shape
                fs = fixed(dict(have)[name], 3)
                title = f"Fold {k}, {describe(label, len(have))}: {name}, pixel F {fs}"
                file = f"tubule_fold{k}_{label}_{img.stem.replace(' ', '_')}.png"
                outlines(
                    image[:h, :w],
                    truth,
                    prob[:h, :w].argmax(2) == 1,
                    prob[:h, :w, 1],
                    title,
                    pictures / file,
                    prob_label="P(tubule)",
                )
                pics.append(Picture(file, title + "."))
        return [
            Section(
                "Tubules on test images",
                pictures=pics,
                text="For each fold, the test images with the best, median and worst pixel F-score. Left: the "
                "annotated tubules (solid green) and the predicted class map (dashed yellow) outlined over the image "
                f"resized ×{self.magnification:g} as step 5 saw it. Right: the predicted probability of tubule.",
            )
        ]

    # ------------------------------------------------------------------ demo and regression
    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("*_anno.bmp")):
            demo.make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic glands), not real tissue", folder)
        return Path(folder)

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """The five released fold models (and ``--ours``) on ``--images`` or the annotated images of
        ``--data``: pixel and object scores (:mod:`.regress`)."""
        data = self.prepare_data(args.data, Path(args.out) / "data") if args.data else None
        imgs = regress.gather_images(list(args.images), data)
        if not imgs:
            raise ValueError("regress --usecase tubule needs --images or --data (images with their _anno.bmp)")
        if len(args.ours_mean) != len(args.ours):
            raise ValueError("give one --ours-mean per --ours model")
        rd = Path(released_dir)
        rd = rd / self.released_folder if (rd / self.released_folder).is_dir() else rd
        models = regress.released_models(rd)
        models += [(f"ours {Path(m).name}", Path(m), Path(mm)) for m, mm in zip(args.ours, args.ours_mean)]
        regress.regress_models(models, imgs, args.out, args.mode, args.gpu)
        return {"table": str(Path(args.out) / "regress_tubule.md")}
