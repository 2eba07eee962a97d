"""Use case 6 end to end: data -> patches -> lists -> dbs -> prototxt -> train -> evaluate.

The run is a stage graph (:func:`graph`, run by :meth:`pipeline.graph.Graph.run`): every stage records
its recipe beside its outputs (:mod:`pipeline.recipes`); a rerun with the same options skips finished
work and resumes interrupted work (training from the newest Caffe solverstate); a rerun with other
options is refused, naming the option, unless ``force``. Work folder layout (names of the original,
:mod:`pipeline.artefacts`):

    WORK/subs/                         patches (flat, as the MATLAB script wrote them)
    WORK/lists/*.txt                   faithful TAB lists; WORK/lists/space/ copies for convert_imageset
    WORK/DB_train_1, WORK/DB_test_1    LevelDBs; WORK/DB_train_w32_1.binaryproto the mean
    WORK/models/                       solver, nets, job scripts, snapshots, training log, CSV, plot
    WORK/eval/                         metrics JSON, per-patch CSV, Markdown table, GeoJSON per patient

Calling it from Python needs no argparse::

    cfg = Config(data=Path("data/IDC_regular_ps50_idx5.zip"), work=Path("runs/uc6"), iterations=600000)
    run(cfg, ("patches", "lists", "dbs"))
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import artefacts, atomic, crossval, databases, export, lists, recipes, templates, training
from pipeline.graph import Graph, Stage
from pipeline.run_options import RunOptions
from pipeline.usecases.base import Figure
from pipeline.usecases.idc import evaluation
from pipeline.usecases.idc.dataset import EXPORT, load_split, prepare_idc
from pipeline.usecases.idc.patches import VARIANTS, run_patches

log = logging.getLogger(__name__)

STAGES = ("patches", "lists", "dbs", "prototxt", "train", "evaluate")
#: Use case 6 has one split: its fold is "1" in every name (``DB_train_1``, ``1-alexnet_solver_ada.prototxt``).
FOLD = "1"


@dataclass(frozen=True, kw_only=True)
class Config(RunOptions):
    """Options of one use-case-6 run: the shared ones (:class:`pipeline.run_options.RunOptions`; here
    ``jobs`` counts patch workers, default all cores) and these (those that change numbers are in the README)."""

    data: Path
    variant: str = "crop"
    seed: int | None = databases.DEFAULT_SEED
    jobs: int | None = None
    dropout: bool = False
    split_dir: Path | None = None
    skip_bad: bool = False
    oversample: bool = True
    data_recipe: recipes.Recipe | None = None  # recipe of ``data`` when a stage made it (the demo cohort)
    figures: tuple[Figure, ...] = ()  # published figures for the evaluation table


def stage_lists(work: Path) -> dict[str, Path]:
    """Space-separated copies of train_w32_1.txt and test_w32_1.txt for convert_imageset."""
    out = {}
    for case in ("train", "test"):
        src = artefacts.list_path(work, case, FOLD)
        dst = artefacts.space_list_path(work, case, FOLD)
        n = lists.space_copy(src, dst)
        log.info("lists: %s (%d lines, space-separated)", dst, n)
        out[case] = dst
    return out


def stage_dbs(cfg: Config) -> tuple[Path, Path, Path]:
    """DB_train_1, DB_test_1 and the mean DB_train_w32_1.binaryproto (those present are kept: an
    interrupted stage resumes)."""
    work = cfg.work
    dbs = {}
    for case, name in (("train", artefacts.train_db(FOLD)), ("test", artefacts.test_db(FOLD))):
        db = work / name
        if db.is_dir():
            log.info("dbs: %s exists", db.name)
        else:
            databases.build_db(
                work / "subs",
                artefacts.space_list_path(work, case, FOLD),
                db,
                seed=cfg.seed,
                caffe_shuffle=cfg.caffe_shuffle,
            )
        dbs[case] = db
    mean = artefacts.mean_path(work, FOLD)
    if not mean.is_file():
        databases.compute_mean(dbs["train"], mean)
    return dbs["train"], dbs["test"], mean


def split_option(split: dict[str, list[str]]) -> str:
    """The split as a recipe option: patient counts and a digest of the three lists."""
    return (
        f"{len(split['train'])}/{len(split['val'])}/{len(split['test'])} patients, sha256 {recipes.digest(split, 12)}"
    )


def snapshot_name(cfg: Config) -> str:
    """The snapshot name of the run's variant and net (``caffenet_train_w32_noresize``...)."""
    return artefacts.variant_snapshot(VARIANTS[cfg.variant].released, cfg.dropout)


def model_path(cfg: Config) -> Path:
    """The trained model: WORK/models/1_caffenet_train_<variant>_iter_<N>.caffemodel."""
    return artefacts.model_path(cfg.work, FOLD, cfg.iterations, snapshot_name(cfg))


def export_geojson(work: Path) -> None:
    """A square per test patch, per patient, for QuPath (issue 29), beside the results; again when
    the results are newer (an evaluation recomputed with --force)."""
    eval_dir = work / "eval"
    made = list(eval_dir.glob("*.geojson"))
    if not made or not all(export.is_current(f, eval_dir / "metrics.csv") for f in made):
        for f in made:
            f.unlink()
        export.export_patches(eval_dir / "metrics.csv", EXPORT)


