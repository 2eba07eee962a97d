"""Use case 5 end to end, two training stages in patient folds: one stage graph (:func:`graph`).

    patches -> folds -> dbs -> prototxt -> train            stage 1 (shared crossval stages)
    -> probs      step 5 of stage-1 model k on fold k's TRAINING frames   WORK/probs/<k>/
    -> patches2   negatives by stage-1 probability, fold k                WORK/subs_2nd/<k>/, train_w32_<k>_2nd.txt
    -> dbs2 -> prototxt2 -> train2                                         DB_train_<k>_2nd, WORK/models_2nd/
    -> outputs    step 5 of stage-2 model k on fold k's test frames       WORK/output/<k>/
    -> scores     detections matched to the annotated mitoses             WORK/scores.json, scores.md

Stage 2's recipes take stage 1's as inputs (probs <- train <- ... <- patches), so a stage-1 option
changed refuses (or, with ``--force``, recomputes) everything of stage 2 too. Fold ``k``'s stage
2 sees only its own training patients' maps (the most defensible reading of the original, which
hard-coded fold 1): its test frames never touch its training. The stage-2 test database is stage
1's test list of the fold (it never affects the weights). Each stage runs for every fold before
the next one starts; ``-j N`` trains N folds at a time (both stages).

The run's options are a :class:`pipeline.crossval.Config` (``params`` a
:class:`~pipeline.usecases.mitosis.sampling.Params`, ``scoring`` the peak and matching options);
calling it from Python needs no argparse::

    cfg = Config(data=Path("frames"), work=Path("runs/mitosis"), params=Params(), scoring=detection.default_scoring())
    run(cfg)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

from pipeline import artefacts, atomic, crossval, databases, inference, lists, recipes, templates, training
from pipeline.crossval import Config, fold_names, selected_folds, solver_options
from pipeline.graph import Graph, Stage
from pipeline.usecases.mitosis import detection
from pipeline.usecases.mitosis.sampling import images_by_patient, run_stage1
from pipeline.usecases.mitosis.stage2 import run_stage2

log = logging.getLogger(__name__)

STAGES = (
    "patches", "folds", "dbs", "prototxt", "train", "probs",
    "patches2", "dbs2", "prototxt2", "train2", "outputs", "scores",
)  # fmt: skip
STAGE2_SNAPSHOT = artefacts.SNAPSHOT_2ND  #: released: <k>_caffenet_train_w32_2nd_iter_600000.caffemodel
PROBS = "probs"  #: WORK/probs/<k>/: stage 1's maps of fold k's training frames
SUBS2 = "subs_2nd"  #: WORK/subs_2nd/<k>/: stage-2 patches; WORK/subs_2nd/train_w32_<k>_2nd.txt their list
MODELS2 = "models_2nd"  #: WORK/models_2nd/: stage-2 solver, nets and snapshots


def names2(k: int) -> dict[str, str]:
    """Stage 2's names of fold ``k``, as the released files: DB_train_<k>_2nd, DB_train_w32_<k>_2nd.binaryproto."""
    k2 = artefacts.second_stage(k)
    return {
        "train_db": artefacts.train_db(k2),
        "test_db": artefacts.test_db(k2),
        "mean": artefacts.mean(k2),
        "list": artefacts.patch_list("train", k2),
    }


def model1(work: Path, k: int, iterations: int) -> Path:
    """Stage-1 model of fold ``k`` (WORK/models/<k>_caffenet_train_w32_iter_<N>.caffemodel)."""
    return artefacts.model_path(work, k, iterations)


def model2(work: Path, k: int, iterations: int) -> Path:
    """Stage-2 model of fold ``k`` (WORK/models_2nd/<k>_caffenet_train_w32_2nd_iter_<N>.caffemodel)."""
    return Path(work) / MODELS2 / artefacts.model(k, iterations, STAGE2_SNAPSHOT)


def step5(
    cfg: Config, model: Path, mean: Path, net_dir: Path, images: list[Path], out: Path, scale: float, show: bool = True
) -> None:
    """Step 5 of ``model`` on ``images`` into ``out`` (min-max PNGs and float maps)."""
    if not images:
        Path(out).mkdir(parents=True, exist_ok=True)
        return
    engine = inference.make_engine(cfg.infer_mode, model, mean, gpu=cfg.gpu, net_dir=net_dir)
    inference.infer_images(
        images, engine, out, inference.Options(stride=cfg.stride), resize=scale, save_npy=True,
        show_progress=show,
    )  # fmt: skip


def stage_dbs2(cfg: Config, k: int) -> None:
    """DB_train_<k>_2nd (stage-2 patches), DB_test_<k>_2nd (stage 1's test list of fold k) and the mean."""
    n, work = names2(k), cfg.work
    seed = None if cfg.caffe_shuffle else cfg.seed
    databases.build_db(work / SUBS2 / str(k), work / SUBS2 / n["list"], work / n["train_db"], seed=seed,
                       caffe_shuffle=cfg.caffe_shuffle)  # fmt: skip
    test_list = artefacts.list_path(work, "test", k)
    if lists.read_list(test_list):
        databases.build_db(work / "subs", test_list, work / n["test_db"], seed=seed, caffe_shuffle=cfg.caffe_shuffle)
    databases.compute_mean(work / n["train_db"], work / n["mean"])


