"""The U-Net use case end to end: a graph of stages (:mod:`pipeline.graph`) dbs -> train -> outputs -> scores.

Work folder:

    WORK/split.json                              patients of train / val / test (and how they were split)
    WORK/epistroma_{train,val}.pytable           make_hdf5.py's databases (stage dbs)
    WORK/epistroma_unet_{best,last}_model.pth    checkpoints (stage train)
    WORK/runs/                                   TensorBoard event files (`tensorboard --logdir WORK/runs`)
    WORK/history.csv, WORK/unet_training.png     per-epoch losses and validation scalars, and their plot
    WORK/output/<stem>_{class,prob}.png, .npy    outputs of the test patients' images (stage outputs)
    WORK/validation/<stem>_...                   outputs of the validation patients' images (stage
                                                 validation-outputs, run with outputs when ``validation_outputs``)
    WORK/scores.json, WORK/scores.md             pixel scores of the test images (use case 2's scoring)
    WORK/<stage>.recipe.json                     what made each stage's files (:mod:`pipeline.recipes`)

Every stage is a recipe stage: skipped when done with the same recipe, resumed when interrupted
with it, refused when made with other options (or with ``force`` made again, with every stage after
it). The pytables' recipe is the data's, the split's images and make_hdf5.py's parameters; the
training's is the pytables' and the trainer's parameters except ``epochs``: an interrupted training,
or one asked for more epochs than its last checkpoint holds, goes on from that checkpoint (each
epoch reseeds from the seed and its number, so it ends as an uninterrupted run of those epochs
would); asked for fewer, it is done. The outputs' input is the chosen checkpoint by sha256 (the
recipe outputs had before the graph): outputs of another model (retrained, or trained further)
are refused, or with ``force`` recomputed.

A Python caller builds a :class:`Config` and calls :func:`run` (no argparse)::

    cfg = Config(data=Path("epi"), work=Path("runs/unet"), train=TrainParams(epochs=10))
    run(cfg)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import atomic, download, metrics, recipes
from pipeline.graph import Graph, Stage
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.run_options import RunOptions
from pipeline.usecases import epi
from pipeline.usecases.unet import checkpoint, database, output
from pipeline.usecases.unet import split as splits
from pipeline.usecases.unet.database import DBParams
from pipeline.usecases.unet.train import HISTORY, PLOT, RUNS, TrainParams, train, trained_summary

log = logging.getLogger(__name__)

STAGES = ("dbs", "train", "outputs", "scores")
#: Which checkpoint makes the outputs: the lowest validation loss (the original's) or the last epoch.
MODEL_CHOICES = ("best", "last")
#: Stage of the validation images' outputs, run when ``outputs`` is asked (``validation_outputs``).
VALIDATION_OUTPUTS = "validation-outputs"


@dataclass(frozen=True, kw_only=True)
class Config(RunOptions):
    """Options of one U-Net run: the shared run options (``work``, ``seed``, ``gpu``, ``force``,
    ``show_progress``; the Caffe ones are unused) and the U-Net's own."""

    data: Path
    split: str = "original"
    db: DBParams = field(default_factory=DBParams)
    train: TrainParams = field(default_factory=TrainParams)
    out_patch: int = 256
    out_batch: int = 10
    val_in_training: bool = False  # uc2-fold K: train on the validation patients too (use case 2's protocol)
    model_choice: str = "best"  # "best": lowest validation loss (the original's); "last": the last epoch
    validation_outputs: bool = False  # also write the validation images' outputs (WORK/validation/)
    data_recipe: recipes.Recipe | None = None  # the data's recipe (the demo's cohort stage); None: cfg.data's

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "data", Path(self.data))

    def checkpoint_name(self) -> str:
        """The checkpoint the outputs come from (``model_choice``)."""
        if self.model_choice not in MODEL_CHOICES:
            raise ValueError(f"--model-choice {self.model_choice!r}: use one of {', '.join(MODEL_CHOICES)}")
        return checkpoint.BEST if self.model_choice == "best" else checkpoint.LAST


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