def graph(cfg: Config, root: Path, notes: dict | None = None) -> Graph:
    """The stages of a run: patches -> lists -> dbs -> prototxt -> train -> evaluate (then the GeoJSON
    export). ``root``: the prepared data folder (:func:`pipeline.usecases.idc.dataset.prepare_idc`);
    ``notes``: a dict the train stage adds ``training_log_csv`` to when it trains."""
    work = cfg.work
    notes = {} if notes is None else notes
    split = load_split(cfg.split_dir)
    model_dir = work / "models"
    params = cfg.solver_params()
    snapshot = snapshot_name(cfg)
    model = model_path(cfg)
    solver = artefacts.solver_path(work, FOLD)
    mean = artefacts.mean_path(work, FOLD)
    train_db, test_db = artefacts.train_db(FOLD), artefacts.test_db(FOLD)
    g = Graph()
    g.add(
        Stage(
            "patches",
            work,
            label="patches",
            options={"variant": cfg.variant, "split": split_option(split)},
            inputs={"data": lambda: cfg.data_recipe or recipes.source(cfg.data)},
            outputs=["patches_report.json", "subs"],
            byproducts=["lists/*.txt"],
            what="the patches, their lists and report",
            make=lambda: run_patches(root, work, cfg.variant, cfg.split_dir, cfg.jobs, cfg.skip_bad, cfg.show_progress),
        )
    )
    space = {side: artefacts.space_list_path(work, side, FOLD) for side in ("train", "test")}
    g.add(
        Stage(
            "lists",
            work / "lists",
            label="lists",
            inputs={"patches": "patches"},
            outputs=[f"space/{artefacts.patch_list(side, FOLD)}" for side in ("train", "test")],  # in WORK/lists
            what="the space-separated lists",
            make=lambda: stage_lists(work),
        )
    )
    g.add(
        Stage(
            "dbs",
            work,
            key=FOLD,
            label="dbs",
            options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
            inputs={"lists": "lists"},
            outputs=[train_db, test_db, mean.name],
            byproducts=[f"{train_db}.*", f"{test_db}.*", f"{mean.name}.*"],
            what="the databases and mean",
            make=lambda: stage_dbs(cfg),
        )
    )

    def prototxt() -> None:
        templates.render_fold(
            model_dir,
            FOLD,
            work / train_db,
            work / test_db,
            mean,
            len(lists.read_list(space["test"])),
            gpu=cfg.gpu,
            dropout=cfg.dropout,
            solver=params,
            snapshot_name=snapshot,
        )

    g.add(
        Stage(
            "prototxt",
            model_dir,
            key=FOLD,
            label="prototxt",
            options=crossval.solver_options(params, dropout=cfg.dropout, gpu=cfg.gpu),
            inputs={"dbs": f"dbs {FOLD}"},
            outputs=[solver.name],
            byproducts=[f"{artefacts.files(FOLD)}-*", artefacts.deploy().replace(".prototxt", "*.prototxt")],
            what="the solver and nets",
            make=prototxt,
        )
    )

    def train() -> None:
        res = training.train(solver, gpu=cfg.gpu, show_progress=cfg.show_progress)
        notes["training_log_csv"] = str(res.csv)

    g.add(
        Stage(
            "train",
            model_dir,
            key=FOLD,
            label="train",
            inputs={"prototxt": f"prototxt {FOLD}"},
            outputs=[model.name],
            byproducts=[artefacts.snapshots(FOLD, snapshot)],
            what="the trained model",
            make=train,
        )
    )
    g.add(
        Stage(
            "evaluate",
            work / "eval",
            label="evaluate",
            options={"oversample": cfg.oversample},
            inputs={"model": f"train {FOLD}"},
            outputs=["metrics.json", "metrics.md"],
            byproducts=["metrics.*"],
            what="the evaluation",
            make=lambda: evaluation.evaluate(
                model,
                mean,
                cfg.variant,
                work / "eval" / "metrics.json",
                patients_dir=root,
                patients=split["test"],
                oversample=cfg.oversample,
                dropout=cfg.dropout,
                gpu=cfg.gpu,
                figures=cfg.figures,
                show_progress=cfg.show_progress,
            ),
            after=lambda: export_geojson(work),
        )
    )
    return g


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the requested stages (:func:`graph`; the stages before the last one asked for are checked
    as its inputs); returns a summary dict, built from the files (also written to WORK/summary.json)."""
    t0 = time.time()
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    root = prepare_idc(cfg.data, work / "data")
    notes: dict = {}
    ran = graph(cfg, root, notes).run(stages, force=cfg.force)
    summary: dict = {"variant": cfg.variant, "work": str(work)}
    rep = json.loads((work / "patches_report.json").read_text())
    summary["patches"] = rep["counts"]
    summary["missing_patients"] = rep["missing_patients"]
    summary["skipped"] = len(rep["skipped"])
    summary.update(notes)
    if f"train {FOLD}" in ran:
        summary["model"] = str(model_path(cfg))
    if "evaluate" in ran:
        summary["overall"] = json.loads((work / "eval" / "metrics.json").read_text())["overall"]
        summary["table"] = str(work / "eval" / "metrics.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
