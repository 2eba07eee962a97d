"""The U-Net use case end to end: dbs -> train -> outputs -> scores.

Work folder:

    WORK/split.json                              patients of train / val / test (and how they were split)
    WORK/epistroma_{train,val}.pytable           make_hdf5.py's databases (WORK/pytables.json: what made them)
    WORK/epistroma_unet_{best,last}_model.pth    checkpoints (WORK/train.json: the options that made them)
    WORK/runs/                                   TensorBoard event files (`tensorboard --logdir WORK/runs`)
    WORK/history.csv, WORK/unet_training.png     per-epoch losses and validation scalars, and their plot
    WORK/output/<stem>_{class,prob}.png, .npy    outputs of the test patients' images
    WORK/validation/<stem>_...                   outputs of the validation patients' images (``validation_outputs``)
    WORK/scores.json, WORK/scores.md             pixel scores of the test images (use case 2's scoring)
    WORK/{outputs,scores}.recipe.json            what made them (:mod:`pipeline.recipes`; the model by its sha256)

A rerun never reuses work made with other options: the databases are rebuilt when their inputs or
parameters changed, training resumes only with the same options (else it is refused, or with
``force`` started over), and the outputs and scores are stages of :mod:`pipeline.recipes` whose
input is the best checkpoint (by sha256): outputs of another model are refused, or with ``force``
recomputed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import atomic, download, metrics, recipes
from pipeline.usecases import epi
from pipeline.usecases.unet import split as splits
from pipeline.usecases.unet.database import DBParams
from pipeline.usecases.unet.train import TrainParams

log = logging.getLogger(__name__)

STAGES = ("dbs", "train", "outputs", "scores")
#: Which checkpoint makes the outputs: the lowest validation loss (the original's) or the last epoch.
MODEL_CHOICES = ("best", "last")


@dataclass
class Config:
    """Options of one U-Net run."""

    data: Path
    work: Path
    split: str = "original"
    seed: int = 1
    db: DBParams = field(default_factory=DBParams)
    train: TrainParams = field(default_factory=TrainParams)
    out_patch: int = 256
    out_batch: int = 10
    gpu: bool = False
    show_progress: bool = True
    force: bool = False  # start training over / recompute outputs made with other options
    val_in_training: bool = False  # uc2-fold K: train on the validation patients too (use case 2's protocol)
    model_choice: str = "best"  # "best": lowest validation loss (the original's); "last": the last epoch
    validation_outputs: bool = False  # also write the validation images' outputs (WORK/validation/)

    def checkpoint_name(self) -> str:
        """The checkpoint the outputs come from (``model_choice``)."""
        from pipeline.usecases.unet.checkpoint import BEST, LAST

        if self.model_choice not in MODEL_CHOICES:
            raise ValueError(f"--model-choice {self.model_choice!r}: use one of {', '.join(MODEL_CHOICES)}")
        return BEST if self.model_choice == "best" else LAST


def patients_and_images(folder: Path) -> dict[str, list[Path]]:
    """Use case 2's patients and images: the same listing (patients without images included), so
    that ``uc2-fold K`` assigns the folds use case 2 assigns."""
    by_patient = epi.images_by_patient(folder)
    if not any(by_patient.values()):
        raise FileNotFoundError(f"{folder}: no <patient>_<n>.tif with <patient>_<n>_mask.png")
    return by_patient


def make_split(by_patient: dict[str, list[Path]], text: str, seed: int, val_in_training: bool = False) -> splits.Split:
    """The patients of each role for ``--split`` ``text`` (``val_in_training``: uc2-fold only)."""
    mode, fold = splits.parse(text)
    patients = list(by_patient)
    if mode == "original":
        if val_in_training:
            raise ValueError("--val-in-training applies to --split 'uc2-fold K' (the original split holds out 10%)")
        return splits.original_split(patients, seed)
    return splits.uc2_fold_split(patients, fold, seed, val_in_training)


def pairs_of(patients: tuple[str, ...], by_patient: dict[str, list[Path]]) -> list[tuple[Path, Path]]:
    return [(img, epi.mask_path(img)) for p in patients for img in by_patient[p]]


def score(out_dir: Path, images: list[Path], factor: float = 1.0) -> dict:
    """Pooled pixel scores of the class maps (argmax of ``<stem>_prob.npy``) against the masks,
    with use case 2's :func:`pipeline.usecases.epi.score_maps` (its masks, its pixels)."""
    import numpy as np

    _, classes, truths = epi.score_maps(out_dir, images, factor, 1, "npy")
    pred = np.concatenate([c.ravel() for c in classes])
    return metrics.pixel_scores(pred, np.concatenate([t.ravel() for t in truths]))


