"""Use case 7 end to end: check -> patches -> lists -> dbs -> prototxt -> train -> outputs -> scores.

The run is one stage graph (:func:`graph`, run by :meth:`pipeline.graph.Graph.run`): each stage (of
each fold) skipped when done with the same options, resumed when interrupted, refused (or with
``force`` recomputed) when an option changed. The data are checked first (:func:`cohort`: the
images, and the fold lists against them), so a bad input stops the run in one line before any work.
The scheduler's checks (``Lymphoma.job_steps``) read the same graph. Work folder (names of the
original, :mod:`pipeline.artefacts`):

    WORK/subs/<image>_sub_<n>.tif              step 1: every 36x36 tile at 0 and 90 degrees
    WORK/patches_report.json                   patches per image
    WORK/lists/folds.json                      image -> test fold, and where the folds came from
    WORK/lists/{train,test}_w32_parent_<k>.txt  the images of each side of fold k
    WORK/lists/{train,test}_w32_<k>.txt        step 2's TAB lists (as the original); space/ copies for convert_imageset
    WORK/DB_{train,test}_<k>, DB_train_w32_<k>.binaryproto   36x36 LevelDBs and the 3x36x36 mean
    WORK/models/<k>-alexnet_solver_ada.prototxt, <k>_caffenet_train_w32[_dropout]_iter_<N>.caffemodel
    WORK/output/<k>/votes.json                 step 5: per test image its tiles' votes and the majority
    WORK/scores.json, WORK/scores.md           per-fold and pooled accuracy, confusion matrices, leakage
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline import artefacts, atomic, crossval, databases, lists, recipes, sampling, templates, training
from pipeline.graph import Graph, Stage
from pipeline.imageio import imread_matlab
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.run_options import RunOptions
from pipeline.usecases.lymphoma import dataset, foldlists, geojson, step5, tiles

log = logging.getLogger(__name__)

STAGES = ("patches", "lists", "dbs", "prototxt", "train", "outputs", "scores")
PUBLISHED_ACCURACY = 0.97  # paper abstract (JPI 2016): lymphoma sub-type classification accuracy


#: the folder of WORK/lists holding the space-separated copies of step 2's lists (convert_imageset reads them)
SPACE = "space"


@dataclass(frozen=True, kw_only=True)
class Config(RunOptions):
    """Options of one use-case-7 run: the shared ones (:class:`pipeline.run_options.RunOptions`; ``jobs``
    here the patch workers, default all cores) and these; those that change numbers are named as on
    the command line."""

    data: Path | None
    jobs: int | None = None  # patch workers (None: all cores)
    folds_from: str = "published"  # published lists, "fresh" (drawn per class), "slide" (not the published protocol)
    fold_lists: Path | None = None  # folder of {train,test}_w32_parent_<k>.txt (published: the released folder)
    dropout: bool = False
    list_separator: str = "space"  # "tab": the original's step 2 lists fed to convert_imageset as they are
    mean_mode: str = tiles.DEFAULT_MEAN_MODE
    literal_step5_path: bool = False
    literal_deploy: bool = False
    folds: tuple[int, ...] = ()
    data_recipe: recipes.Recipe | None = None
    released_models: Path | None = None  # step 5 with the released weights and means of this folder (no training)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("data", "fold_lists", "released_models"):  # a Python caller may give strings
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "folds", tuple(self.folds))


def snapshot_name(dropout: bool) -> str:
    """The released snapshot names: ``caffenet_train_w32`` and ``caffenet_train_w32_dropout``."""
    return artefacts.SNAPSHOT + ("_dropout" if dropout else "")


def model_path(work: Path, k: int, dropout: bool, iterations: int) -> Path:
    """Fold ``k``'s final model."""
    return artefacts.model_path(work, k, iterations, snapshot_name(dropout))


# --------------------------------------------------------------------------- stages


def _cut(task: tuple[str, str, str]) -> tuple[str, int]:
    """Worker: step 1 of one image (name, path, subs folder) -> (name, number of patches)."""
    from PIL import Image

    name, path, subs = task
    img = imread_matlab(Path(path))
    stem = Path(path).stem
    n = 0
    for n, t in tiles.step1_tiles(img):
        out = Path(subs) / tiles.tile_name(stem, n)
        if not out.is_file():  # an interrupted stage resumes
            with atomic.atomic_path(out) as tmp:
                Image.fromarray(np.ascontiguousarray(t)).save(tmp, format="TIFF")
    return name, n


