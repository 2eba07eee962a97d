"""RADHicaL: the resolution adaptive deep hierarchical learning scheme for nuclei (Janowczyk, Doyle,
Gilmore, Madabhushi 2016; code DLLevelTutorial/ of choosehappy/public; blog seed 002).

Four levels of each image (x1, x.5, x.25, x.1), one "AlexNet 32w" net per level with three
outputs, five patient folds; at inference a cascade from the coarsest level computes each finer
level only where the coarser one is unsure. Modules: ``levels`` (level masks, class rules),
``patches`` (step 1), ``runner`` (the stages), ``rules`` (which pixels each level computes),
``cascade`` (inference), ``search`` (thresholds), ``table`` (the headline table), ``demo`` (the
demo cohort). A run is the stage graph of :func:`runner.graph` (per fold x level: key "<k>_<l>");
:meth:`RADHicaL.config` builds its frozen :class:`runner.Config` from the command line (a Python
caller builds one and calls :func:`runner.run` without argparse).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import nuclei, recipes
from pipeline.export import Options as ExportOptions
from pipeline.scheduler.plan import JobStep, restrict
from pipeline.usecases import datasets
from pipeline.usecases.base import UseCase, add_run_arguments
from pipeline.usecases.radhical import cascade, demo, geojson, rules, runner, table
from pipeline.usecases.radhical.levels import LEVELS
from pipeline.usecases.radhical.patches import Params

log = logging.getLogger(__name__)

#: The demo cohort (:mod:`.demo`): 25 generated patients, one 800x800 image each, so five per fold:
#: the demo's one validation patient (``--validation 1``) leaves four test images no threshold was
#: chosen on; the cascade fold's test images are cropped to 200x200 (the exact engine's naive run).
DEMO_PATIENTS = demo.PATIENTS
DEMO_SIZE = demo.SIZE


def _folds(text: str) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--train-folds takes fold numbers like 1,2,3, not {text!r}") from None
    if not out or any(k < 1 or k > 5 for k in out):
        raise argparse.ArgumentTypeError(f"--train-folds: folds are 1..5, got {text!r}")
    return out


class RADHicaL(UseCase):
    """RADHicaL: four-level nuclei segmentation cascade against the naive level-1 run."""

    name = "radhical"
    number = None
    title = "RADHicaL multi-resolution nuclei cascade"
    command = "radhical"
    demo_command = "demo-radhical"
    magnification = 1.0
    n_classes = 3
    stages = runner.STAGES
    archives = (datasets.NUCLEI,)
    reads = (datasets.NUCLEI_SIDE_BY_SIDE,)
    released_folder = None  # no RADHicaL model was ever released (RADHICAL.md section 11)
    published = table.figures()
    export = geojson.SPEC  # the final segmentations as nucleus polygons (radhical/geojson.py)

    def export_work(self, work: Path, opts: ExportOptions) -> list[Path]:
        """Each RADHicaL row's final segmentations as GeoJSON (``WORK/geojson/<run>/``)."""
        return geojson.export_work(work, opts)

    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if not demo:
            parser.add_argument(
                "--data",
                type=Path,
                required=True,
                help="nuclei.tgz or a folder of <pid>_500_f<id>_original.tif with _mask.png",
            )
        add_run_arguments(
            parser,
            work=Path("runs/demo-radhical") if demo else None,
            iterations=300 if demo else 600000,
            iterations_help="training iterations per level model (published 600000)",
            jobs_help="level models trained at the same time",
            infer_mode="exact",
            infer_help="step-5 engine (exact, default: the original's numbers, cost per window; fcn: fast, other "
            "numbers, cost by area)",
            intervals=(100000, 100000, 50) if demo else (None, None, None),
            schedule=False,
        )
        parser.add_argument(
            "--max-positive",
            type=int,
            default=120 if demo else 500,
            help="patches per class, level and image (published 500)",
        )
        parser.add_argument(
            "--train-folds",
            type=_folds,
            default=(1,) if demo else (1, 2, 3, 4, 5),
            help="folds whose four level models are trained (published: all five; the cascade uses --fold only)",
        )
        parser.add_argument(
            "--fold", type=int, default=1, help="the fold whose level models the cascade uses (original: 1)"
        )
        parser.add_argument("--batch", type=int, default=2048, help="windows per net forward (exact engine)")
        parser.add_argument(
            "--rule",
            default="python",
            choices=rules.RULES,
            help="Q6: which pixels a level computes: python (create_output_image_vector.py, default) "
            "or matlab (get_masks_2thresh_3class.m)",
        )
        parser.add_argument(
            "--q1",
            default="old-numpy",
            choices=rules.Q1_MODES,
            help="Q1, probs[:,:,2][thresh_upper]=0: old-numpy (row int(upper) zeroed, what ran), "
            "intended (the accepted pixels), refuse (error, as current numpy)",
        )
        parser.add_argument(
            "--png",
            default="minmax",
            choices=cascade.PNG_MODES,
            help="Q11: _prob.png scaling between levels: minmax (scipy.misc.imsave) or round",
        )
        parser.add_argument(
            "--negative-rule",
            default="faithful",
            choices=nuclei.NEGATIVE_RULES,
            help="Q2: makeNegativeMask's J<.3 on uint8 (faithful: J==0) or on J/255 (corrected)",
        )
        parser.add_argument(
            "--mask-values",
            default="faithful",
            choices=nuclei.MASK_VALUES,
            help="Q3: masks as double(imread) (faithful; 0/255 for 8-bit PNGs) or 0/1 (binary)",
        )
        parser.add_argument(
            "--lower",
            help="lower thresholds L1,L2,L3,L4 (published .5267,.733,.18,.12); with --upper, the only cascade run",
        )
        parser.add_argument("--upper", help="upper thresholds U2,U3,U4 (published .61,.8267,.16; above 1: accept none)")
        parser.add_argument("--grid", type=int, default=32, help="threshold search grid (linspace(0, 1, 32))")
        parser.add_argument(
            "--compute-budget",
            type=float,
            help="automatic pick: at most this fraction of level 1's pixels computed (e.g. 0.15); default none",
        )
        parser.add_argument(
            "--f-tolerance",
            type=float,
            default=0.005,
            help="automatic pick: least computation within this F of the best (default 0.005)",
        )
        parser.add_argument(
            "--validation",
            type=int,
            default=1 if demo else 10,
            help="validation patients, on which the thresholds are searched: the first N of "
            "test_w32_parent_<fold>.txt (original 10)",
        )
        parser.add_argument(
            "--test-set",
            default="disjoint",
            choices=runner.TEST_SETS,
            help="Q12, the images the table grades: disjoint (the fold's test patients minus the validation "
            "ones: no test image tuned a threshold; default) or with-validation (all the fold's test patients)",
        )

    def config(
        self, args: argparse.Namespace, data: Path | None = None, data_recipe: recipes.Recipe | None = None
    ) -> runner.Config:
        """The :class:`runner.Config` of the parsed options (``data``: the data folder found or made;
        None where the caller does not need it, as the scheduler's checks); ValueError naming a
        wrong threshold, budget or grid option."""
        if (args.lower is None) != (args.upper is None):
            raise ValueError("give both --lower L1,L2,L3,L4 and --upper U2,U3,U4, or neither")
        thresholds = cascade.Thresholds.parse(args.lower, args.upper) if args.lower else None
        if args.compute_budget is not None and not 0 < args.compute_budget:
            raise ValueError(f"--compute-budget {args.compute_budget}: a fraction of level 1's pixels, above 0")
        if args.grid < 2:
            raise ValueError(f"--grid {args.grid}: at least 2 thresholds")
        return runner.Config.from_args(
            args,
            data=data,
            params=Params(
                max_positive=args.max_positive, negative_rule=args.negative_rule, mask_values=args.mask_values
            ),
            train_folds=args.train_folds,
            fold=args.fold,
            validation_count=args.validation,
            test_set=args.test_set,
            cascade=cascade.Options(
                mode=args.infer_mode, rule=args.rule, q1=args.q1, png=args.png, gpu=args.gpu, batch=args.batch
            ),
            thresholds=thresholds,
            grid=args.grid,
            budget=args.compute_budget,
            tolerance=args.f_tolerance,
            data_recipe=data_recipe,
        )

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        cfg = self.config(args)  # the options are checked before the data are made or extracted
        if demo:
            data, data_recipe = self.demo_data(cfg.work, cfg.seed, cfg.force, fold=cfg.fold)
        else:
            data, data_recipe = self.prepare_data(args.data, cfg.work / "data"), recipes.source(args.data)
        cfg = cfg.replace(data=data, data_recipe=data_recipe)
        if cfg.fold not in cfg.train_folds and "train" in stages:
            log.warning(
                "--fold %d is not among --train-folds %s: its level models must exist already",
                cfg.fold,
                cfg.train_folds,
            )
        summary = runner.run(cfg, stages)
        if demo:
            summary["cohort"] = "GENERATED (synthetic): the numbers show the pipeline works, nothing about nuclei"
        return summary

    def job_steps(self, args: argparse.Namespace) -> tuple[JobStep, ...]:
        """prepare (patches, folds, dbs, prototxt of every trained fold and level: one job) -> train
        (an array: task k trains fold k's four level models, ``--train-folds k``, ``-j`` at a time)
        -> cascade (full, search, cascade, table: one job); only the steps of the stages asked for.
        A task is done when the run's stage graph (:func:`runner.graph`) says its stages are done."""
        stages = self.parse_stages(getattr(args, "stages", None))
        data_folder = self.submitted_data(args)

        g = runner.graph(self.config(args), stages, data_folder)
        prepare = ("patches", "folds", "dbs", "prototxt")
        return restrict(
            (
                JobStep(
                    "prepare", prepare, done=lambda _t: g.all_done(prepare), what="patches, folds, databases, nets"
                ),
                JobStep(
                    "train",
                    ("train",),
                    tasks=tuple(args.train_folds),
                    after=("prepare",),
                    task_option="--train-folds",
                    gpu=True,
                    done=lambda k: g.all_done(("train",), keys=[runner.fold_level(k, lv) for lv in LEVELS]),
                    what="train the four level models of fold {task}",
                ),
                JobStep(
                    "cascade",
                    runner.CASCADE_STAGES,
                    after=("train",),
                    gpu=True,
                    done=lambda _t: g.all_done(runner.CASCADE_STAGES),
                    what="the full outputs, search, cascade and table",
                ),
            ),
            stages,
        )

    def make_demo_cohort(self, folder: Path, seed: int, fold: int = 1, test_size: int = demo.TEST_SIZE) -> Path:
        """The demo cohort of :mod:`.demo`: fold ``fold``'s test images cropped to ``test_size``."""
        if test_size != demo.TEST_SIZE:
            raise ValueError(f"the demo cohort's test images are {demo.TEST_SIZE} px, not {test_size}")
        return demo.make_cohort(folder, seed, fold)

    def demo_data(self, work: Path, seed: int, force: bool = False, fold: int = 1) -> tuple[Path, recipes.Recipe]:
        """The demo cohort (:mod:`.demo`) as the "cohort" stage: its options are the seed, the fold
        whose test images are cropped and their size."""
        return super().demo_data(work, seed, force, fold=fold, test_size=demo.TEST_SIZE)
