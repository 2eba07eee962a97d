"""Use case 7: lymphoma sub-type classification (CLL / FL / MCL) of whole images, 5 folds.

Modules: ``tiles`` (the step-1 and step-5 grids, 10-crop, mean resize, votes: pure), ``foldlists``
(published, fresh and slide folds, leakage), ``dataset`` (layout checks, generated cohort),
``step5`` (pycaffe votes per image), ``runner`` (the stages end to end), ``report``, ``regression``
(the ten released models against yours). Spec: ../shared/USECASES_3_5_7.md, section 3.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import REPO_ROOT, artefacts, crossval, download, recipes, released
from pipeline.export import Options as ExportOptions
from pipeline.export import Spec
from pipeline.report import Content
from pipeline.scheduler.plan import restrict
from pipeline.usecases import datasets
from pipeline.usecases.base import Figure, JobStep, UseCase, add_run_arguments, parse_folds
from pipeline.usecases.lymphoma import geojson, regression, report, runner
from pipeline.usecases.lymphoma.dataset import make_cohort

log = logging.getLogger(__name__)

RELEASED_FOLDER = "uc7-lymphoma"


def default_fold_lists() -> Path | None:
    """The published fold lists: ../shared/released/uc7-lymphoma, else data/released/uc7-lymphoma
    (``make fetch-released``), each list's sha256 checked against the released table; None if absent."""
    sums = {f["path"]: f["sha256"] for f in released.table()["files"] if f["path"].startswith(RELEASED_FOLDER)}
    for base in (REPO_ROOT.parent / "shared" / "released", REPO_ROOT / "data" / "released"):
        folder = base / RELEASED_FOLDER
        if not (folder / artefacts.parent_list("test", 1)).is_file():
            continue
        for rel, digest in sums.items():
            if "_parent_" in rel and download.sha256_of(base / rel) != digest:
                raise ValueError(f"{base / rel}: sha256 differs from the published fold list's")
        return folder
    return None