def stage_patches(cfg: Config, images: dict[str, Path]) -> None:
    """Step 1 on every image (all folds need them), ``cfg.jobs`` processes; WORK/patches_report.json last."""
    subs = cfg.work / "subs"
    subs.mkdir(parents=True, exist_ok=True)
    tasks = [(n, str(p), str(subs)) for n, p in images.items()]
    counts = dict(sampling.map_images(_cut, tasks, "patches (lymphoma)", cfg.jobs, cfg.show_progress))
    report = {"data": str(Path(cfg.data).resolve()), "images": counts, "patches": sum(counts.values())}
    atomic.write_text(cfg.work / "patches_report.json", json.dumps(report, indent=1))


def assignment_for(cfg: Config, names: list[str]) -> tuple[dict[str, int], str]:
    """(image -> test fold, where it came from), checked against the images in one line."""
    if cfg.folds_from == "published":
        if cfg.fold_lists is None:
            raise ValueError(
                "the published fold lists were not found: run `make fetch-released` (or mount ../shared), "
                "pass --fold-lists DIR, or draw folds with --folds-from fresh"
            )
        where = str(cfg.fold_lists)
        assignment = foldlists.published_assignment(cfg.fold_lists)
    elif cfg.folds_from == "fresh":
        where, assignment = f"fresh folds (seed {cfg.seed})", foldlists.fresh_assignment(names, cfg.seed)
    elif cfg.folds_from == "slide":
        where, assignment = f"slide folds (seed {cfg.seed})", foldlists.slide_assignment(names, cfg.seed)
    else:
        raise ValueError(f"--folds-from {cfg.folds_from}: choose from {', '.join(foldlists.FOLDINGS)}")
    foldlists.check_assignment(assignment, names, where, cfg.fold_lists if cfg.folds_from == "published" else None)
    return assignment, where


def stage_lists(cfg: Config, assignment: dict[str, int], where: str, names: list[str]) -> None:
    """Parent lists, step 2's TAB lists and their space copies for every fold; folds.json last."""
    counts = json.loads((cfg.work / "patches_report.json").read_text())["images"]
    patches_of = {n: [tiles.tile_name(Path(n).stem, i) for i in range(1, counts[n] + 1)] for n in names}
    out = cfg.work / "lists"
    foldlists.write_parent_lists(out, assignment, names)
    for k in range(1, foldlists.NFOLDS + 1):
        for side, keep in (("train", lambda f: f != k), ("test", lambda f: f == k)):
            entries = foldlists.fold_entries([n for n in names if keep(assignment[n])], patches_of)
            lists.write_list(out / artefacts.patch_list(side, k), entries, sep="\t")
            lists.write_list(out / SPACE / artefacts.patch_list(side, k), entries, sep=" ")
    doc = {"from": cfg.folds_from, "where": where, "assignment": assignment}
    atomic.write_text(out / "folds.json", json.dumps(doc, indent=1))


def db_list(cfg: Config, side: str, k: int) -> Path:
    """The list convert_imageset reads: the space copy, or (``--list-separator tab``) step 2's TAB list,
    which today's convert_imageset reads as empty (refused in one line by :mod:`pipeline.lists`)."""
    lists_dir = cfg.work / "lists"
    return (lists_dir if cfg.list_separator == "tab" else lists_dir / SPACE) / artefacts.patch_list(side, k)


def stage_dbs(cfg: Config, k: int) -> None:
    """DB_train_<k>, DB_test_<k> (36x36 patches) and the 3x36x36 mean, those present kept."""
    for side, name in (("train", artefacts.train_db(k)), ("test", artefacts.test_db(k))):
        db = cfg.work / name
        if not db.is_dir():
            databases.build_db(
                cfg.work / "subs", db_list(cfg, side, k), db, seed=cfg.seed, caffe_shuffle=cfg.caffe_shuffle
            )
    mean = artefacts.mean_path(cfg.work, k)
    if not mean.is_file():
        databases.compute_mean(cfg.work / artefacts.train_db(k), mean)


def stage_prototxt(cfg: Config, k: int) -> None:
    """Fold ``k``'s solver, train/test net (crop 32 from the 36x36 tiles; 3 outputs) and deploy net."""
    n_test = len(lists.read_list(cfg.work / "lists" / SPACE / artefacts.patch_list("test", k)))
    templates.render_fold(
        cfg.work / "models",
        str(k),
        cfg.work / artefacts.train_db(k),
        cfg.work / artefacts.test_db(k),
        artefacts.mean_path(cfg.work, k),
        n_test,
        gpu=cfg.gpu,
        dropout=cfg.dropout,
        num_output=len(tiles.CLASSES),
        solver=cfg.solver_params(),
        snapshot_name=snapshot_name(cfg.dropout),
    )