def markdown(s: dict, title: str) -> str:
    """The pooled pixel scores ``s`` (:func:`score` and its images) as a one-row table under ``title``."""
    from pipeline.report.mdtable import document, fixed, pipe_table

    scores = [fixed(s[k]) for k in ("f_score", "precision", "recall", "accuracy")]
    header = ["images", "pixels", "F", "precision", "recall", "accuracy"]
    return document(f"### {title}", pipe_table(header, [[len(s["images"]), s["n"], *scores]]))


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run ``stages``; returns (and writes to WORK/summary.json) the summary."""
    from pipeline.usecases.unet import database

    t0 = time.time()
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg.train.check()
    by_patient = patients_and_images(cfg.data)
    sp = make_split(by_patient, cfg.split, cfg.seed, cfg.val_in_training)
    atomic.write_text(work / "split.json", json.dumps({**sp.as_dict(), "seed": cfg.seed}, indent=1))
    log.info("split %s: %d train, %d val, %d test patients", sp.mode, len(sp.train), len(sp.val), len(sp.test))
    summary: dict = {"split": sp.as_dict()}
    dbs = {ph: work / f"{database.DATANAME}_{ph}.pytable" for ph in ("train", "val")}
    if "dbs" in stages:
        td = time.perf_counter()
        dbs = database.build(
            work,
            {"train": pairs_of(sp.train, by_patient), "val": pairs_of(sp.val, by_patient)},
            cfg.db,
            Path(cfg.data),
            cfg.show_progress,
        )
        summary["dbs_seconds"] = round(time.perf_counter() - td, 1)
    if "train" in stages:
        from pipeline.usecases.unet.train import train

        summary["training"] = train(work, dbs, cfg.train, cfg.gpu, cfg.show_progress, cfg.force)
    test_images = [i for p in sp.test for i in by_patient[p]]
    val_images = [i for p in sp.val for i in by_patient[p]] if cfg.validation_outputs and sp.val != sp.test else []
    if "outputs" in stages or "scores" in stages:
        from pipeline.usecases.unet import checkpoint, output

        chosen = work / cfg.checkpoint_name()
        if not chosen.is_file():
            raise recipes.MissingInput(f"{chosen}: no trained model (made by the train stage)")
        model_input = {**recipes.source(chosen, sha256=download.sha256_of(chosen)), "label": "model"}
        more = {} if cfg.model_choice == "best" else {"model_choice": cfg.model_choice}
        summary["model"] = {
            "choice": cfg.model_choice,
            "checkpoint": chosen.name,
            "epoch": int(checkpoint.load(chosen)["epoch"]),
        }

        def outputs_of(images: list[Path], folder: str, made: dict) -> Callable[[], None]:
            return lambda: made.update(
                output.run(
                    images,
                    chosen,
                    work / folder,
                    cfg.out_patch,
                    cfg.out_batch,
                    cfg.db.resize,
                    gpu=cfg.gpu,
                    show_progress=cfg.show_progress,
                )
            )

        def maps_stage(name: str, images: list[Path], folder: str, key: str, what: str) -> recipes.Recipe:
            """Step 5 of the U-Net on ``images`` into WORK/``folder`` (one recipe stage), noting in the
            summary's ``key`` what was computed or skipped."""
            made: dict = {}
            rec = recipes.stage(
                name,
                work,
                options={
                    "patch": cfg.out_patch,
                    "batch": cfg.out_batch,
                    "resize": cfg.db.resize,
                    "images": [i.name for i in images],
                    **more,
                },
                inputs={"model": model_input},
                outputs=[folder],
                what=what,
                run="outputs" in stages,
                force=cfg.force,
                make=outputs_of(images, folder, made),
            )
            if "outputs" in stages:
                summary[key] = made or {"computed": [], "skipped": [str(i) for i in images]}
            return rec

        out_rec = maps_stage("outputs", test_images, "output", "outputs", "the U-Net's outputs of the test images")
        if val_images:
            maps_stage(
                "validation-outputs",
                val_images,
                "validation",
                "validation_outputs",
                "the U-Net's outputs of the validation images",
            )

        def write_scores() -> None:
            sc = {
                **score(work / "output", test_images, cfg.db.resize),
                "images": [i.name for i in test_images],
                "split": sp.mode,
                "model": summary["model"],
            }
            atomic.write_text(work / "scores.json", json.dumps(sc, indent=1))
            atomic.write_text(work / "scores.md", markdown(sc, f"U-Net, pixel level, test images of split {sp.mode}"))

        if "scores" in stages:
            recipes.stage(
                "scores",
                work,
                options={"resize": cfg.db.resize},
                inputs={"outputs": out_rec},
                outputs=["scores.json", "scores.md"],
                what="the U-Net's scores",
                force=cfg.force,
                make=write_scores,
            )
            summary["scores"] = json.loads((work / "scores.json").read_text())
            summary["table"] = str(work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary
