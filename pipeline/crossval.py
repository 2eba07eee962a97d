"""Patient k-fold cross-validation of an image use case, end to end:
patches -> folds -> dbs -> prototxt -> train -> outputs -> scores.

The use case (an object with the hooks of ``pipeline.usecases.base.CrossValidatedUseCase``) samples
the patches, lists its images per patient, and scores each fold's outputs; folds, databases, nets,
training and step 5 are shared and know no use case by name.

Work folder (names of the original):

    WORK/subs/                                  patches
    WORK/lists/{train,test}_w32_<k>.txt         space-separated (common step 2), and *_parent_<k>.txt
    WORK/DB_{train,test}_<k>, WORK/DB_train_w32_<k>.binaryproto
    WORK/models/<k>-alexnet_solver_ada.prototxt ... <k>_caffenet_train_w32_iter_<N>.caffemodel
    WORK/output/<k>/<image>_{prob,class}.png    step 5 for the fold's test patients (and validation)
    WORK/scores.json, WORK/scores.md
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline import atomic, databases, folds, inference, lists, sampling, templates, training

log = logging.getLogger(__name__)

STAGES = ("patches", "folds", "dbs", "prototxt", "train", "outputs", "scores")


class FoldedUseCase(Protocol):
    """The hooks :func:`run` calls (implemented by ``CrossValidatedUseCase`` subclasses)."""
    name: str
    magnification: float
    validation: bool

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]: ...
    def sample_patches(self, cfg: "Config") -> dict: ...
    def score_fold(self, cfg: "Config", k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict: ...
    def pool(self, cfg: "Config", fold_scores: list[dict]) -> dict: ...
    def markdown(self, scores: dict) -> str: ...


@dataclass
class Config:
    """Options of one cross-validated run (use-case specifics in ``params`` and ``scoring``)."""
    data: Path
    work: Path
    params: Any = None                  # the use case's sampling parameters (a frozen dataclass)
    scoring: dict = field(default_factory=dict)   # the use case's scoring options
    iterations: int = 600000
    seed: int = 1
    nfolds: int = 5
    jobs: int = 1                       # folds trained at the same time
    gpu: bool = False
    caffe_shuffle: bool = False
    solver: templates.SolverParams = field(default_factory=templates.SolverParams)
    infer_mode: str = "exact"
    stride: int = 1
    show_progress: bool = True


# --------------------------------------------------------------------------- per-fold stages

def fold_names(k: int | str) -> dict[str, str]:
    """Names of fold ``k``'s databases, mean and net files ("1", or "1_2" for fold 1 level 2, whose
    nets the original named "1-2-...")."""
    return {"train_db": f"DB_train_{k}", "test_db": f"DB_test_{k}", "mean": f"DB_train_w32_{k}.binaryproto",
            "files": str(k).replace("_", "-")}


def stage_folds(cfg: Config, report: dict) -> dict[str, int]:
    """Seeded patient folds and their lists (lists/{train,test}_w32_<k>.txt, *_parent_<k>.txt)."""
    patients = report["patients"]
    assignment = folds.assign_folds(patients, cfg.nfolds, cfg.seed)
    folds.write_fold_lists(cfg.work / "lists", patients, sampling.entries_from_report(report), assignment, cfg.nfolds)
    atomic.write_text(cfg.work / "lists" / "folds.json", json.dumps(assignment, indent=1))
    return assignment


def stage_dbs(cfg: Config, k: int | str, subs: Path | None = None) -> None:
    """DB_train_<k>, DB_test_<k> (convert_imageset over the patches in ``subs``, default WORK/subs)
    from lists/{train,test}_w32_<k>.txt, and the mean (compute_image_mean), if absent."""
    n = fold_names(k)
    for side, db in (("train", n["train_db"]), ("test", n["test_db"])):
        path = cfg.work / db
        lst = cfg.work / "lists" / f"{side}_w32_{k}.txt"
        if path.is_dir():
            continue
        entries = lists.read_list(lst)
        if not entries:
            log.warning("fold %s: %s list is empty; no %s DB", k, side, side)
            continue
        if not any(e.label == 1 for e in entries):
            log.warning("fold %s: %s list has no positive patches (%d negatives); going on as the original would",
                        k, side, len(entries))
        databases.build_db(subs or cfg.work / "subs", lst, path, seed=cfg.seed, caffe_shuffle=cfg.caffe_shuffle)
    if not (cfg.work / n["mean"]).is_file():
        databases.compute_mean(cfg.work / n["train_db"], cfg.work / n["mean"])


def stage_prototxt(cfg: Config, k: int | str, num_output: int = 2) -> templates.FoldFiles:
    """Solver, train/test net, deploy net and job scripts of fold ``k`` (nets of ``num_output`` classes)."""
    n = fold_names(k)
    test = cfg.work / n["test_db"]
    n_test = len(lists.read_list(cfg.work / "lists" / f"test_w32_{k}.txt")) if test.is_dir() else 0
    sp = templates.SolverParams(**{**cfg.solver.__dict__, "max_iter": cfg.iterations,
                                   "random_seed": cfg.solver.random_seed if cfg.solver.random_seed is not None else cfg.seed})
    return templates.render_fold(cfg.work / "models", str(k), cfg.work / n["train_db"], test if test.is_dir() else None,
                                 cfg.work / n["mean"], n_test, gpu=cfg.gpu, solver=sp, num_output=num_output,
                                 file_prefix=n["files"])


def stage_train(cfg: Config, solvers: dict) -> dict:
    """Train the folds (keys: fold names), ``cfg.jobs`` at a time (each its own `caffe train` process)."""
    def one(k):
        return k, training.train(solvers[k], gpu=cfg.gpu, show_progress=cfg.show_progress and cfg.jobs == 1).model
    with ThreadPoolExecutor(max_workers=max(1, cfg.jobs)) as ex:
        return dict(ex.map(one, sorted(solvers)))


def stage_outputs(cfg: Config, k: int, model: Path, images: list[Path], magnification: float) -> Path:
    """Step 5 of fold ``k``'s model on ``images`` into WORK/output/<k>/ (with the float maps as .npy)."""
    out = cfg.work / "output" / str(k)
    engine = inference.make_engine(cfg.infer_mode, model, cfg.work / fold_names(k)["mean"], gpu=cfg.gpu,
                                   net_dir=cfg.work / "models")
    inference.infer_images(images, engine, out, inference.Options(stride=cfg.stride), resize=magnification,
                           save_npy=True, show_progress=cfg.show_progress)
    return out


# --------------------------------------------------------------------------- the run

def run(uc: FoldedUseCase, cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the stages for all folds; returns (and writes) a summary with per-fold and pooled scores."""
    t0 = time.time()
    cfg.work = Path(cfg.work)
    cfg.work.mkdir(parents=True, exist_ok=True)
    report = uc.sample_patches(cfg)
    assignment = stage_folds(cfg, report)
    ks = list(range(1, cfg.nfolds + 1))
    if "dbs" in stages:
        for k in ks:
            stage_dbs(cfg, k)
    solvers = {k: stage_prototxt(cfg, k).solver for k in ks} if "prototxt" in stages or "train" in stages else {}
    models = stage_train(cfg, solvers) if "train" in stages else {k: training.final_model(s) for k, s in solvers.items()}
    by_patient = uc.images_by_patient(cfg.data)
    summary: dict = {"folds": assignment, "images": report["images"], "problems": report["problems"]}
    if "outputs" in stages or "scores" in stages:
        fold_scores = []
        for k in ks:
            test = [i for p, f in assignment.items() if f == k for i in by_patient[p]]
            # validation images for a threshold: the patients of the next fold (training side of fold k)
            vk = k % cfg.nfolds + 1
            val = [i for p, f in assignment.items() if f == vk for i in by_patient[p]] if uc.validation else []
            out = cfg.work / "output" / str(k)
            if "outputs" in stages:
                stage_outputs(cfg, k, models[k], test + val, uc.magnification)
            if "scores" in stages and test:
                fold_scores.append(uc.score_fold(cfg, k, out, test, val))
        if fold_scores:
            summary["scores"] = uc.pool(cfg, fold_scores)
            atomic.write_text(cfg.work / "scores.json", json.dumps(summary["scores"], indent=1))
            atomic.write_text(cfg.work / "scores.md", uc.markdown(summary["scores"]))
            summary["table"] = str(cfg.work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(cfg.work / "summary.json", json.dumps(summary, indent=1))
    return summary