def fold_model(cfg: Config, k: int) -> tuple[Path, Path]:
    """(weights, mean) step 5 of fold ``k`` uses: the run's, or with ``released_models`` the released
    ``<k>_caffenet_train_w32[_dropout]_iter_600000.caffemodel`` and ``DB_train_w32_<k>.binaryproto``."""
    if cfg.released_models is not None:
        rd = Path(cfg.released_models)
        model = artefacts.released_model(rd, k, snapshot_name(cfg.dropout))
        mean = artefacts.released_mean(rd, k)
        for p in (model, mean):
            if not p.is_file():
                raise ValueError(f"{p}: released file missing (make fetch-released, or --released-models DIR)")
        return model, mean
    return model_path(cfg.work, k, cfg.dropout, cfg.iterations), artefacts.mean_path(cfg.work, k)


def stage_outputs(cfg: Config, k: int, test: list[str], data: Path) -> None:
    """Step 5 of fold ``k``'s model on its test images: WORK/output/<k>/votes.json (per image a
    record in images/, kept when interrupted)."""
    from tqdm import tqdm

    out = artefacts.output_dir(cfg.work, k)
    model, mean = fold_model(cfg, k)
    clf = step5.TileClassifier(
        model,
        mean,
        cfg.work / "output" / "nets",
        dropout=cfg.dropout,
        mean_mode=cfg.mean_mode,
        gpu=cfg.gpu,
        literal_deploy=cfg.literal_deploy,
    )
    records = []
    for name in tqdm(test, desc=f"step 5 fold {k}", unit="image", disable=not cfg.show_progress):
        rec_path = out / "images" / (Path(name).stem + ".json")
        if rec_path.is_file():
            records.append(json.loads(rec_path.read_text()))
            if not (out / f"{Path(name).stem}.geojson").is_file():  # interrupted between the two
                geojson.export_record(records[-1], out)
            continue
        path = step5.image_path(data, name, cfg.literal_step5_path)
        res = clf.classify_image(step5.load(path))
        rec = res.as_json(name, tiles.class_of(name))
        atomic.write_text(rec_path, json.dumps(rec))
        records.append(rec)
        geojson.export_record(rec, out)  # a square per tile for QuPath, beside the records
    summary = [{k2: r[k2] for k2 in ("image", "true", "predicted", "counts", "votes")} for r in records]
    atomic.write_text(out / "votes.json", json.dumps({"fold": k, "images": summary}))


def fold_scores(k: int, images: list[dict]) -> dict:
    """Accuracy and the original's confusion matrix (rows predicted, columns true) of one fold."""
    pairs = [(r["predicted"], r["true"]) for r in images]
    correct = sum(p == t for p, t in pairs)
    return {
        "fold": k,
        "images": len(pairs),
        "correct": correct,
        "accuracy": correct / len(pairs) if pairs else None,
        "confusion_pred_by_true": tiles.confusion(pairs),
        "wrong": [r["image"] for r in images if r["predicted"] != r["true"]],
        "ties": [r["image"] for r in images if sorted(r["counts"])[-1] == sorted(r["counts"])[-2]],
    }


def pool(folds: list[dict], assignment: dict[str, int], folds_from: str) -> dict:
    """Pooled accuracy (correct over all test images), the summed confusion matrix, per-class recall
    and precision, the slide leakage of the folds, beside the published 0.97."""
    conf = np.sum([f["confusion_pred_by_true"] for f in folds], axis=0) if folds else np.zeros((3, 3), int)
    n = int(conf.sum())
    per_class = {
        c: {
            "images": int(conf[:, i].sum()),
            "recall": float(conf[i, i] / conf[:, i].sum()) if conf[:, i].sum() else None,
            "precision": float(conf[i, i] / conf[i, :].sum()) if conf[i, :].sum() else None,
        }
        for i, c in enumerate(tiles.CLASSES)
    }
    return {
        "folds": folds,
        "pooled": {
            "images": n,
            "correct": int(np.trace(conf)),
            "accuracy": float(np.trace(conf) / n) if n else None,
            "confusion_pred_by_true": conf.tolist(),
            "per_class": per_class,
        },
        "folds_from": folds_from,
        "leakage": foldlists.leakage_summary(assignment),
        "published_accuracy": PUBLISHED_ACCURACY,
    }