def stage_prototxt2(cfg: Config, k: int) -> templates.FoldFiles:
    """Solver, nets and job scripts of stage 2, fold ``k``, in WORK/models_2nd (snapshot prefix
    ``<k>_caffenet_train_w32_2nd``)."""
    n, work = names2(k), cfg.work
    test = work / n["test_db"]
    n_test = len(lists.read_list(artefacts.list_path(work, "test", k))) if test.is_dir() else 0
    return templates.render_fold(
        work / MODELS2, str(k), work / n["train_db"], test if test.is_dir() else None, work / n["mean"], n_test,
        gpu=cfg.gpu, solver=cfg.solver_params(), snapshot_name=STAGE2_SNAPSHOT,
    )  # fmt: skip


def graph(cfg: Config, data: Callable[[], Path] | None = None) -> Graph:
    """The stages of a run of ``cfg`` (its folds, ``cfg.folds``): stage 1's patches, folds, dbs,
    prototxt, train; probs, stage 2's patches2, dbs2, prototxt2, train2; outputs; scores. Each
    per-fold stage runs for every fold before the next. ``data`` (a function giving the data folder,
    default ``cfg.data``) is called only when the folds' frames are needed."""
    work, p = cfg.work, cfg.params
    ks = selected_folds(cfg.folds, cfg.nfolds)
    # each fold's frames: test(k) its test patients', train(k) the other folds' (stage 1's maps, stage 2's patches)
    frames = crossval.FoldImages(
        work, data or (lambda: cfg.data), lambda d: images_by_patient(d, p.drop_patients)[0], nfolds=cfg.nfolds
    )
    sp = cfg.solver_params()
    show = cfg.show_progress and cfg.jobs <= 1  # one progress bar at a time
    g = Graph()

    def report() -> dict:
        return json.loads((work / "patches_report.json").read_text())

    # ---------------------------------------------------------------- stage 1
    g.add(
        Stage(
            "patches", work, options={"seed": cfg.seed, **p.stage1()},
            inputs={"data": lambda: cfg.data_recipe or recipes.source(cfg.data)},
            outputs=["patches_report.json", "subs"], what="the stage-1 patches and their report",
            make=lambda: run_stage1(cfg.data, work, p, cfg.seed, show_progress=cfg.show_progress),
        )
    )  # fmt: skip
    g.add(
        Stage(
            "folds", work / "lists", options={"seed": cfg.seed, "nfolds": cfg.nfolds}, inputs={"patches": "patches"},
            outputs=["folds.json"], byproducts=["*_w32_?.txt", "*_parent_?.txt"],
            what="the patient folds and their lists", make=lambda: crossval.stage_folds(cfg, report()),
        )
    )  # fmt: skip
    db_options = {"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle}
    for k in ks:
        n = fold_names(k)
        g.add(
            Stage(
                "dbs", work, key=str(k), label=f"dbs (fold {k})", options=db_options, inputs={"folds": "folds"},
                outputs=[n["train_db"], n["mean"]],
                byproducts=[n["test_db"], f"{n['train_db']}.*", f"{n['test_db']}.*", f"{n['mean']}.*"],
                what=f"the stage-1 databases and mean of fold {k}", make=lambda k=k: crossval.stage_dbs(cfg, k),
            )
        )  # fmt: skip
    for k in ks:
        g.add(
            Stage(
                "prototxt", work / "models", key=str(k), label=f"prototxt (fold {k})",
                options=solver_options(sp, gpu=cfg.gpu), inputs={"dbs": f"dbs {k}"},
                outputs=[artefacts.solver(k)], byproducts=[f"{artefacts.files(k)}-*"],
                what=f"the stage-1 solver and nets of fold {k}", make=lambda k=k: crossval.stage_prototxt(cfg, k),
            )
        )  # fmt: skip
    for k in ks:
        prefix = artefacts.snapshot_prefix(k)
        g.add(
            Stage(
                "train", work / "models", key=str(k), label=f"train (fold {k})", inputs={"prototxt": f"prototxt {k}"},
                outputs=[model1(work, k, cfg.iterations).name], byproducts=[f"{prefix}_iter_*", f"{prefix}_*log*"],
                what=f"the stage-1 model of fold {k}",
                make=lambda k=k: training.train(artefacts.solver_path(work, k), gpu=cfg.gpu, show_progress=show),
                together=cfg.jobs,
            )
        )  # fmt: skip
    out_options = {"infer_mode": cfg.infer_mode, "stride": cfg.stride, "magnification": p.scale, "png_scale": "minmax"}
    for k in ks:
        g.add(
            Stage(
                "probs", work / PROBS, key=str(k), label=f"probs (fold {k})", options=out_options,
                inputs={"model": f"train {k}"}, outputs=[str(k)],
                what=f"the stage-1 maps of fold {k}'s training frames (stage 2's input; the stage-1 models must exist)",
                make=lambda k=k: step5(cfg, model1(work, k, cfg.iterations), artefacts.mean_path(work, k),
                                       work / "models", frames.train(k), work / PROBS / str(k), p.scale, show),
            )
        )  # fmt: skip

    # ---------------------------------------------------------------- stage 2
    for k in ks:
        n2 = names2(k)
        g.add(
            Stage(
                "patches2", work / SUBS2, key=str(k), label=f"patches2 (fold {k})",
                options={"seed": cfg.seed, **p.stage2()}, inputs={"probs": f"probs {k}"},
                outputs=[str(k), n2["list"], n2["list"].replace(".txt", ".json")],
                what=f"the stage-2 patches of fold {k}",
                make=lambda k=k, n2=n2: run_stage2(
                    frames.train(k), work / PROBS / str(k), work / SUBS2 / str(k), work / SUBS2 / n2["list"],
                    p, cfg.seed * 7 + k, show_progress=show),
            )
        )  # fmt: skip
    for k in ks:
        n2 = names2(k)
        g.add(
            Stage(
                "dbs2", work, key=str(k), label=f"dbs2 (fold {k})", options=db_options,
                inputs={"patches2": f"patches2 {k}", "folds": "folds"}, outputs=[n2["train_db"], n2["mean"]],
                byproducts=[n2["test_db"], f"{n2['train_db']}.*", f"{n2['test_db']}.*", f"{n2['mean']}.*"],
                what=f"the stage-2 databases and mean of fold {k}", make=lambda k=k: stage_dbs2(cfg, k),
            )
        )  # fmt: skip
    for k in ks:
        g.add(
            Stage(
                "prototxt2", work / MODELS2, key=str(k), label=f"prototxt2 (fold {k})",
                options=solver_options(sp, gpu=cfg.gpu), inputs={"dbs2": f"dbs2 {k}"},
                outputs=[artefacts.solver(k)], byproducts=[f"{artefacts.files(k)}-*"],
                what=f"the stage-2 solver and nets of fold {k}", make=lambda k=k: stage_prototxt2(cfg, k),
            )
        )  # fmt: skip
    for k in ks:
        g.add(
            Stage(
                "train2", work / MODELS2, key=str(k), label=f"train2 (fold {k})", inputs={"prototxt2": f"prototxt2 {k}"},
                outputs=[model2(work, k, cfg.iterations).name], byproducts=[artefacts.snapshots(k, STAGE2_SNAPSHOT)],
                what=f"the stage-2 model of fold {k}",
                make=lambda k=k: training.train(work / MODELS2 / artefacts.solver(k), gpu=cfg.gpu, show_progress=show),
                together=cfg.jobs,
            )
        )  # fmt: skip
    for k in ks:
        g.add(
            Stage(
                "outputs", work / "output", key=str(k), label=f"outputs (fold {k})", options=out_options,
                inputs={"model": f"train2 {k}"}, outputs=[str(k)], what=f"the stage-2 maps of fold {k}'s test frames",
                make=lambda k=k: step5(cfg, model2(work, k, cfg.iterations), work / names2(k)["mean"], work / MODELS2,
                                       frames.test(k), artefacts.output_dir(work, k), p.scale, show),
                # a test frame's maps removed after the stage was done: the run resumes it for them
                incomplete=lambda k=k: crossval.outputs_missing(work, k, frames.test(k)),
            )
        )  # fmt: skip

    # ---------------------------------------------------------------- scores
    options = {"score_from": cfg.score_from, **cfg.scoring}

    def score() -> None:
        peak = detection.peak_options(cfg.scoring)
        folds = [
            {"fold": k, **detection.score_images(artefacts.output_dir(work, k), frames.test(k), p.scale,
                                                 cfg.scoring["match_radius"], cfg.score_from, **peak)}
            for k in ks if frames.test(k)
        ]  # fmt: skip
        if not folds:
            raise ValueError(f"{cfg.data}: no fold has test frames to score")
        scores = detection.pool(folds, options)
        atomic.write_text(work / "scores.json", json.dumps(scores, indent=1))
        atomic.write_text(work / "scores.md", detection.scores_markdown(scores))

    g.add(
        Stage(
            "scores", work, options={"stride": cfg.stride, **options},
            inputs={f"outputs {k}": f"outputs {k}" for k in ks}, outputs=["scores.json", "scores.md"],
            what="the scores", make=score,
        )
    )  # fmt: skip
    return g


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run ``stages`` of :func:`graph` (checking the stages they need as inputs) for the folds of
    ``cfg``, by :meth:`pipeline.graph.Graph.run`: each skipped when done with the same recipe,
    refused (or, with ``cfg.force``, recomputed) when an option changed. Returns and writes
    WORK/summary.json (the patch report's images and problems, the folds, the scores)."""
    t0 = time.time()
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    ran = graph(cfg).run(stages, force=cfg.force)
    report = json.loads((work / "patches_report.json").read_text())
    summary: dict = {"images": report["images"], "problems": report["problems"]}
    if "folds" in ran:
        summary["folds"] = json.loads((work / "lists" / "folds.json").read_text())
    if "scores" in ran:
        summary["scores"] = json.loads((work / "scores.json").read_text())
        summary["table"] = str(work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
