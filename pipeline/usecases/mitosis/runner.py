"""Use case 5 end to end, two training stages in patient folds, every stage a recipe.

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
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline import atomic, crossval, databases, inference, lists, recipes, templates, training
from pipeline.crossval import Config, fold_images, fold_names, selected_folds, solver_options, solver_params
from pipeline.usecases.mitosis import detection
from pipeline.usecases.mitosis.sampling import images_by_patient, run_stage1
from pipeline.usecases.mitosis.stage2 import run_stage2

log = logging.getLogger(__name__)

STAGES = (
    "patches", "folds", "dbs", "prototxt", "train", "probs",
    "patches2", "dbs2", "prototxt2", "train2", "outputs", "scores",
)  # fmt: skip
STAGE2_SNAPSHOT = "caffenet_train_w32_2nd"  #: released: <k>_caffenet_train_w32_2nd_iter_600000.caffemodel


def names2(k: int) -> dict[str, str]:
    """Stage 2's names of fold ``k``, as the released files: DB_train_<k>_2nd, DB_train_w32_<k>_2nd.binaryproto."""
    return {
        "train_db": f"DB_train_{k}_2nd",
        "test_db": f"DB_test_{k}_2nd",
        "mean": f"DB_train_w32_{k}_2nd.binaryproto",
        "list": f"train_w32_{k}_2nd.txt",
    }


def model1(work: Path, k: int, iterations: int) -> Path:
    """Stage-1 model of fold ``k`` (WORK/models/<k>_caffenet_train_w32_iter_<N>.caffemodel)."""
    return Path(work) / "models" / f"{k}_caffenet_train_w32_iter_{iterations}.caffemodel"


def model2(work: Path, k: int, iterations: int) -> Path:
    """Stage-2 model of fold ``k`` (WORK/models_2nd/<k>_caffenet_train_w32_2nd_iter_<N>.caffemodel)."""
    return Path(work) / "models_2nd" / f"{k}_{STAGE2_SNAPSHOT}_iter_{iterations}.caffemodel"


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
    databases.build_db(work / "subs_2nd" / str(k), work / "subs_2nd" / n["list"], work / n["train_db"], seed=seed,
                       caffe_shuffle=cfg.caffe_shuffle)  # fmt: skip
    test_list = work / "lists" / f"test_w32_{k}.txt"
    if lists.read_list(test_list):
        databases.build_db(work / "subs", test_list, work / n["test_db"], seed=seed, caffe_shuffle=cfg.caffe_shuffle)
    databases.compute_mean(work / n["train_db"], work / n["mean"])