def markdown(s: dict, variant: str) -> str:
    """Per-fold and pooled accuracy, the pooled confusion matrix and the leakage, beside the published 0.97."""
    p, lk = s["pooled"], s["leakage"]
    folds = [[f["fold"], f["images"], f["correct"], fixed(f["accuracy"])] for f in s["folds"]]
    folds.append(["pooled", p["images"], p["correct"], fixed(p["accuracy"])])
    folds.append(["published (paper abstract)", 374, "", fixed(s["published_accuracy"], 2)])
    confusion = [[c, *p["confusion_pred_by_true"][i]] for i, c in enumerate(tiles.CLASSES)]
    per_class = [[c, d["images"], fixed(d["recall"]), fixed(d["precision"])] for c, d in p["per_class"].items()]
    spans = ", ".join(f"{v} slide(s) in {n} test fold(s)" for n, v in lk["slides_by_number_of_test_folds"].items())
    note = "" if s["folds_from"] == "slide" else " (the published protocol splits per image: slides leak across folds)"
    return document(
        f"### Use case 7 (lymphoma CLL / FL / MCL), image level, {variant} net",
        pipe_table(["fold", "test images", "correct", "accuracy"], folds),
        "Confusion matrix, pooled (rows: predicted, columns: true; the original's conf_matrix[pred, actual]):",
        pipe_table(["predicted \\ true", *tiles.CLASSES], confusion),
        pipe_table(["class", "test images", "recall", "precision"], per_class),
        f"Folds: {s['folds_from']}{note}. Slide leakage: {lk['slides_in_several_test_folds']} of {lk['slides']} "
        f"slides have images in more than one test fold; {spans}.",
    )


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Cohort:
    """The run's images (name as in the fold lists, ``CLL/x.tif`` -> path) and their test folds."""

    images: dict[str, Path]
    assignment: dict[str, int]  # image -> the fold whose test set holds it
    where: str  # where the folds came from (the lists' folder, or "fresh folds (seed 1)"...)

    @property
    def names(self) -> list[str]:
        return list(self.images)

    def test(self, k: int) -> list[str]:
        """Fold ``k``'s test images, in the data's order."""
        return [n for n in self.images if self.assignment[n] == k]


def cohort(cfg: Config) -> Cohort:
    """The data and fold lists of ``cfg`` checked (bad input: ValueError in one line naming the file)."""
    images = dataset.check_data(cfg.data)
    assignment, where = assignment_for(cfg, list(images))
    return Cohort(images, assignment, where)


def released_stages(stages: tuple[str, ...]) -> tuple[str, ...]:
    """The stages of a run with ``released_models``: outputs and scores (all of them when every stage
    is asked); ValueError naming the others."""
    if tuple(stages) == STAGES:
        return ("outputs", "scores")
    bad = [s for s in stages if s not in ("outputs", "scores")]
    if bad:
        raise ValueError(f"--released-models runs the stages outputs,scores only, not {','.join(bad)}")
    return tuple(stages)


def graph(cfg: Config, data: Callable[[], Cohort] | None = None) -> Graph:
    """The stages of a run: patches -> lists -> per fold (``cfg.folds``) dbs, prototxt, train, outputs
    -> scores; with ``cfg.released_models`` only outputs (of the released weights) and scores.
    ``data`` gives the checked cohort (default :func:`cohort` of ``cfg``, once): called only when a
    stage runs or its options are needed, so that the scheduler's done checks read no data."""
    work = cfg.work
    data = data or functools.cache(lambda: cohort(cfg))
    ks = crossval.selected_folds(cfg.folds, foldlists.NFOLDS)
    released = cfg.released_models is not None
    sp = cfg.solver_params()
    g = Graph()

    def folds_digest() -> str:
        return recipes.digest(data().assignment, 12)

    if not released:
        g.add(
            Stage(
                "patches",
                work,
                inputs={"data": lambda: cfg.data_recipe or recipes.source(cfg.data)},
                outputs=["patches_report.json", "subs"],
                what="the 36x36 tiles of every image",
                make=lambda: stage_patches(cfg, data().images),
            )
        )
        g.add(
            Stage(
                "lists",
                work / "lists",
                options=lambda: {"folds_from": cfg.folds_from, "seed": cfg.seed, "folds": folds_digest()},
                inputs={"patches": "patches"},
                outputs=["folds.json"],
                byproducts=["*.txt", f"{SPACE}/*.txt"],
                what="the fold lists",
                make=lambda: stage_lists(cfg, data().assignment, data().where, data().names),
            )
        )
    snapshot = snapshot_name(cfg.dropout)
    for k in ks:  # fold by fold (dbs, prototxt, train, outputs of fold 1, then of fold 2...)
        if not released:
            train_db, test_db, mean = artefacts.train_db(k), artefacts.test_db(k), artefacts.mean(k)
            g.add(
                Stage(
                    "dbs",
                    work,
                    key=str(k),
                    label=f"dbs (fold {k})",
                    options={
                        "seed": None if cfg.caffe_shuffle else cfg.seed,
                        "caffe_shuffle": cfg.caffe_shuffle,
                        "list_separator": cfg.list_separator,
                    },
                    inputs={"lists": "lists"},
                    outputs=[train_db, test_db, mean],
                    byproducts=[f"{train_db}.*", f"{test_db}.*", f"{mean}.*"],
                    what=f"the databases and mean of fold {k}",
                    make=lambda k=k: stage_dbs(cfg, k),
                )
            )
            g.add(
                Stage(
                    "prototxt",
                    work / "models",
                    key=str(k),
                    label=f"prototxt (fold {k})",
                    options=crossval.solver_options(sp, dropout=cfg.dropout, gpu=cfg.gpu),
                    inputs={"dbs": f"dbs {k}"},
                    outputs=[artefacts.solver(k)],
                    byproducts=[f"{artefacts.files(k)}-*"],
                    what=f"the solver and nets of fold {k}",
                    make=lambda k=k: stage_prototxt(cfg, k),
                )
            )
            g.add(
                Stage(
                    "train",
                    work / "models",
                    key=str(k),
                    label=f"train (fold {k})",
                    inputs={"prototxt": f"prototxt {k}"},
                    outputs=[artefacts.model(k, cfg.iterations, snapshot)],
                    byproducts=[artefacts.snapshots(k, snapshot)],
                    what=f"the trained model of fold {k}",
                    make=lambda k=k: training.train(
                        artefacts.solver_path(work, k), gpu=cfg.gpu, show_progress=cfg.show_progress
                    ),
                )
            )
        model = (lambda k=k: recipes.source(fold_model(cfg, k)[0], folds=folds_digest())) if released else f"train {k}"
        g.add(
            Stage(
                "outputs",
                work / "output",
                key=str(k),
                label=f"outputs (fold {k})",
                options={
                    "mean_mode": cfg.mean_mode,
                    "literal_step5_path": cfg.literal_step5_path,
                    "literal_deploy": cfg.literal_deploy,
                    "dropout": cfg.dropout,
                },
                inputs={"model": model},
                outputs=[f"{k}/votes.json"],
                byproducts=[f"{k}/images/*.json"],
                what=f"the step-5 votes of fold {k}",
                make=lambda k=k: stage_outputs(cfg, k, data().test(k), cfg.data),
            )
        )

    def scores() -> None:
        folds = []
        for k in ks:
            doc = json.loads((artefacts.output_dir(work, k) / "votes.json").read_text())
            folds.append(fold_scores(k, doc["images"]))
        s = pool(folds, data().assignment, cfg.folds_from)
        s["variant"] = variant_of(cfg)
        s["mean_mode"] = cfg.mean_mode
        atomic.write_text(work / "scores.json", json.dumps(s, indent=1))
        atomic.write_text(work / "scores.md", markdown(s, variant_of(cfg)))

    g.add(
        Stage(
            "scores",
            work,
            options={"folds": list(ks)},
            # named by position, as the runs before the stage graph recorded them
            inputs={f"outputs_{i}": f"outputs {k}" for i, k in enumerate(ks)},
            outputs=["scores.json", "scores.md"],
            what="the scores",
            make=scores,
        )
    )
    return g


def variant_of(cfg: Config) -> str:
    """The net: "plain" or "dropout"."""
    return "dropout" if cfg.dropout else "plain"


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Check the data and fold lists, then run the requested stages of :func:`graph` (and check the
    stages they need); returns the summary (also WORK/summary.json)."""
    t0 = time.time()
    work = cfg.work
    data = cohort(cfg)  # bad input: one line, before any work
    released = cfg.released_models is not None
    if released:  # step 5 and scores of the released models: nothing to cut, list or train
        stages = released_stages(stages)
    g = graph(cfg, lambda: data)
    work.mkdir(parents=True, exist_ok=True)
    ran = g.run(stages, force=cfg.force)
    summary: dict = {
        "work": str(work),
        "data": str(Path(cfg.data).resolve()),
        "variant": variant_of(cfg),
        "folds_from": cfg.folds_from,
        "images": len(data.images),
    }
    if not released:
        summary["patches"] = json.loads((work / "patches_report.json").read_text())["patches"]
    summary["leakage"] = foldlists.leakage_summary(data.assignment)
    if "scores" in ran:
        s = json.loads((work / "scores.json").read_text())
        summary["accuracy"] = s["pooled"]["accuracy"]
        summary["table"] = str(work / "scores.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1))
    return summary