@dataclass(frozen=True)
class Roles:
    """The split of a run and the images of each role, read from the data folder."""

    split: splits.Split
    by_patient: dict[str, list[Path]]

    def images(self, patients: tuple[str, ...]) -> list[Path]:
        return [i for p in patients for i in self.by_patient[p]]

    @property
    def test(self) -> list[Path]:
        """The test patients' images (scored)."""
        return self.images(self.split.test)

    def validation(self, cfg: Config) -> list[Path]:
        """The validation patients' images whose outputs are written (``validation_outputs``, and
        only when they are not the test images)."""
        return self.images(self.split.val) if cfg.validation_outputs and self.split.val != self.split.test else []


def roles(cfg: Config) -> Roles:
    """The split of ``cfg`` over its data folder's patients."""
    by_patient = patients_and_images(cfg.data)
    return Roles(make_split(by_patient, cfg.split, cfg.seed, cfg.val_in_training), by_patient)


def score(out_dir: Path, images: list[Path], factor: float = 1.0) -> dict:
    """Pooled pixel scores of the class maps (argmax of ``<stem>_prob.npy``) against the masks,
    with use case 2's :func:`pipeline.usecases.epi.score_maps` (its masks, its pixels)."""
    _, classes, truths = epi.score_maps(out_dir, images, factor, 1, "npy")
    pred = np.concatenate([c.ravel() for c in classes])
    return metrics.pixel_scores(pred, np.concatenate([t.ravel() for t in truths]))


def markdown(s: dict, title: str) -> str:
    """The pooled pixel scores ``s`` (:func:`score` and its images) as a one-row table under ``title``."""
    scores = [fixed(s[k]) for k in ("f_score", "precision", "recall", "accuracy")]
    header = ["images", "pixels", "F", "precision", "recall", "accuracy"]
    return document(f"### {title}", pipe_table(header, [[len(s["images"]), s["n"], *scores]]))


def model_info(cfg: Config) -> dict:
    """Which checkpoint makes the outputs and of which epoch: {"choice", "checkpoint", "epoch"}."""
    chosen = cfg.work / cfg.checkpoint_name()
    return {"choice": cfg.model_choice, "checkpoint": chosen.name, "epoch": int(checkpoint.load(chosen)["epoch"])}


def _model_recipe(path: Path, memo: dict) -> recipes.Recipe:
    """The outputs' input: the checkpoint ``path`` by sha256 (hashed once while it is unchanged)."""
    if not path.is_file():
        raise recipes.MissingInput(f"{path}: no trained model (made by the train stage)")
    st = path.stat()
    ident = (st.st_size, st.st_mtime_ns, st.st_ino)
    if memo.get("ident") != ident:
        memo.update(ident=ident, sha256=download.sha256_of(path))
    return {**recipes.source(path, sha256=memo["sha256"]), "label": "model"}


def _epochs_short(work: Path, epochs: int) -> list[Path]:
    """[the last checkpoint] when it holds fewer than ``epochs`` epochs (training goes on from it)."""
    last = work / checkpoint.LAST
    if not last.is_file():
        return []  # a missing output: the run trains again
    done = int(checkpoint.load(last)["epoch"])
    if done >= epochs:
        return []
    log.info(
        "train: the last checkpoint is of epoch %d, this run asks %d epochs: training goes on from it", done, epochs
    )
    return [last]