def stage_prototxt2(cfg: Config, k: int) -> templates.FoldFiles:
    """Solver, nets and job scripts of stage 2, fold ``k``, in WORK/models_2nd (snapshot prefix
    ``<k>_caffenet_train_w32_2nd``)."""
    n, work = names2(k), cfg.work
    test = work / n["test_db"]
    n_test = len(lists.read_list(work / "lists" / f"test_w32_{k}.txt")) if test.is_dir() else 0
    return templates.render_fold(
        work / "models_2nd", str(k), work / n["train_db"], test if test.is_dir() else None, work / n["mean"], n_test,
        gpu=cfg.gpu, solver=solver_params(cfg), snapshot_name=STAGE2_SNAPSHOT,
    )  # fmt: skip


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run ``stages`` (checking the earlier ones as inputs) for the folds of ``cfg``; returns and
    writes WORK/summary.json. ``cfg.params`` is a :class:`~pipeline.usecases.mitosis.sampling.Params`;
    ``cfg.scoring`` holds the peak and matching options."""
    t0 = time.time()
    cfg.work = work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    p = cfg.params
    upto = STAGES[: max(STAGES.index(s) for s in stages) + 1]
    ks = selected_folds(cfg.folds, cfg.nfolds)

    def step(name: str, folder: Path, **kw) -> recipes.Recipe:
        return recipes.Step(name, folder, run=name in stages, force=cfg.force, **kw).ensure()

    # ---------------------------------------------------------------- stage 1
    patches = step(
        "patches", work, options={"seed": cfg.seed, **p.stage1()},
        inputs={"data": cfg.data_recipe or recipes.source(cfg.data)},
        outputs=["patches_report.json", "subs"], what="the stage-1 patches and their report",
        make=lambda: run_stage1(cfg.data, work, p, cfg.seed, show_progress=cfg.show_progress),
    )  # fmt: skip
    report = json.loads((work / "patches_report.json").read_text())
    summary: dict = {"images": report["images"], "problems": report["problems"]}
    rec: dict[str, dict] = {}
    if "folds" in upto:
        rec["folds"] = step(
            "folds", work / "lists", options={"seed": cfg.seed, "nfolds": cfg.nfolds}, inputs={"patches": patches},
            outputs=["folds.json"], byproducts=["*_w32_?.txt", "*_parent_?.txt"],
            what="the patient folds and their lists", make=lambda: crossval.stage_folds(cfg, report),
        )  # fmt: skip
        summary["folds"] = assignment = json.loads((work / "lists" / "folds.json").read_text())
        by_patient, _ = images_by_patient(cfg.data, p.drop_patients)
        train_imgs = {k: [i for q, f in assignment.items() if f != k for i in by_patient[q]] for k in ks}
        test_imgs = {k: fold_images(assignment, by_patient, k, cfg.nfolds, False)[0] for k in ks}
    per: dict[str, dict[int, dict]] = {s: {} for s in STAGES}
    sp = solver_params(cfg)
    show = cfg.show_progress and cfg.jobs <= 1  # one progress bar at a time

    def one(want: str, k: int) -> None:
        """Stage ``want`` of fold ``k``."""
        n = fold_names(k)
        if want == "dbs":
            per["dbs"][k] = step(
                "dbs", work, key=str(k), label=f"dbs (fold {k})",
                options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
                inputs={"folds": rec["folds"]}, outputs=[n["train_db"], n["mean"]],
                byproducts=[n["test_db"], f"{n['train_db']}.*", f"{n['test_db']}.*", f"{n['mean']}.*"],
                what=f"the stage-1 databases and mean of fold {k}", make=lambda k=k: crossval.stage_dbs(cfg, k),
            )  # fmt: skip
        if want == "prototxt":
            per["prototxt"][k] = step(
                "prototxt", work / "models", key=str(k), label=f"prototxt (fold {k})",
                options=solver_options(sp, gpu=cfg.gpu), inputs={"dbs": per["dbs"][k]},
                outputs=[f"{k}-alexnet_solver_ada.prototxt"], byproducts=[f"{k}-*"],
                what=f"the stage-1 solver and nets of fold {k}", make=lambda k=k: crossval.stage_prototxt(cfg, k),
            )  # fmt: skip
        if want == "train":
            m1 = model1(work, k, cfg.iterations)
            per["train"][k] = step(
                "train", work / "models", key=str(k), label=f"train (fold {k})",
                inputs={"prototxt": per["prototxt"][k]}, outputs=[m1.name],
                byproducts=[f"{k}_caffenet_train_w32_iter_*", f"{k}_caffenet_train_w32_*log*"],
                what=f"the stage-1 model of fold {k}",
                make=lambda k=k: training.train(crossval.solver_path(work, k), gpu=cfg.gpu, show_progress=show),
            )  # fmt: skip
        out_options = {
            "infer_mode": cfg.infer_mode,
            "stride": cfg.stride,
            "magnification": p.scale,
            "png_scale": "minmax",
        }
        if want == "probs":
            per["probs"][k] = step(
                "probs", work / "probs", key=str(k), label=f"probs (fold {k})", options=out_options,
                inputs={"model": per["train"][k]}, outputs=[str(k)],
                what=f"the stage-1 maps of fold {k}'s training frames (stage 2's input; the stage-1 models must exist)",
                make=lambda k=k: step5(cfg, model1(work, k, cfg.iterations), work / n["mean"],
                                       work / "models", train_imgs[k], work / "probs" / str(k), p.scale, show),
            )  # fmt: skip
        n2 = names2(k)
        if want == "patches2":
            per["patches2"][k] = step(
                "patches2", work / "subs_2nd", key=str(k), label=f"patches2 (fold {k})",
                options={"seed": cfg.seed, **p.stage2()}, inputs={"probs": per["probs"][k]},
                outputs=[str(k), n2["list"], n2["list"].replace(".txt", ".json")],
                what=f"the stage-2 patches of fold {k}",
                make=lambda k=k, n2=n2: run_stage2(
                    train_imgs[k], work / "probs" / str(k), work / "subs_2nd" / str(k), work / "subs_2nd" / n2["list"],
                    p, cfg.seed * 7 + k, show_progress=show),
            )  # fmt: skip
        if want == "dbs2":
            per["dbs2"][k] = step(
                "dbs2", work, key=str(k), label=f"dbs2 (fold {k})",
                options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
                inputs={"patches2": per["patches2"][k], "folds": rec["folds"]}, outputs=[n2["train_db"], n2["mean"]],
                byproducts=[n2["test_db"], f"{n2['train_db']}.*", f"{n2['test_db']}.*", f"{n2['mean']}.*"],
                what=f"the stage-2 databases and mean of fold {k}", make=lambda k=k: stage_dbs2(cfg, k),
            )  # fmt: skip
        if want == "prototxt2":
            per["prototxt2"][k] = step(
                "prototxt2", work / "models_2nd", key=str(k), label=f"prototxt2 (fold {k})",
                options=solver_options(sp, gpu=cfg.gpu), inputs={"dbs2": per["dbs2"][k]},
                outputs=[f"{k}-alexnet_solver_ada.prototxt"], byproducts=[f"{k}-*"],
                what=f"the stage-2 solver and nets of fold {k}", make=lambda k=k: stage_prototxt2(cfg, k),
            )  # fmt: skip
        if want == "train2":
            m2 = model2(work, k, cfg.iterations)
            per["train2"][k] = step(
                "train2", work / "models_2nd", key=str(k), label=f"train2 (fold {k})",
                inputs={"prototxt2": per["prototxt2"][k]}, outputs=[m2.name], byproducts=[f"{k}_{STAGE2_SNAPSHOT}_*"],
                what=f"the stage-2 model of fold {k}",
                make=lambda k=k: training.train(work / "models_2nd" / f"{k}-alexnet_solver_ada.prototxt", gpu=cfg.gpu,
                                                show_progress=show),
            )  # fmt: skip
        if want == "outputs":
            if "outputs" in stages:
                crossval.reopen_incomplete_outputs(work, k, test_imgs[k])
            per["outputs"][k] = step(
                "outputs", work / "output", key=str(k), label=f"outputs (fold {k})", options=out_options,
                inputs={"model": per["train2"][k]}, outputs=[str(k)],
                what=f"the stage-2 maps of fold {k}'s test frames",
                make=lambda k=k, n2=n2: step5(cfg, model2(work, k, cfg.iterations), work / n2["mean"], work / "models_2nd",
                                              test_imgs[k], crossval.output_dir(work, k), p.scale, show),
            )  # fmt: skip

    for want in STAGES[2:-1]:  # dbs .. outputs, each for every fold before the next stage
        if want not in upto:
            continue
        if want in ("train", "train2") and cfg.jobs > 1:  # -j: folds trained side by side
            with ThreadPoolExecutor(max_workers=cfg.jobs) as ex:
                for f in [ex.submit(one, want, k) for k in ks]:
                    f.result()
        else:
            for k in ks:
                one(want, k)
    if "scores" in upto:
        options = {"score_from": cfg.score_from, **cfg.scoring}

        def score() -> None:
            peak = detection.peak_options(cfg.scoring)
            folds = [
                {"fold": k, **detection.score_images(crossval.output_dir(work, k), test_imgs[k], p.scale,
                                                     cfg.scoring["match_radius"], cfg.score_from, **peak)}
                for k in ks if test_imgs[k]
            ]  # fmt: skip
            if not folds:
                raise ValueError(f"{cfg.data}: no fold has test frames to score")
            scores = detection.pool(folds, options)
            atomic.write_text(work / "scores.json", json.dumps(scores, indent=1))
            atomic.write_text(work / "scores.md", detection.scores_markdown(scores))

        step(
            "scores", work, options={"stride": cfg.stride, **options},
            inputs={f"outputs {k}": per["outputs"][k] for k in ks}, outputs=["scores.json", "scores.md"],
            what="the scores", make=score,
        )  # fmt: skip
        summary["scores"] = json.loads((work / "scores.json").read_text())
        summary["table"] = str(work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