class Lymphoma(UseCase):
    """Use case 7: 374 images of CLL, FL and MCL, tiles voted per image, 5 published folds."""

    name = "lymphoma"
    number = 7
    title = "lymphoma sub-type classification (CLL / FL / MCL, image level)"
    command = "usecase7"
    demo_command = "demo-lymphoma"
    n_classes = 3
    stages = ("patches", "lists", "dbs", "prototxt", "train", "outputs", "scores")
    archives = (datasets.LYMPHOMA,)
    released_folder = RELEASED_FOLDER
    #: GeoJSON for QuPath: a square per tile, classified by its vote (``lymphoma/geojson.py``)
    export = Spec("patches", "CLL", (0, 114, 178), "tile", other_name="FL, MCL")
    published = (Figure("accuracy", 0.97, "paper", "published, image level, 5 folds (JPI 2016 abstract)"),)
    numeric_options = (
        "iterations",
        "seed",
        "dropout",
        "folds_from",
        "mean_mode",
        "caffe_shuffle",
        "list_separator",
        "lr_policy",
    )

    def export_work(self, work: Path, opts: ExportOptions) -> list[Path]:
        """A square per tile of every test image, classified by the tile's vote (options unused)."""
        return geojson.export_work(work)

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if not demo:
            parser.add_argument(
                "--data", type=Path, required=True, help="lymphoma.tar.gz or a folder of CLL/ FL/ MCL/*.tif"
            )
        add_run_arguments(
            parser,
            work=Path("runs/demo-lymphoma") if demo else None,
            iterations=100 if demo else 600000,
            seed_help="fresh/slide folds, list shuffle, Caffe random_seed",
            jobs_help="patch workers (default: all cores)",
            jobs_default=None,
            infer_mode=None,
            intervals=(100, 100, 20) if demo else (None, None, None),
        )
        parser.add_argument("--dropout", action="store_true", help="the dropout net (released *_w32_dropout)")
        parser.add_argument(
            "--folds-from",
            default="published",
            choices=("published", "fresh", "slide"),
            help="published: the shipped fold lists (default); fresh: drawn per class over images as step 2 did "
            "(seeded); slide: whole slides per fold (NOT the published protocol)",
        )
        parser.add_argument(
            "--fold-lists",
            type=Path,
            help="folder of test_w32_parent_<k>.txt (default: the released uc7-lymphoma folder)",
        )
        parser.add_argument(
            "--mean-mode",
            default="skimage2015",
            choices=("skimage2015", "edge_cval", "modern", "center_crop"),
            help="step 5: the 36x36 mean brought to 32x32 by pycaffe's resize_image with the skimage of 2015 "
            "(skimage2015, default), as USECASES_3_5_7.md reads it (edge_cval: last row/column blended with "
            "the global minimum), with today's skimage (modern: anti-aliased), or its centre (center_crop)",
        )
        parser.add_argument(
            "--list-separator",
            default="space",
            choices=("space", "tab"),
            help="lists fed to convert_imageset: space (default) or step 2's TAB lists as they are (refused: empty DB)",
        )
        parser.add_argument(
            "--literal-step5-path", action="store_true", help="step 5 opens ./images/<line>.tif as the original (fails)"
        )
        parser.add_argument(
            "--literal-deploy", action="store_true", help="step 5 loads the shipped 2-output deploy net (fails)"
        )
        parser.add_argument(
            "--released-models",
            type=Path,
            help="step 5 and scores with the released weights and means of this folder (e.g. "
            "../shared/released/uc7-lymphoma), no training: --stages outputs,scores",
        )
        parser.add_argument(
            "--folds", type=parse_folds, default=(), help="run these folds only, e.g. 1,2 (default 1-5)"
        )

    def config(
        self,
        args: argparse.Namespace,
        data: Path | None = None,
        data_recipe: recipes.Recipe | None = None,
        fold_lists: Path | None = None,
    ):
        """The :class:`runner.Config <pipeline.usecases.lymphoma.runner.Config>` of the parsed options
        (``data``: the images' folder found or made, None where the caller does not need it, as the
        scheduler's checks; ``fold_lists``: the folder of the fold lists unless ``--fold-lists`` names one)."""
        return runner.Config.from_args(
            args,
            data=data,
            folds_from=args.folds_from,
            fold_lists=args.fold_lists or fold_lists,
            dropout=args.dropout,
            list_separator=args.list_separator,
            mean_mode=args.mean_mode,
            literal_step5_path=args.literal_step5_path,
            literal_deploy=args.literal_deploy,
            folds=tuple(args.folds),
            data_recipe=data_recipe,
            released_models=args.released_models,
        )

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        if demo:
            data, data_recipe = self.demo_data(args.work, args.seed, getattr(args, "force", False))
            fold_lists = args.fold_lists or data
        else:
            data = self.prepare_data(args.data, args.work / "data")
            data_recipe = recipes.source(args.data)
            fold_lists = args.fold_lists or (default_fold_lists() if args.folds_from == "published" else None)
        summary = runner.run(self.config(args, data, data_recipe, fold_lists), stages)
        if demo:
            summary["cohort"] = (
                "GENERATED (synthetic textures): the numbers show the pipeline works, nothing about lymphoma"
            )
        return summary

    # ------------------------------------------------------------------ cluster jobs
    def job_steps(self, args: argparse.Namespace) -> tuple[JobStep, ...]:
        """prepare (tiles, fold lists: one job) -> train (an array: task k builds fold k's databases
        and nets and trains it) -> outputs (an array: step 5 of fold k) -> scores (one job); only the
        steps of the stages asked for. A task is done when the run's stage graph
        (:func:`pipeline.usecases.lymphoma.runner.graph`) says its last stage is done (recorded done,
        its outputs there); stages that a run with ``--released-models`` has not count as done."""
        ks = tuple(crossval.selected_folds(args.folds))
        g = runner.graph(self.config(args))
        return restrict(
            (
                JobStep(
                    "prepare",
                    ("patches", "lists"),
                    done=lambda _t: g.all_done(("patches", "lists")),
                    what="tiles and fold lists",
                ),
                JobStep(
                    "train",
                    ("dbs", "prototxt", "train"),
                    tasks=ks,
                    after=("prepare",),
                    task_option="--folds",
                    gpu=True,
                    done=lambda k: g.all_done(("train",), keys=(k,)),
                    what="databases, nets and training of fold {task}",
                ),
                JobStep(
                    "outputs",
                    ("outputs",),
                    tasks=ks,
                    after=("train",),
                    task_option="--folds",
                    gpu=True,
                    done=lambda k: g.all_done(("outputs",), keys=(k,)),
                    what="step 5 of fold {task}",
                ),
                JobStep("scores", ("scores",), after=("outputs",), done=lambda _t: g.done("scores"), what="scores"),
            ),
            self.parse_stages(getattr(args, "stages", None)),
        )

    # ------------------------------------------------------------------ report
    def report(self, work: Path, run: dict, pictures: Path) -> Content:
        return report.content(
            work, super().report(work, run, pictures), self.published_rows({"accuracy": "accuracy"}), pictures
        )

    # ------------------------------------------------------------------ data
    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not (Path(folder) / artefacts.parent_list("test", 1)).is_file():
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic textures), not real tissue", folder)
        return Path(folder)

    # ------------------------------------------------------------------ regression
    def add_regress_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--lymphoma-folds",
            type=parse_folds,
            default=(1, 2, 3, 4, 5),
            help="lymphoma: released folds to run (default all 5, plain and dropout: ten models)",
        )
        parser.add_argument(
            "--lymphoma-mean-mode",
            default="skimage2015",
            choices=("skimage2015", "edge_cval", "modern", "center_crop"),
            help="lymphoma: step-5 mean",
        )

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """Every released fold model (plain and dropout) and ``--ours`` on the images of ``--data``/``--images``."""
        return regression.run(
            Path(released_dir),
            args.data,
            list(getattr(args, "images", []) or []),
            Path(args.out),
            args.ours,
            args.ours_mean,
            folds=tuple(args.lymphoma_folds),
            mean_mode=args.lymphoma_mean_mode,
            gpu=args.gpu,
        )
