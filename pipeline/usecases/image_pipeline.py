"""Use cases 2 (epithelium) and 4 (lymphocytes) end to end:
patches -> folds -> dbs -> prototxt -> train -> outputs -> scores.

The use cases differ only in patch sampling (pipeline.usecases.epi / .lymphocyte), the magnification
of step 5 (0.5 / 4) and the scores (pixel F-score of the epithelium maps / detection F-score of
lymphocyte centres); folds, databases, nets, training and inference are shared.

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

import numpy as np

from pipeline import atomic, databases, folds, inference, lists, templates, training
from pipeline.usecases import epi, lymphocyte

log = logging.getLogger(__name__)

STAGES = ("patches", "folds", "dbs", "prototxt", "train", "outputs", "scores")
#: Published figures, as recalled from the paper (unchecked).
PUBLISHED_F = {"epi": 0.84, "lymphocyte": lymphocyte.PUBLISHED_F}


@dataclass
class Config:
    """Options of one use-case-2 or use-case-4 run."""
    data: Path
    work: Path
    usecase: str = "epi"                # "epi" or "lymphocyte"
    iterations: int = 600000
    seed: int = 1
    nfolds: int = 5
    jobs: int = 1                       # folds trained at the same time
    gpu: bool = False
    caffe_shuffle: bool = False
    params: epi.Params = field(default_factory=epi.Params)
    lymph_params: lymphocyte.Params = field(default_factory=lymphocyte.Params)
    match_radius: float = lymphocyte.MATCH_RADIUS
    solver: templates.SolverParams = field(default_factory=templates.SolverParams)
    infer_mode: str = "exact"
    stride: int = 1
    show_progress: bool = True


# --------------------------------------------------------------------------- scores (pure)

def pixel_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """tp, fp, fn, tn, precision, recall and F-score of boolean maps."""
    from pipeline import metrics
    return metrics.scores(metrics.confusion(truth.ravel(), pred.ravel()))


def best_threshold(probs: list[np.ndarray], truths: list[np.ndarray], grid: np.ndarray | None = None) -> float:
    """The threshold on P(class 1) maximising the pooled F-score (ties: the lowest)."""
    grid = np.round(np.arange(0.05, 1.0, 0.05), 2) if grid is None else grid
    p = np.concatenate([x.ravel() for x in probs])
    t = np.concatenate([x.ravel() for x in truths]).astype(bool)
    best, best_f = 0.5, -1.0
    for th in grid:
        f = pixel_scores(p >= th, t)["f_score"] or 0.0
        if f > best_f:
            best, best_f = float(th), f
    return best


def truth_mask(image: Path, factor: float) -> np.ndarray:
    """The image's mask at the output magnification (MATLAB imresize as in step 1), boolean."""
    from pipeline.matlab import imresize_scale
    m = epi.read_mask(image.with_name(image.stem + "_mask.png"))
    m = imresize_scale(m, factor) if factor != 1 else m
    return m.astype(bool)


# --------------------------------------------------------------------------- stages

def _fold_names(k: int) -> dict[str, str]:
    return {"train_db": f"DB_train_{k}", "test_db": f"DB_test_{k}", "mean": f"DB_train_w32_{k}.binaryproto"}


def stage_folds(cfg: Config, report: dict) -> dict[str, int]:
    patients = report["patients"]
    assignment = folds.assign_folds(patients, cfg.nfolds, cfg.seed)
    folds.write_fold_lists(cfg.work / "lists", patients, epi.entries_from_report(report), assignment, cfg.nfolds)
    atomic.write_text(cfg.work / "lists" / "folds.json", json.dumps(assignment, indent=1))
    return assignment


def stage_dbs(cfg: Config, k: int) -> None:
    n = _fold_names(k)
    for side, db in (("train", n["train_db"]), ("test", n["test_db"])):
        path = cfg.work / db
        lst = cfg.work / "lists" / f"{side}_w32_{k}.txt"
        if path.is_dir():
            continue
        entries = lists.read_list(lst)
        if not entries:
            log.warning("fold %d: %s list is empty; no %s DB", k, side, side)
            continue
        if not any(e.label == 1 for e in entries):
            log.warning("fold %d: %s list has no positive patches (%d negatives); going on as the original would",
                        k, side, len(entries))
        databases.build_db(cfg.work / "subs", lst, path, seed=cfg.seed, caffe_shuffle=cfg.caffe_shuffle)
    if not (cfg.work / n["mean"]).is_file():
        databases.compute_mean(cfg.work / n["train_db"], cfg.work / n["mean"])


