"""Use case 6 end to end: data -> patches -> lists -> dbs -> prototxt -> train -> evaluate.

Every stage skips finished work and writes atomically, so a rerun after an interruption resumes
(training from the newest Caffe solverstate). Work folder layout (names of the original):

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

from pipeline import atomic, databases, lists, templates, training
from pipeline.usecases.base import Figure
from pipeline.usecases.idc import evaluation
from pipeline.usecases.idc.dataset import load_split, prepare_idc
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
    figures: tuple[Figure, ...] = ()     # published figures for the evaluation table


def stage_lists(work: Path) -> dict[str, Path]:
    """Space-separated copies of train_w32_1.txt and test_w32_1.txt for convert_imageset."""
    out = {}
    for case in ("train", "test"):
        src = work / "lists" / f"{case}_w32_1.txt"
        dst = work / "lists" / "space" / f"{case}_w32_1.txt"
        if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
            n = lists.space_copy(src, dst)
            log.info("lists: %s (%d lines, space-separated)", dst, n)
        out[case] = dst
    return out


def stage_dbs(cfg: Config, space_lists: dict[str, Path]) -> tuple[Path, Path, Path]:
    """DB_train_1, DB_test_1 and the mean DB_train_w32_1.binaryproto (skipped when present)."""
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


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the requested stages in order; returns a summary dict (also written to WORK/summary.json)."""
    t0 = time.time()
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {"variant": cfg.variant, "work": str(work)}
    root = prepare_idc(cfg.data, work / "data")
    if "patches" in stages:
        rep = run_patches(root, work, cfg.variant, cfg.split_dir, cfg.jobs, cfg.skip_bad, cfg.show_progress)
        summary["patches"] = rep["counts"]
        summary["missing_patients"] = rep["missing_patients"]
        summary["skipped"] = len(rep["skipped"])
    space = stage_lists(work) if "lists" in stages or "dbs" in stages else {}
    model_dir = work / "models"
    solver_path = model_dir / "1-alexnet_solver_ada.prototxt"
    if "dbs" in stages:
        stage_dbs(cfg, space)
    if "prototxt" in stages:
        n_test = len(lists.read_list(work / "lists" / "space" / "test_w32_1.txt"))
        params = dataclasses.replace(cfg.solver, max_iter=cfg.iterations, random_seed=cfg.solver.random_seed
                                     if cfg.solver.random_seed is not None else cfg.seed)
        ff = templates.render_fold(model_dir, "1", work / "DB_train_1", work / "DB_test_1",
                                   work / "DB_train_w32_1.binaryproto", n_test, gpu=cfg.gpu, dropout=cfg.dropout,
                                   solver=params, snapshot_name=f"caffenet_train_{VARIANTS[cfg.variant].released}"
                                   + ("_dropout" if cfg.dropout else ""))
        solver_path = ff.solver
    model = None
    if "train" in stages:
        res = training.train(solver_path, gpu=cfg.gpu, show_progress=cfg.show_progress)
        model = res.model
        summary["model"] = str(model)
        summary["training_log_csv"] = str(res.csv)
    if "evaluate" in stages:
        model = model or training.final_model(solver_path)
        split = load_split(cfg.split_dir)
        result = evaluation.evaluate(model, work / "DB_train_w32_1.binaryproto", cfg.variant,
                                     work / "eval" / "metrics.json", patients_dir=root, patients=split["test"],
                                     oversample=cfg.oversample, dropout=cfg.dropout, gpu=cfg.gpu,
                                     figures=cfg.figures, show_progress=cfg.show_progress)
        summary["overall"] = result["overall"]
        summary["table"] = str(work / "eval" / "metrics.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
