"""The PyTorch U-Net epithelium/stroma tutorial as a use case (commands, options, data, demo).

Not a Caffe use case: it implements the :class:`~pipeline.usecases.base.UseCase` hooks itself.
This module imports neither torch nor PyTables (the registry imports it); the stages import them
when they run, and a missing install is one clear error naming ``make setup-unet``.

Commands: ``unet`` (``make unet DATA=...``), ``demo-unet``, ``unet-vs-caffe`` (``make unet-vs-caffe
DATA=... FOLD=k``), ``demo-unet-vs-caffe``, ``unet-output`` (make_output_unet_cmd.py's command line).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from pipeline import recipes
from pipeline.inference import ENGINES
from pipeline.templates import SolverParams
from pipeline.usecases import datasets
from pipeline.usecases.base import UseCase, add_force_argument
from pipeline.usecases.epi import Epithelium
from pipeline.usecases.unet.cohort import enlarged_cohort
from pipeline.usecases.unet.database import DBParams

log = logging.getLogger(__name__)

#: The generated cohort of the demos: 6 patients, 500x500 (tiled exactly by 500/250/250, Q9),
#: drawn at 250x250 and enlarged.
DEMO_PATIENTS = 6
DEMO_SIZE = 500
DEMO_EPOCHS = 6


def require_torch(threads: int = 0) -> None:
    """RuntimeError naming what to install when the U-Net's dependencies are missing.

    Before torch is imported, OpenMP's threads are told to sleep while they wait
    (``OMP_WAIT_POLICY=PASSIVE`` unless set): spinning threads made training 5-15x slower on a
    2-core machine shared with other work. ``threads`` > 0 sets torch's intra-op threads.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    missing = [
        m for m in ("torch", "tables", "albumentations", "cv2", "tensorboard") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise RuntimeError(
            f"the U-Net needs {', '.join(missing)}: run `make setup-unet` (installs requirements-unet.txt into .venv)"
        )
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