def stage_prototxt(cfg: Config, k: int) -> templates.FoldFiles:
    n = _fold_names(k)
    test = cfg.work / n["test_db"]
    n_test = len(lists.read_list(cfg.work / "lists" / f"test_w32_{k}.txt")) if test.is_dir() else 0
    sp = templates.SolverParams(**{**cfg.solver.__dict__, "max_iter": cfg.iterations,
                                   "random_seed": cfg.solver.random_seed if cfg.solver.random_seed is not None else cfg.seed})
    return templates.render_fold(cfg.work / "models", str(k), cfg.work / n["train_db"], test if test.is_dir() else None,
                                 cfg.work / n["mean"], n_test, gpu=cfg.gpu, solver=sp)


def stage_train(cfg: Config, solvers: dict[int, Path]) -> dict[int, Path]:
    """Train the folds, ``cfg.jobs`` at a time (each its own `caffe train` process)."""
    def one(k: int) -> tuple[int, Path]:
        return k, training.train(solvers[k], gpu=cfg.gpu, show_progress=cfg.show_progress and cfg.jobs == 1).model
    with ThreadPoolExecutor(max_workers=max(1, cfg.jobs)) as ex:
        return dict(ex.map(one, sorted(solvers)))


def magnification(cfg: Config) -> float:
    """Resize factor of step 5: the training magnification of the use case."""
    return cfg.params.resize if cfg.usecase == "epi" else cfg.lymph_params.scale


def stage_outputs(cfg: Config, k: int, model: Path, images: list[Path]) -> Path:
    out = cfg.work / "output" / str(k)
    opts = inference.Options(mode=cfg.infer_mode, resize=magnification(cfg), stride=cfg.stride, gpu=cfg.gpu)
    engine = inference.make_engine(cfg.infer_mode, model, cfg.work / _fold_names(k)["mean"], gpu=cfg.gpu)
    inference.infer_images(images, engine, out, opts, save_npy=True, show_progress=cfg.show_progress)
    return out


def score_fold(cfg: Config, k: int, test_images: list[Path], val_images: list[Path]) -> dict:
    """Pixel scores of fold k's test images: class maps, and P >= threshold chosen on validation images."""
    out = cfg.work / "output" / str(k)

    def maps(imgs):
        probs, truths = [], []
        for img in imgs:
            prob = np.load(out / f"{img.stem}_prob.npy")
            t = truth_mask(img, cfg.params.resize)
            rr = inference.computed_coords(prob.shape[0], cfg.stride)
            cc = inference.computed_coords(prob.shape[1], cfg.stride)
            probs.append(prob[np.ix_(rr, cc)])
            truths.append(t[np.ix_(rr, cc)])
        return probs, truths

    tp, tt = maps(test_images)
    th = 0.5
    if val_images:
        vp, vt = maps(val_images)
        th = best_threshold([p[..., 1] for p in vp], vt)
    cls = pixel_scores(np.concatenate([(p.argmax(2) == 1).ravel() for p in tp]), np.concatenate([t.ravel() for t in tt]))
    thr = pixel_scores(np.concatenate([(p[..., 1] >= th).ravel() for p in tp]), np.concatenate([t.ravel() for t in tt]))
    return {"fold": k, "threshold": th, "class_map": cls, "thresholded": thr,
            "test_images": [i.name for i in test_images], "validation_images": [i.name for i in val_images]}


