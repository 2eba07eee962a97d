"""Use case 6: invasive ductal carcinoma (IDC) detection on 50x50 patches, one published split.

Modules: ``dataset`` (archive, layout, split, generated cohort), ``patches`` (MATLAB step 1),
``runner`` (the stages end to end), ``evaluation`` (patch-level scores: invented here, the original
had none in code), ``regression`` (the four released models against yours).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import export as geojson_export
from pipeline import lists, recipes
from pipeline.report import Content
from pipeline.templates import SolverParams
from pipeline.usecases import datasets
from pipeline.usecases.base import Figure, UseCase, add_force_argument, add_run_arguments, add_solver_arguments
from pipeline.usecases.idc import evaluation, regression, report, runner
from pipeline.usecases.idc.dataset import EXPORT, IDC_ZIP, make_cohort

if TYPE_CHECKING:  # the runner is imported when a run starts
    from pipeline.usecases.idc import runner

log = logging.getLogger(__name__)

VARIANT_NAMES = ("crop", "resize", "crop-morerot")
#: Single-stage commands (``python -m pipeline patches --data ... --work ...``).
STAGE_HELP = {
    "patches": "step 1: patches and faithful TAB lists",
    "lists": "space-separated list copies for convert_imageset",
    "dbs": "LevelDBs (convert_imageset) and mean (compute_image_mean)",
    "prototxt": "render solver, train/test and deploy nets, job scripts",
    "train": "caffe train (resumes from the newest solverstate)",
}
SEED_HELP = "seed of the list shuffle and Caffe's random_seed (default 1)"
JOBS_HELP = "patch workers (default: all cores)"
INTERVALS_HELP = (
    "solver test_interval (published 10000)",
    "solver snapshot interval (published 10000)",
    "solver display interval (published 1000)",
)


class IDC(UseCase):
    """Use case 6: IDC vs non-IDC patches of 162 patients (84/29/49 train/val/test)."""

    name = "idc"
    number = 6
    title = "invasive ductal carcinoma (patch level)"
    command = "usecase6"
    demo_command = "demo"
    magnification = 1.0
    source_objective = 2.5  # recalled: Cruz-Roa et al. 2014 cut the patches from 40x slides downsampled 16:1
    stages = ("patches", "lists", "dbs", "prototxt", "train", "evaluate")
    archives = (datasets.IDC,)
    released_folder = "uc6-idc"
    published = (
        Figure(
            "f_score",
            0.7648,
            "code comment",
            "published, crop: step1 code comment (no extra rotations)",
            variant="crop",
        ),
        Figure(
            "f_score",
            0.7558,
            "code comment",
            "published, crop-morerot: step1 code comment (extra rotations)",
            variant="crop-morerot",
        ),
        Figure("f_score", 0.7648, "recalled", "published, paper (JPI 2016)"),
        Figure("balanced_accuracy", 0.8468, "recalled", "published, paper (JPI 2016)"),
        Figure("f_score", 0.7180, "recalled", "Cruz-Roa et al. 2014"),
        Figure("balanced_accuracy", 0.8423, "recalled", "Cruz-Roa et al. 2014"),
    )
    numeric_options = ("variant", "dropout", "iterations", "seed", "caffe_shuffle", "oversample", "split_dir")
    export = EXPORT

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if demo:
            add_run_arguments(
                parser,
                work=Path("runs/demo"),
                iterations=300,
                seed_help=SEED_HELP,
                jobs_help=None,
                infer_mode=None,
                caffe_shuffle=False,
                intervals=None,
                schedule=False,
            )
            # fixed by the demo; recorded so that its report shows them
            parser.set_defaults(variant="crop", dropout=False, caffe_shuffle=False, oversample=True)
            return
        parser.add_argument(
            "--data",
            type=Path,
            required=True,
            help=f"IDC data: {IDC_ZIP} or a folder in the PATIENT/{{0,1}}/*.png layout",
        )
        add_run_arguments(
            parser,
            work=None,
            iterations=600000,
            seed_help=SEED_HELP,
            jobs_help=JOBS_HELP,
            jobs_default=None,
            infer_mode=None,
            intervals=(None, None, None),
            intervals_help=INTERVALS_HELP,
        )
        self._model_arguments(parser, gpu=False)
        self._own_run_arguments(parser)
        parser.add_argument(
            "--no-oversample",
            dest="oversample",
            action="store_false",
            help="evaluate the centre window only (the original averaged it with its mirror)",
        )

    @staticmethod
    def _own_run_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of the stages before evaluation that are use case 6's own."""
        parser.add_argument(
            "--split-dir", type=Path, help="folder with cases_{train,val,test}.txt (default: the published split)"
        )
        parser.add_argument("--skip-bad", action="store_true", help="record unreadable PNGs and go on")

    @classmethod
    def _run_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Options of the stages before evaluation, for ``evaluate``, whose --work is optional (model
        mode needs none) so that :func:`add_run_arguments` does not fit it (the evaluate stage checks
        its inputs against them)."""
        parser.add_argument(
            "--iter", dest="iterations", type=int, default=600000, help="training iterations (published 600000)"
        )
        parser.add_argument("--seed", type=int, default=1, help=SEED_HELP)
        parser.add_argument(
            "--caffe-shuffle", action="store_true", help="let convert_imageset -shuffle (unseeded, as the original)"
        )
        cls._own_run_arguments(parser)
        parser.add_argument("--jobs", type=int, help=JOBS_HELP)
        for name, text in zip(("--test-interval", "--snapshot", "--display"), INTERVALS_HELP):
            parser.add_argument(name, type=int, help=text)
        add_solver_arguments(parser)

    @staticmethod
    def _model_arguments(parser: argparse.ArgumentParser, gpu: bool = True) -> None:
        """--variant, --dropout and (``gpu``: where :func:`add_run_arguments` did not declare it) --gpu."""
        parser.add_argument(
            "--variant",
            default="crop",
            choices=VARIANT_NAMES,
            help="published patch variant (default crop = w32_noresize)",
        )
        parser.add_argument("--dropout", action="store_true", help="the dropout net (released w32_dropout)")
        if gpu:
            parser.add_argument("--gpu", action="store_true", help="train and classify on the GPU")

    def add_commands(self, sub) -> None:
        super().add_commands(sub)
        for stage, helptext in STAGE_HELP.items():
            s = sub.add_parser(stage, help=f"use case 6 stage: {helptext}")
            self.add_arguments(s, demo=False)
            add_force_argument(s)
            s.set_defaults(usecase=self, demo=False, stages=stage)
        e = sub.add_parser(
            "evaluate",
            help="use case 6 patch-level scores: of any model (--model ...) or as the stage (--data ... --work ...)",
        )
        e.add_argument("--model", type=Path, help="caffemodel to evaluate (model mode)")
        e.add_argument("--mean", type=Path, help="its binaryproto mean (model mode)")
        e.add_argument("--deploy", type=Path, help="deploy prototxt (default: rendered from the template)")
        e.add_argument("--patients-dir", type=Path, help="ROOT with PATIENT/{0,1}/*.png (50x50 originals)")
        e.add_argument("--list", type=Path, help="list of 32x32 patches (with --patch-dir)")
        e.add_argument("--patients-file", type=Path, help="patients to use (one ID a line), default all folders")
        e.add_argument("--patch-dir", type=Path)
        e.add_argument("--with-rotations", action="store_true", help="also the rotated copies the patches stage writes")
        e.add_argument("--json", type=Path, help="output JSON (model mode); CSV and Markdown are written beside it")
        e.add_argument("--data", type=Path, help="IDC data (stage mode)")
        e.add_argument("--work", type=Path, help="work folder (stage mode)")
        e.add_argument(
            "--no-oversample",
            dest="oversample",
            action="store_false",
            help="evaluate the window alone (default: averaged with its mirror, as caffe.Classifier.predict)",
        )
        self._model_arguments(e)
        self._run_arguments(e)
        add_force_argument(e)
        e.set_defaults(func=self.cmd_evaluate)

    def cmd_evaluate(self, a: argparse.Namespace) -> dict:
        """``python -m pipeline evaluate``: model mode (--model ...) or the stage (--data ... --work ...)."""
        if a.model is None:
            if a.data is None or a.work is None:
                raise ValueError(
                    "evaluate needs either --model, --mean and --json (model mode) or --data and --work (stage)"
                )
            return self.run(a, ("evaluate",))
        if a.mean is None or a.json is None:
            raise ValueError("evaluate --model needs --mean and --json")
        if a.patients_dir is None and (a.list is None or a.patch_dir is None):
            raise ValueError("evaluate --model needs --patients-dir ROOT, or --list FILE with --patch-dir DIR")
        patients = lists.read_names(a.patients_file) if a.patients_file else None
        result = evaluation.evaluate(
            a.model,
            a.mean,
            a.variant,
            a.json,
            patients_dir=a.patients_dir,
            patients=patients,
            list_path=a.list,
            patch_dir=a.patch_dir,
            oversample=a.oversample,
            dropout=a.dropout,
            with_rotations=a.with_rotations,
            gpu=a.gpu,
            deploy=a.deploy,
            figures=self.published,
        )
        return {"overall": result["overall"], "table": str(Path(a.json).with_suffix(".md"))}

    def config(
        self, args: argparse.Namespace, data: Path, data_recipe: recipes.Recipe | None = None, demo: bool = False
    ) -> runner.Config:
        """The :class:`pipeline.usecases.idc.runner.Config` of the parsed options (``data``: the data
        given, or the demo's generated cohort with its recipe ``data_recipe``)."""
        own = {
            "data": data,
            "variant": args.variant,
            "dropout": args.dropout,
            "oversample": args.oversample,
            "figures": self.published,
        }
        if demo:  # the demo's cohort has its own split; the solver intervals suit its few iterations
            sp = SolverParams(
                max_iter=args.iterations, test_interval=100, snapshot=100, display=20, random_seed=args.seed
            )
            return runner.Config.from_args(args, **own, split_dir=data, solver=sp, data_recipe=data_recipe)
        return runner.Config.from_args(args, **own, split_dir=args.split_dir, skip_bad=args.skip_bad)

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        if demo:
            data, data_recipe = self.demo_data(args.work, args.seed, getattr(args, "force", False))
            args.split_dir = data  # recorded so that its report shows it
            summary = runner.run(self.config(args, data, data_recipe, demo=True), stages)
            summary["cohort"] = (
                "GENERATED (synthetic H&E-like patches): the numbers show the pipeline works, nothing about IDC"
            )
            return summary
        return runner.run(self.config(args, args.data), stages)

    # ------------------------------------------------------------------ report
    def report(self, work: Path, run: dict, pictures: Path) -> Content:
        """Patch-level headline, per-patient table and outcome montages from ``WORK/eval/``."""
        columns = {"f_score": "f_score", "balanced_accuracy": "balanced_accuracy"}
        return report.content(
            work, super().report(work, run, pictures), lambda variant: self.published_rows(columns, variant), pictures
        )

    # ------------------------------------------------------------------ data
    def export_work(self, work: Path, opts: geojson_export.Options) -> list[Path]:
        """A square per evaluated test patch, one file per patient (``WORK/eval/<patient>.geojson``)."""
        return geojson_export.export_patches(Path(work) / "eval" / "metrics.csv", self.export)

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not (Path(folder) / "cases_test.txt").is_file():
            make_cohort(folder, seed=seed)
        log.warning(
            "the demo cohort in %s is GENERATED (synthetic H&E-like patches), not real tissue; its numbers "
            "say the pipeline works, nothing about IDC",
            folder,
        )
        return Path(folder)

    # ------------------------------------------------------------------ regression
    def add_regress_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--patients-file", type=Path, help="idc: patients to use (default: all folders of the data)"
        )
        parser.add_argument(
            "--ours-variant", default="crop", choices=VARIANT_NAMES, help="idc: patch variant of --ours"
        )

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """The four released models and ``--ours`` on the patches of ``--data`` (patch level)."""
        if args.data is None:
            raise ValueError("regress --usecase idc needs --data (IDC zip or folder, e.g. ../shared/realdata/idc)")
        root = self.prepare_data(args.data, args.out / "data")
        patients = lists.read_names(args.patients_file) if args.patients_file else None
        report = regression.run(
            released_dir,
            root,
            args.out,
            args.ours,
            args.ours_mean,
            args.ours_variant,
            patients,
            gpu=args.gpu,
            figures=self.published,
        )
        return {
            "table": str(args.out / "regress.md"),
            "written": f"{args.out / 'regress.md'}, {args.out / 'regress.json'}",
            "rows": len(report["rows"]),
        }
