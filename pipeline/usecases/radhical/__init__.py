"""RADHicaL: the resolution adaptive deep hierarchical learning scheme for nuclei (Janowczyk, Doyle,
Gilmore, Madabhushi 2016; code DLLevelTutorial/ of choosehappy/public; blog seed 002).

Four levels of each image (x1, x.5, x.25, x.1), one "AlexNet 32w" net per level with three
outputs, five patient folds; at inference a cascade from the coarsest level computes each finer
level only where the coarser one is unsure. Modules: ``levels`` (level masks, class rules),
``patches`` (step 1), ``runner`` (the stages), ``rules`` (which pixels each level computes),
``cascade`` (inference), ``search`` (thresholds), ``table`` (the headline table), ``demo`` (the
demo cohort); every stage is a :func:`pipeline.recipes.stage` (per fold x level: key "<k>_<l>").
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import nuclei, recipes
from pipeline.export import Options as ExportOptions
from pipeline.usecases import datasets
from pipeline.usecases.base import UseCase, solver_from_args
from pipeline.usecases.radhical import cascade, demo, geojson, rules, table
from pipeline.usecases.radhical.patches import Params
from pipeline.usecases.radhical.runner import STAGES, TEST_SETS

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
    stages = STAGES
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
        parser.add_argument(
            "--work",
            type=Path,
            default=Path("runs/demo-radhical") if demo else None,
            required=not demo,
            help="work folder",
        )
        parser.add_argument(
            "--iter",
            dest="iterations",
            type=int,
            default=300 if demo else 600000,
            help="training iterations per level model (published 600000)",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="folds, centre sampling, list shuffle, Caffe random_seed"
        )
        parser.add_argument("-j", "--jobs", type=int, default=1, help="level models trained at the same time")
        parser.add_argument("--gpu", action="store_true", help="train and infer on the GPU")
        parser.add_argument(
            "--caffe-shuffle", action="store_true", help="convert_imageset -shuffle (unseeded, as the original)"
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
        from pipeline.inference import ENGINES

        parser.add_argument(
            "--infer-mode",
            default="exact",
            choices=sorted(ENGINES),
            help="step-5 engine (exact, default: the original's numbers, cost per window; fcn: fast, other numbers, "
            "cost by area)",
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
            choices=TEST_SETS,
            help="Q12, the images the table grades: disjoint (the fold's test patients minus the validation "
            "ones: no test image tuned a threshold; default) or with-validation (all the fold's test patients)",
        )
        parser.add_argument("--test-interval", type=int, default=100000 if demo else None)
        parser.add_argument("--snapshot", type=int, default=100000 if demo else None)
        parser.add_argument("--display", type=int, default=50 if demo else None)

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        from pipeline.usecases.radhical import runner

        sp = solver_from_args(args)
        force = getattr(args, "force", False)
        if (args.lower is None) != (args.upper is None):
            raise ValueError("give both --lower L1,L2,L3,L4 and --upper U2,U3,U4, or neither")
        thresholds = cascade.Thresholds.parse(args.lower, args.upper) if args.lower else None
        if args.compute_budget is not None and not 0 < args.compute_budget:
            raise ValueError(f"--compute-budget {args.compute_budget}: a fraction of level 1's pixels, above 0")
        if args.grid < 2:
            raise ValueError(f"--grid {args.grid}: at least 2 thresholds")
        if demo:
            data, data_recipe = self.demo_data(args.work, args.seed, force, fold=args.fold)
        else:
            data, data_recipe = self.prepare_data(args.data, args.work / "data"), recipes.source(args.data)
        params = Params(max_positive=args.max_positive, negative_rule=args.negative_rule, mask_values=args.mask_values)
        opts = cascade.Options(
            mode=args.infer_mode, rule=args.rule, q1=args.q1, png=args.png, gpu=args.gpu, batch=args.batch
        )
        cfg = runner.Config(
            data=data,
            work=args.work,
            params=params,
            iterations=args.iterations,
            seed=args.seed,
            train_folds=args.train_folds,
            fold=args.fold,
            jobs=args.jobs,
            gpu=args.gpu,
            caffe_shuffle=args.caffe_shuffle,
            solver=sp,
            validation_count=args.validation,
            test_set=args.test_set,
            cascade=opts,
            thresholds=thresholds,
            grid=args.grid,
            budget=args.compute_budget,
            tolerance=args.f_tolerance,
            force=force,
            data_recipe=data_recipe,
        )
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

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        """The demo cohort of :mod:`.demo` (fold 1's test images cropped)."""
        return demo.make_cohort(folder, seed, fold=1)

    def demo_data(self, work: Path, seed: int, force: bool = False, fold: int = 1) -> tuple[Path, recipes.Recipe]:
        """The demo cohort (:mod:`.demo`) in ``work/generated_cohort`` as the "cohort" stage: its
        options are the seed, the fold whose test images are cropped and their size."""
        folder = Path(work) / "generated_cohort"
        made: list[Path] = []
        rec = recipes.stage(
            "cohort",
            work,
            options={"usecase": self.name, "seed": seed, "fold": fold, "test_size": demo.TEST_SIZE},
            outputs=[folder.name],
            what="the generated cohort",
            force=force,
            make=lambda: made.append(demo.make_cohort(folder, seed, fold)),
        )
        return made[0] if made else demo.make_cohort(folder, seed, fold), rec