class UNetEpistroma(UseCase):
    """The PyTorch U-Net tutorial (PytorchDigitalPathology, segmentation_epistroma_unet)."""

    name = "unet"
    number = None
    title = "PyTorch U-Net, epithelium/stroma (the later tutorial)"
    command = "unet"
    demo_command = "demo-unet"
    magnification = 1.0
    stages = ("dbs", "train", "outputs", "scores")
    archives = (datasets.EPI,)  # use case 2's images and masks
    reads = (datasets.EPI_SIDE_BY_SIDE,)  # read through use case 2's listing (masks beside the images)

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if not demo:
            parser.add_argument("--data", type=Path, required=True, help="epi.tgz or its extracted folder")
        parser.add_argument("--work", type=Path, default=Path("runs/demo-unet") if demo else Path("runs/unet"))
        parser.add_argument(
            "--split",
            default="original",
            help="'original' (make_hdf5.py's 90/10 ShuffleSplit, seeded) or 'uc2-fold K' "
            "(use case 2's fold K patients)",
        )
        self._common(parser, demo)

    @staticmethod
    def _common(parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument("--seed", type=int, default=1, help="split/folds, shuffling, augmentations, weights")
        parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS if demo else 100, help="epochs (original 100)")
        parser.add_argument("--batch-size", type=int, default=3)
        parser.add_argument(
            "--patch-size", type=int, default=256, help="training crop and output tile (original 256 both)"
        )
        parser.add_argument(
            "--edge-weight", type=float, default=1.1, help="loss factor on the 2-px ring outside the mask"
        )
        parser.add_argument(
            "--clean-val",
            action="store_true",
            help="validate on centre crops without augmentation (Q3; the original augments)",
        )
        parser.add_argument("--wf", type=int, default=2, help="2**wf filters in the first block (2; the blog's v1: 6)")
        parser.add_argument("--depth", type=int, default=5)
        parser.add_argument("--db-patch", type=int, default=500, help="pytable tile size (make_hdf5.py 500)")
        parser.add_argument("--db-stride", type=int, default=250)
        parser.add_argument("--mirror-pad", type=int, default=250)
        parser.add_argument("--resize", type=float, default=1.0, help="make_hdf5.py / output resize factor")
        parser.add_argument(
            "--mask-values",
            choices=("error", "truncate"),
            default="error",
            help="masks with values other than 0/255 (Q10): error, or truncate as the original",
        )
        parser.add_argument("--out-batch", type=int, default=10, help="output tiles per batch (original 10)")
        parser.add_argument("--gpu", action="store_true", help="train and infer with CUDA (an error when absent)")
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default, all cores)")
        parser.add_argument(
            "--val-in-training",
            action="store_true",
            help="uc2-fold K: train on the validation patients too, as use case 2's published protocol "
            "(default: held out, as the original's 10%%)",
        )
        parser.add_argument(
            "--model-choice",
            choices=("best", "last"),
            default="best",
            help="outputs from the lowest-validation-loss epoch (the original's) or the last epoch",
        )

    def add_commands(self, sub: Any) -> None:
        super().add_commands(sub)
        for demo in (False, True):
            name = "demo-unet-vs-caffe" if demo else "unet-vs-caffe"
            p = sub.add_parser(
                name,
                help="the U-Net beside Caffe use case 2 on one fold"
                + (" (GENERATED cohort, CPU, minutes)" if demo else ""),
            )
            if not demo:
                p.add_argument("--data", type=Path, required=True, help="epi.tgz or its extracted folder")
            p.add_argument("--work", type=Path, default=Path(f"runs/{name}"))
            p.add_argument("--fold", type=int, default=1, help="use case 2's fold (1..5)")
            p.add_argument(
                "--iter",
                dest="iterations",
                type=int,
                default=200 if demo else 600000,
                help="Caffe training iterations (published 600000)",
            )
            p.add_argument(
                "--infer-mode", default="fcn" if demo else "exact", choices=sorted(ENGINES), help="Caffe step-5 engine"
            )
            p.add_argument(
                "--score-from",
                choices=("npy", "png"),
                default="npy",
                help="both sides scored from their float maps (default) or from the PNGs each wrote",
            )
            self._common(p, demo)
            add_force_argument(p)
            p.set_defaults(func=lambda a, demo=demo: self.run_compare(a, demo))
        o = sub.add_parser("unet-output", help="U-Net outputs of images (make_output_unet_cmd.py)")
        o.add_argument("input_pattern", nargs="*", help="files, one wildcard, or a .tsv (first column)")
        o.add_argument("-p", "--patchsize", type=int, default=256)
        o.add_argument("-s", "--batchsize", type=int, default=10)
        o.add_argument("-o", "--outdir", type=Path, default=Path("./output/"))
        o.add_argument("-r", "--resize", type=float, default=1.0)
        o.add_argument(
            "-m",
            "--model",
            type=Path,
            default=Path("epistroma_unet_best_model.pth"),
            help="checkpoint (the original's default best_model.pth was not the name it saved, Q6)",
        )
        o.add_argument("-f", "--force", action="store_true", help="recompute existing outputs")
        o.add_argument("-b", "--basepath", default="", help="prefix of the file names (for a .tsv)")
        o.add_argument("--gpu", action="store_true")
        o.add_argument("--no-npy", action="store_true", help="do not write <stem>_prob.npy")
        o.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
        o.set_defaults(func=self.run_output)

    # ------------------------------------------------------------------ running
    def config(self, args: argparse.Namespace, data: Path, data_recipe: recipes.Recipe | None = None) -> Any:
        """The :class:`pipeline.usecases.unet.runner.Config` of the parsed options (``data``: the data
        folder found or made; ``data_recipe``: its recipe, default the folder's)."""
        from pipeline.usecases.unet.runner import Config
        from pipeline.usecases.unet.train import TrainParams

        return Config.from_args(
            args,
            data=data,
            data_recipe=data_recipe,
            split=getattr(args, "split", "original"),
            db=DBParams(args.db_patch, args.db_stride, args.mirror_pad, args.resize, args.mask_values),
            train=TrainParams(
                epochs=args.epochs,
                batch_size=args.batch_size,
                patch_size=args.patch_size,
                edge_weight=args.edge_weight,
                val_augment=not args.clean_val,
                wf=args.wf,
                depth=args.depth,
                seed=args.seed,
            ),
            out_patch=args.patch_size,
            out_batch=args.out_batch,
            val_in_training=args.val_in_training,
            model_choice=args.model_choice,
        )

    def _data(self, args: argparse.Namespace, demo: bool) -> tuple[Path, Any]:
        """(data folder, its recipe): the generated cohort as a stage (made once per seed), or the user's data."""
        if demo:
            return self.demo_data(args.work, args.seed, getattr(args, "force", False))
        return self.prepare_data(args.data, args.work / "data"), recipes.source(args.data, memo=args.work / "data")

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        require_torch(args.threads)
        from pipeline.usecases.unet import runner

        summary = runner.run(self.config(args, *self._data(args, demo)), stages)
        if demo:
            summary["cohort"] = "GENERATED (synthetic): the numbers show the pipeline works, nothing about epithelium"
        return summary

    def run_compare(self, args: argparse.Namespace, demo: bool) -> dict:
        require_torch(args.threads)
        from pipeline.usecases.unet import compare

        uc2 = Epithelium()
        sp = SolverParams(max_iter=args.iterations)
        if demo:
            sp.test_interval, sp.snapshot, sp.display = 100, 100, 20
        opt = compare.Options(
            fold=args.fold,
            caffe_iterations=args.iterations,
            caffe_max_positive=uc2.demo_max_positive if demo else uc2.max_positive,
            caffe_infer_mode=args.infer_mode,
            caffe_solver=sp,
            val_in_training=args.val_in_training,
            score_from=args.score_from,
            threads=args.threads,
            demo=demo,
        )
        summary = compare.run(uc2, self.config(args, *self._data(args, demo)), opt)
        if demo:
            summary["cohort"] = "GENERATED (synthetic): the numbers show the pipeline works, nothing about epithelium"
        return summary

    def run_output(self, args: argparse.Namespace) -> dict:
        require_torch(args.threads)
        from pipeline.usecases.unet import output

        files = output.input_files(args.input_pattern, args.basepath)
        return output.run(
            files,
            args.model,
            args.outdir,
            args.patchsize,
            args.batchsize,
            args.resize,
            args.force,
            args.gpu,
            save_npy=not args.no_npy,
        )

    # ------------------------------------------------------------------ data
    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        """Use case 2's generated cohort drawn at 250x250 and enlarged to DEMO_SIZE."""
        folder = Path(folder)
        if not any(folder.glob("*_mask.png")):
            enlarged_cohort(folder, DEMO_PATIENTS, DEMO_SIZE, seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic epithelium images), not real tissue", folder)
        return folder
