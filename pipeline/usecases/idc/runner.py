"""Use case 6 end to end: data -> patches -> lists -> dbs -> prototxt -> train -> evaluate.

Every stage records its recipe beside its outputs (:mod:`pipeline.recipes`): a rerun with the same
options skips finished work and resumes interrupted work (training from the newest Caffe
solverstate); a rerun with other options is refused, naming the option, unless ``force``. Work folder layout (names of the original):

    WORK/subs/                         patches (flat, as the MATLAB script wrote them)
    WORK/lists/*.txt                   faithful TAB lists; WORK/lists/space/ copies for convert_imageset
    WORK/DB_train_1, WORK/DB_test_1    LevelDBs; WORK/DB_train_w32_1.binaryproto the mean
    WORK/models/                       solver, nets, job scripts, snapshots, training log, CSV, plot
    WORK/eval/                         metrics JSON, per-patch CSV, Markdown table
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import atomic, crossval, databases, export, lists, recipes, templates, training
from pipeline.usecases.base import Figure
from pipeline.usecases.idc import evaluation
from pipeline.usecases.idc.dataset import EXPORT, load_split, prepare_idc
from pipeline.usecases.idc.patches import VARIANTS, run_patches

log = logging.getLogger(__name__)

STAGES = ("patches", "lists", "dbs", "prototxt", "train", "evaluate")


@dataclass
class Config:
    """Options of one use-case-6 run (the ones that change numbers are in the README)."""

    data: Path
    work: Path
    variant: str = "crop"
    iterations: int = 600000
    seed: int | None = databases.DEFAULT_SEED
    caffe_shuffle: bool = False
    gpu: bool = False
    dropout: bool = False
    split_dir: Path | None = None
    skip_bad: bool = False
    jobs: int | None = None
    solver: templates.SolverParams = field(default_factory=templates.SolverParams)
    oversample: bool = True
    show_progress: bool = True
    force: bool = False  # recompute stages whose recipe changed instead of refusing
    data_recipe: recipes.Recipe | None = None  # recipe of ``data`` when a stage made it (the demo cohort)
    figures: tuple[Figure, ...] = ()  # published figures for the evaluation table


def stage_lists(work: Path) -> dict[str, Path]:
    """Space-separated copies of train_w32_1.txt and test_w32_1.txt for convert_imageset."""
    out = {}
    for case in ("train", "test"):
        src = work / "lists" / f"{case}_w32_1.txt"
        dst = work / "lists" / "space" / f"{case}_w32_1.txt"
        n = lists.space_copy(src, dst)
        log.info("lists: %s (%d lines, space-separated)", dst, n)
        out[case] = dst
    return out


def stage_dbs(cfg: Config, space_lists: dict[str, Path]) -> tuple[Path, Path, Path]:
    """DB_train_1, DB_test_1 and the mean DB_train_w32_1.binaryproto (those present are kept: an
    interrupted stage resumes)."""
    work = cfg.work
    dbs = {}
    for case in ("train", "test"):
        db = work / f"DB_{case}_1"
        if db.is_dir():
            log.info("dbs: %s exists", db.name)
        else:
            databases.build_db(work / "subs", space_lists[case], db, seed=cfg.seed, caffe_shuffle=cfg.caffe_shuffle)
        dbs[case] = db
    mean = work / "DB_train_w32_1.binaryproto"
    if not mean.is_file():
        databases.compute_mean(dbs["train"], mean)
    return dbs["train"], dbs["test"], mean


def split_option(split: dict[str, list[str]]) -> str:
    """The split as a recipe option: patient counts and a digest of the three lists."""
    return (
        f"{len(split['train'])}/{len(split['val'])}/{len(split['test'])} patients, sha256 {recipes.digest(split, 12)}"
    )


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the requested stages in order; returns a summary dict (also written to WORK/summary.json).

    Each stage is one :func:`pipeline.recipes.stage` call: skipped when done with the same recipe,
    refused (or recomputed with ``cfg.force``) when an option changed; stages before the last one
    asked for are checked as its inputs.
    """
    t0 = time.time()
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    upto = STAGES[: max(STAGES.index(s) for s in stages) + 1]
    summary: dict = {"variant": cfg.variant, "work": str(work)}
    root = prepare_idc(cfg.data, work / "data")
    split = load_split(cfg.split_dir)
    model_dir = work / "models"
    params = dataclasses.replace(
        cfg.solver,
        max_iter=cfg.iterations,
        random_seed=cfg.solver.random_seed if cfg.solver.random_seed is not None else cfg.seed,
    )
    snapshot = f"caffenet_train_{VARIANTS[cfg.variant].released}" + ("_dropout" if cfg.dropout else "")
    model = model_dir / f"1_{snapshot}_iter_{cfg.iterations}.caffemodel"
    solver_path = model_dir / "1-alexnet_solver_ada.prototxt"

    def step(name: str, folder: Path, **kw) -> recipes.Step:
        return recipes.Step(name, folder, label=name, run=name in stages, force=cfg.force, **kw)

    rec = step(
        "patches",
        work,
        options={"variant": cfg.variant, "split": split_option(split)},
        inputs={"data": cfg.data_recipe or recipes.source(cfg.data)},
        outputs=["patches_report.json", "subs"],
        byproducts=["lists/*.txt"],
        what="the patches, their lists and report",
        make=lambda: run_patches(root, work, cfg.variant, cfg.split_dir, cfg.jobs, cfg.skip_bad, cfg.show_progress),
    ).ensure()
    rep = json.loads((work / "patches_report.json").read_text())
    summary["patches"] = rep["counts"]
    summary["missing_patients"] = rep["missing_patients"]
    summary["skipped"] = len(rep["skipped"])
    if "lists" in upto:
        rec = step(
            "lists",
            work / "lists",
            inputs={"patches": rec},
            outputs=["space/train_w32_1.txt", "space/test_w32_1.txt"],
            what="the space-separated lists",
            make=lambda: stage_lists(work),
        ).ensure()
    if "dbs" in upto:
        space = {case: work / "lists" / "space" / f"{case}_w32_1.txt" for case in ("train", "test")}
        rec = step(
            "dbs",
            work,
            key="1",
            options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
            inputs={"lists": rec},
            outputs=["DB_train_1", "DB_test_1", "DB_train_w32_1.binaryproto"],
            byproducts=["DB_train_1.*", "DB_test_1.*", "DB_train_w32_1.binaryproto.*"],
            what="the databases and mean",
            make=lambda: stage_dbs(cfg, space),
        ).ensure()
    if "prototxt" in upto:

        def prototxt() -> None:
            n_test = len(lists.read_list(work / "lists" / "space" / "test_w32_1.txt"))
            templates.render_fold(
                model_dir,
                "1",
                work / "DB_train_1",
                work / "DB_test_1",
                work / "DB_train_w32_1.binaryproto",
                n_test,
                gpu=cfg.gpu,
                dropout=cfg.dropout,
                solver=params,
                snapshot_name=snapshot,
            )

        rec = step(
            "prototxt",
            model_dir,
            key="1",
            options=crossval.solver_options(params, dropout=cfg.dropout, gpu=cfg.gpu),
            inputs={"dbs": rec},
            outputs=[solver_path.name],
            byproducts=["1-*", "deploy_train32*.prototxt"],
            what="the solver and nets",
            make=prototxt,
        ).ensure()
    if "train" in upto:

        def train() -> None:
            res = training.train(solver_path, gpu=cfg.gpu, show_progress=cfg.show_progress)
            summary["training_log_csv"] = str(res.csv)

        rec = step(
            "train",
            model_dir,
            key="1",
            inputs={"prototxt": rec},
            outputs=[model.name],
            byproducts=[f"1_{snapshot}_*"],
            what="the trained model",
            make=train,
        ).ensure()
        summary["model"] = str(model)
    if "evaluate" in upto:

        def evaluate() -> None:
            evaluation.evaluate(
                model,
                work / "DB_train_w32_1.binaryproto",
                cfg.variant,
                work / "eval" / "metrics.json",
                patients_dir=root,
                patients=split["test"],
                oversample=cfg.oversample,
                dropout=cfg.dropout,
                gpu=cfg.gpu,
                figures=cfg.figures,
                show_progress=cfg.show_progress,
            )

        step(
            "evaluate",
            work / "eval",
            options={"oversample": cfg.oversample},
            inputs={"model": rec},
            outputs=["metrics.json", "metrics.md"],
            byproducts=["metrics.*"],
            what="the evaluation",
            make=evaluate,
        ).ensure()
        # a square per test patch, per patient, for QuPath (issue 29), beside the results; again when
        # the results are newer (an evaluation recomputed with --force)
        made = list((work / "eval").glob("*.geojson"))
        if not made or not all(export.is_current(f, work / "eval" / "metrics.csv") for f in made):
            for f in made:
                f.unlink()
            export.export_patches(work / "eval" / "metrics.csv", EXPORT)
        summary["overall"] = json.loads((work / "eval" / "metrics.json").read_text())["overall"]
        summary["table"] = str(work / "eval" / "metrics.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