def score_lymphocytes(cfg: Config, k: int, test_images: list[Path]) -> dict:
    """Detection scores of fold k: peaks of each _prob map (4x scale) matched to the true centres."""
    out = cfg.work / "output" / str(k)
    per_image, tot = [], {"tp": 0, "fp": 0, "fn": 0}
    for img in test_images:
        green = np.load(out / f"{img.stem}_prob.npy")[..., 1]
        peaks = np.array(lymphocyte.detect_peaks(green), dtype=np.float64).reshape(-1, 2)
        s = lymphocyte.match_detections(peaks / cfg.lymph_params.scale, lymphocyte.true_centres(img), cfg.match_radius)
        per_image.append({"image": img.name, **s})
        for key in tot:
            tot[key] += s[key]
    from pipeline import metrics
    pooled = metrics.scores({**tot, "tn": 0})
    return {"fold": k, "detection": {**tot, "precision": pooled["precision"], "recall": pooled["recall"],
                                     "f_score": pooled["f_score"]}, "images": per_image}


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the stages for all folds; returns (and writes) a summary with per-fold and pooled scores."""
    t0 = time.time()
    cfg.work = Path(cfg.work)
    cfg.work.mkdir(parents=True, exist_ok=True)
    uc = epi if cfg.usecase == "epi" else lymphocyte
    uc_params = cfg.params if cfg.usecase == "epi" else cfg.lymph_params
    report = uc.run_patches(cfg.data, cfg.work, uc_params, cfg.seed, show_progress=cfg.show_progress)
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
            # validation images for the threshold: the patients of the next fold (training side of fold k)
            vk = k % cfg.nfolds + 1
            val = [i for p, f in assignment.items() if f == vk for i in by_patient[p]] if cfg.usecase == "epi" else []
            if "outputs" in stages:
                stage_outputs(cfg, k, models[k], test + val)
            if "scores" in stages and test:
                fold_scores.append(score_fold(cfg, k, test, val) if cfg.usecase == "epi"
                                   else score_lymphocytes(cfg, k, test))
        if fold_scores and cfg.usecase == "lymphocyte":
            from pipeline import metrics
            c = {m: sum(f["detection"][m] for f in fold_scores) for m in ("tp", "fp", "fn")}
            pooled = metrics.scores({**c, "tn": 0})
            summary["scores"] = {"folds": fold_scores, "pooled": {**c, **{m: pooled[m] for m in ("precision", "recall", "f_score")}},
                                 "match_radius": cfg.match_radius, "published_f_recalled": PUBLISHED_F["lymphocyte"]}
            atomic.write_text(cfg.work / "scores.json", json.dumps(summary["scores"], indent=1))
            atomic.write_text(cfg.work / "scores.md", lymphocyte_markdown(summary["scores"]))
            summary["table"] = str(cfg.work / "scores.md")
        elif fold_scores:
            pooled = {}
            for key in ("class_map", "thresholded"):
                c = {m: sum(f[key][m] for f in fold_scores) for m in ("tp", "fp", "fn", "tn")}
                from pipeline import metrics
                pooled[key] = metrics.scores(c)
            summary["scores"] = {"folds": fold_scores, "pooled": pooled, "published_f_recalled": PUBLISHED_F["epi"]}
            atomic.write_text(cfg.work / "scores.json", json.dumps(summary["scores"], indent=1))
            atomic.write_text(cfg.work / "scores.md", scores_markdown(summary["scores"]))
            summary["table"] = str(cfg.work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(cfg.work / "summary.json", json.dumps(summary, indent=1))
    return summary


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled pixel scores beside the recalled published F-score."""
    lines = ["### Use case 2 (epithelium), pixel level", "",
             "| fold | threshold | F (class map) | precision | recall | F (P >= threshold) | precision | recall |",
             "|---|---|---|---|---|---|---|---|"]
    for f in s["folds"]:
        c, t = f["class_map"], f["thresholded"]
        lines.append(f"| {f['fold']} | {f['threshold']:.2f} | {_f(c['f_score'])} | {_f(c['precision'])} | {_f(c['recall'])} | "
                     f"{_f(t['f_score'])} | {_f(t['precision'])} | {_f(t['recall'])} |")
    c, t = s["pooled"]["class_map"], s["pooled"]["thresholded"]
    lines.append(f"| pooled | – | {_f(c['f_score'])} | {_f(c['precision'])} | {_f(c['recall'])} | {_f(t['f_score'])} | "
                 f"{_f(t['precision'])} | {_f(t['recall'])} |")
    lines.append(f"| published (recalled, unchecked) | | {s['published_f_recalled']:.2f} | | | | | |")
    return "\n".join(lines) + "\n"


def lymphocyte_markdown(s: dict) -> str:
    """Per-fold and pooled detection scores beside the recalled published F-score."""
    lines = ["### Use case 4 (lymphocytes), detection", "",
             f"Peaks: disk radius {lymphocyte.DISK_RADIUS}, threshold {lymphocyte.PEAK_THRESHOLD}, clearing radius "
             f"{lymphocyte.PEAK_CLEAR_RADIUS} (4x scale); matched one to one within {s['match_radius']} px (original scale).", "",
             "| fold | tp | fp | fn | precision | recall | F-score |", "|---|---|---|---|---|---|---|"]
    for f in s["folds"]:
        d = f["detection"]
        lines.append(f"| {f['fold']} | {d['tp']} | {d['fp']} | {d['fn']} | {_f(d['precision'])} | {_f(d['recall'])} | {_f(d['f_score'])} |")
    d = s["pooled"]
    lines.append(f"| pooled | {d['tp']} | {d['fp']} | {d['fn']} | {_f(d['precision'])} | {_f(d['recall'])} | {_f(d['f_score'])} |")
    lines.append(f"| published (recalled, unchecked) | | | | | | {s['published_f_recalled']:.2f} |")
    return "\n".join(lines) + "\n"