def graph(cfg: Config, notes: dict | None = None) -> Graph:
    """The stages of a U-Net run: dbs -> train -> outputs, validation-outputs -> scores (see the module
    docstring). ``notes`` (a dict) receives what the stages that compute measure: "dbs_seconds",
    "outputs" and "validation_outputs" (:func:`pipeline.usecases.unet.output.run`'s reports)."""
    notes = {} if notes is None else notes
    work = cfg.work
    r = roles(cfg)
    sp = r.split
    test_images, val_images = r.test, r.validation(cfg)
    pytables = database.pytable_paths(work)
    g = Graph()

    def make_dbs() -> None:
        t = time.perf_counter()
        split = {"train": pairs_of(sp.train, r.by_patient), "val": pairs_of(sp.val, r.by_patient)}
        database.build(pytables, split, cfg.db, cfg.data, cfg.show_progress)
        notes["dbs_seconds"] = round(time.perf_counter() - t, 1)

    g.add(
        Stage(
            "dbs",
            work,
            options={
                "split": cfg.split,
                "seed": cfg.seed,
                "val_in_training": cfg.val_in_training,
                **cfg.db.options(),
                "train_images": [i.name for i in r.images(sp.train)],
                "val_images": [i.name for i in r.images(sp.val)],
            },
            inputs={"data": lambda: cfg.data_recipe or recipes.source(cfg.data)},
            outputs=[pytables["train"].name, pytables["val"].name],
            what="the U-Net's pytables",
            make=make_dbs,
        )
    )
    g.add(
        Stage(
            "train",
            work,
            options=cfg.train.options(),
            inputs={"dbs": "dbs"},
            outputs=[checkpoint.LAST, HISTORY],
            byproducts=[checkpoint.BEST, PLOT, RUNS],
            what="the trained U-Net",
            make=lambda: train(work, pytables, cfg.train, cfg.gpu, cfg.show_progress),
            incomplete=lambda: _epochs_short(work, cfg.train.epochs),
        )
    )
    chosen = work / cfg.checkpoint_name()
    memo: dict = {}
    more = {} if cfg.model_choice == "best" else {"model_choice": cfg.model_choice}

    def maps_stage(name: str, images: list[Path], folder: str, key: str, what: str, optional: bool = False) -> Stage:
        """Step 5 of the U-Net on ``images`` into WORK/``folder``, its report in ``notes[key]``
        (``optional``: left out of the run when there are no images)."""
        return Stage(
            name,
            work,
            options={
                "patch": cfg.out_patch,
                "batch": cfg.out_batch,
                "resize": cfg.db.resize,
                "images": [i.name for i in images],
                **more,
            },
            inputs={"model": lambda: _model_recipe(chosen, memo)},
            outputs=[folder],
            what=what,
            make=lambda: notes.update(
                {
                    key: output.run(
                        images,
                        chosen,
                        work / folder,
                        cfg.out_patch,
                        cfg.out_batch,
                        cfg.db.resize,
                        gpu=cfg.gpu,
                        show_progress=cfg.show_progress,
                    )
                }
            ),
            when=(lambda: bool(images)) if optional else None,
        )

    g.add(maps_stage("outputs", test_images, "output", "outputs", "the U-Net's outputs of the test images"))
    g.add(
        maps_stage(
            VALIDATION_OUTPUTS,
            val_images,
            "validation",
            "validation_outputs",
            "the U-Net's outputs of the validation images",
            optional=True,
        )
    )

    def write_scores() -> None:
        sc = {
            **score(work / "output", test_images, cfg.db.resize),
            "images": [i.name for i in test_images],
            "split": sp.mode,
            "model": model_info(cfg),
        }
        atomic.write_text(work / "scores.json", json.dumps(sc, indent=1))
        atomic.write_text(work / "scores.md", markdown(sc, f"U-Net, pixel level, test images of split {sp.mode}"))

    g.add(
        Stage(
            "scores",
            work,
            options={"resize": cfg.db.resize},
            inputs={"outputs": "outputs"},
            outputs=["scores.json", "scores.md"],
            what="the U-Net's scores",
            make=write_scores,
        )
    )
    return g


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run ``stages`` (and validation-outputs with outputs) of :func:`graph`; returns (and writes to
    WORK/summary.json) the summary, read from the files the stages made."""
    t0 = time.time()
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    cfg.train.check()
    r = roles(cfg)
    sp = r.split
    atomic.write_text(work / "split.json", json.dumps({**sp.as_dict(), "seed": cfg.seed}, indent=1))
    log.info("split %s: %d train, %d val, %d test patients", sp.mode, len(sp.train), len(sp.val), len(sp.test))
    notes: dict = {}
    g = graph(cfg, notes)
    g.run(set(stages) | ({VALIDATION_OUTPUTS} if "outputs" in stages else set()), force=cfg.force)
    summary: dict = {"split": sp.as_dict()}
    if "dbs" in stages:
        summary["dbs_seconds"] = notes.get("dbs_seconds", 0.0)
    if "train" in stages:
        summary["training"] = trained_summary(work, database.pytable_paths(work), cfg.train, cfg.gpu)
    if "outputs" in stages or "scores" in stages:
        summary["model"] = model_info(cfg)
    if "outputs" in stages:
        for key, images in (("outputs", r.test), ("validation_outputs", r.validation(cfg))):
            if key == "outputs" or images:
                summary[key] = notes.get(key) or {"computed": [], "skipped": [str(i) for i in images]}
    if "scores" in stages:
        summary["scores"] = json.loads((work / "scores.json").read_text())
        summary["table"] = str(work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary
