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
    WORK/output/<k>/<image>_{prob,class}.png    step 5 of fold k's model on the fold's test patients
    WORK/validation/<k>/<image>_{prob,class}.png  the same model on its validation patients (threshold choice),
                                                kept apart so that a glob over output/<k>/ sees test images only
    WORK/scores.json, WORK/scores.md
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from pipeline import (
    artefacts,
    atomic,
    databases,
    export,
    folds,
    inference,
    lists,
    recipes,
    sampling,
    templates,
    training,
)
from pipeline.graph import Graph, Stage
from pipeline.inference import outputs
from pipeline.run_options import RunOptions

log = logging.getLogger(__name__)

STAGES = ("patches", "folds", "dbs", "prototxt", "train", "outputs", "scores")
NFOLDS = 5  # the original's crossvalind('Kfold', n, 5)


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
    def export_outputs(
        self, folder: Path, opts: export.Options, only_missing: bool = False, source: str = "png"
    ) -> list[Path]: ...


@dataclass(frozen=True, kw_only=True)
class Config(RunOptions):
    """Options of one cross-validated run: the shared ones (:class:`pipeline.run_options.RunOptions`)
    and these (use-case specifics in ``params`` and ``scoring``)."""

    data: Path | None
    params: Any = None  # the use case's sampling parameters (a frozen dataclass)
    scoring: Mapping[str, Any] = field(default_factory=dict)  # the use case's scoring options
    nfolds: int = NFOLDS
    stride: int = 1
    score_from: str = "png"  # scores read the PNGs the original wrote, or "npy" (float maps)
    data_recipe: recipes.Recipe | None = None  # recipe of ``data`` when a stage made it (the demo cohort)
    folds: tuple[int, ...] = ()  # the folds whose per-fold stages and scores run (default all)
    # fold k's training lists leave out its validation patients (fold k % nfolds + 1), who then only
    # choose the threshold; False: they train too, as the original's folds did
    hold_out_validation: bool = False


# --------------------------------------------------------------------------- per-fold stages


def selected_folds(folds: Sequence[int], nfolds: int = NFOLDS) -> list[int]:
    """The folds to run (``folds``, default 1..nfolds), sorted; ValueError naming one outside 1..nfolds."""
    ks = sorted(set(folds)) or list(range(1, nfolds + 1))
    bad = [str(k) for k in ks if not 1 <= k <= nfolds]
    if bad:
        raise ValueError(f"--folds {','.join(bad)}: the folds are 1..{nfolds}")
    return ks


def fold_images(
    assignment: dict[str, int], by_patient: dict[str, list[Path]], k: int, nfolds: int, validation: bool
) -> tuple[list[Path], list[Path]]:
    """Step-5 images of fold ``k``: its test patients' images, and (``validation``) those of the
    next fold's patients, who are on the training side of fold k (the threshold's validation set)."""
    test = [i for p, f in assignment.items() if f == k for i in by_patient[p]]
    vk = k % nfolds + 1
    val = [i for p, f in assignment.items() if f == vk for i in by_patient[p]] if validation else []
    return test, val


def fold_names(k: int | str) -> dict[str, str]:
    """Names of fold ``k``'s databases, mean and net files ("1", or "1_2" for fold 1 level 2, whose
    nets the original named "1-2-...")."""
    return {
        "train_db": artefacts.train_db(k),
        "test_db": artefacts.test_db(k),
        "mean": artefacts.mean(k),
        "files": artefacts.files(k),
    }


def solver_options(sp: templates.SolverParams, **more) -> dict:
    """Recipe options of the prototxt stage: the solver values (max_iter named ``iter``, as the command line)."""
    d = dict(sp.__dict__)
    if d.get("lr_policy", "fixed") == "fixed":  # the template's schedule: recipes as before the option existed
        for k in ("lr_policy", "stepsize", "gamma"):
            d.pop(k, None)
    return {"iter": d.pop("max_iter"), **d, **more}


def stage_folds(cfg: Config, report: dict) -> dict[str, int]:
    """Seeded patient folds and their lists (lists/{train,test}_w32_<k>.txt, *_parent_<k>.txt)."""
    patients = report["patients"]
    assignment = folds.assign_folds(patients, cfg.nfolds, cfg.seed)
    per_patient = sampling.entries_from_report(report)
    folds.write_fold_lists(cfg.work / "lists", patients, per_patient, assignment, cfg.nfolds)
    if cfg.hold_out_validation:
        write_train_lists_without_validation(cfg.work / "lists", patients, per_patient, assignment, cfg.nfolds)
    atomic.write_text(cfg.work / "lists" / "folds.json", json.dumps(assignment, indent=1))
    return assignment


def write_train_lists_without_validation(
    out_dir: Path, patients: Sequence[str], per_patient: dict, assignment: dict[str, int], nfolds: int
) -> None:
    """Rewrite each fold's train_w32_<k>.txt and train_w32_parent_<k>.txt without the patients of
    fold k % nfolds + 1 (its validation patients, :func:`fold_images`); the test lists are unchanged."""
    for k in range(1, nfolds + 1):
        keep = [p for p in patients if assignment[p] not in (k, k % nfolds + 1)]
        lists.write_list(
            Path(out_dir) / artefacts.patch_list("train", k), [e for p in keep for e in per_patient.get(p, [])], sep=" "
        )
        lists.write_names(Path(out_dir) / artefacts.parent_list("train", k), keep)


def stage_dbs(cfg: Config, k: int | str, subs: Path | None = None) -> None:
    """DB_train_<k>, DB_test_<k> (convert_imageset over the patches in ``subs``, default WORK/subs)
    from lists/{train,test}_w32_<k>.txt, and the mean (compute_image_mean), if absent."""
    n = fold_names(k)
    for side, db in (("train", n["train_db"]), ("test", n["test_db"])):
        path = cfg.work / db
        lst = artefacts.list_path(cfg.work, side, k)
        if path.is_dir():
            continue
        entries = lists.read_list(lst)
        if not entries:
            log.warning("fold %s: %s list is empty; no %s DB", k, side, side)
            continue
        if not any(e.label == 1 for e in entries):
            log.warning(
                "fold %s: %s list has no positive patches (%d negatives); going on as the original would",
                k,
                side,
                len(entries),
            )
        databases.build_db(subs or cfg.work / "subs", lst, path, seed=cfg.seed, caffe_shuffle=cfg.caffe_shuffle)
    if not (cfg.work / n["mean"]).is_file():
        databases.compute_mean(cfg.work / n["train_db"], cfg.work / n["mean"])


def stage_prototxt(cfg: Config, k: int | str, num_output: int = 2) -> templates.FoldFiles:
    """Solver, train/test net, deploy net and job scripts of fold ``k`` (nets of ``num_output`` classes)."""
    n = fold_names(k)
    test = cfg.work / n["test_db"]
    n_test = len(lists.read_list(artefacts.list_path(cfg.work, "test", k))) if test.is_dir() else 0
    return templates.render_fold(
        cfg.work / "models",
        str(k),
        cfg.work / n["train_db"],
        test if test.is_dir() else None,
        cfg.work / n["mean"],
        n_test,
        gpu=cfg.gpu,
        solver=cfg.solver_params(),
        num_output=num_output,
        file_prefix=n["files"],
    )


def stage_outputs(
    cfg: Config, k: int, model: Path, images: list[Path], magnification: float, out: Path | None = None
) -> Path:
    """Step 5 of fold ``k``'s model on ``images`` into ``out`` (default WORK/output/<k>/): the
    original's min-max scaled PNGs, and the float maps as .npy."""
    out = artefacts.output_dir(cfg.work, k) if out is None else Path(out)
    engine = inference.make_engine(
        cfg.infer_mode, model, cfg.work / fold_names(k)["mean"], gpu=cfg.gpu, net_dir=cfg.work / "models"
    )
    inference.infer_images(
        images,
        engine,
        out,
        inference.Options(stride=cfg.stride),
        resize=magnification,
        save_npy=True,
        show_progress=cfg.show_progress,
    )
    return out


# --------------------------------------------------------------------------- the graph


@dataclass
class FoldImages:
    """Each fold's images, read when first asked (once the folds stage has written
    WORK/lists/folds.json): ``test(k)`` its test patients' images, ``validation(k)`` those of its
    validation patients (:func:`fold_images`; none unless ``with_validation``), ``train(k)`` those of
    every other fold's patients. ``data`` gives the data folder (a function: the scheduler finds it
    only once the prepare job has run); ``by_patient`` lists a data folder's images per patient."""

    work: Path
    data: Callable[[], Path]
    by_patient: Callable[[Path], dict[str, list[Path]]]
    with_validation: bool = False
    nfolds: int = NFOLDS
    _cache: dict = field(default_factory=dict)

    def _load(self) -> tuple[dict[str, int], dict[str, list[Path]]]:
        if not self._cache:
            assignment = json.loads((Path(self.work) / "lists" / "folds.json").read_text())
            self._cache.update(assignment=assignment, by_patient=self.by_patient(self.data()))
        return self._cache["assignment"], self._cache["by_patient"]

    def test(self, k: int) -> list[Path]:
        return fold_images(*self._load(), k, self.nfolds, self.with_validation)[0]

    def validation(self, k: int) -> list[Path]:
        return fold_images(*self._load(), k, self.nfolds, self.with_validation)[1]

    def train(self, k: int) -> list[Path]:
        assignment, by_patient = self._load()
        return [i for p, f in assignment.items() if f != k for i in by_patient[p]]


def outputs_missing(work: Path, k: int, images: Sequence[Path], folder: str = "output") -> list[Path]:
    """The images of fold ``k`` whose step-5 outputs are not (completely) in WORK/<folder>/<k>
    (``folder`` "output": test images; "validation": use case 2's validation images)."""
    out = Path(work) / folder / str(k)
    return [i for i in images if not outputs.is_done(outputs.output_paths(out, Path(i).stem))]


def graph(uc: FoldedUseCase, cfg: Config, data: Any = None) -> Graph:
    """The stages of a cross-validated run: patches -> folds -> dbs, prototxt, train, outputs and
    validation outputs of each fold (``cfg.folds``) -> scores. ``data`` (a function giving the data
    folder, default ``cfg.data``) is called only when the folds' images are needed."""
    work = Path(cfg.work)
    ks = selected_folds(cfg.folds, cfg.nfolds)
    images = FoldImages(work, data or (lambda: cfg.data), uc.images_by_patient, uc.validation, cfg.nfolds)
    g = Graph()

    def report() -> dict:
        return json.loads((work / "patches_report.json").read_text())

    g.add(
        Stage(
            "patches",
            work,
            options={"seed": cfg.seed, **recipes.plain(cfg.params or {})},
            inputs={"data": lambda: cfg.data_recipe or recipes.source(cfg.data)},
            outputs=["patches_report.json", "subs"],
            what="the patches and their report",
            make=lambda: uc.sample_patches(cfg),
        )
    )
    g.add(
        Stage(
            "folds",
            work / "lists",
            options={
                "seed": cfg.seed,
                "nfolds": cfg.nfolds,
                **({"hold_out_validation": True} if cfg.hold_out_validation else {}),
            },
            inputs={"patches": "patches"},
            outputs=["folds.json"],
            byproducts=["*.txt"],
            what="the patient folds and their lists",
            make=lambda: stage_folds(cfg, report()),
        )
    )
    for k in ks:
        n = fold_names(k)
        g.add(
            Stage(
                "dbs",
                work,
                key=str(k),
                label=f"dbs (fold {k})",
                options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
                inputs={"folds": "folds"},
                outputs=[n["train_db"], n["mean"]],
                byproducts=[n["test_db"], f"{n['train_db']}.*", f"{n['test_db']}.*", f"{n['mean']}.*"],
                what=f"the databases and mean of fold {k}",
                make=lambda k=k: stage_dbs(cfg, k),
            )
        )
    sp = cfg.solver_params()
    for k in ks:
        g.add(
            Stage(
                "prototxt",
                work / "models",
                key=str(k),
                label=f"prototxt (fold {k})",
                options=solver_options(sp, gpu=cfg.gpu),
                inputs={"dbs": f"dbs {k}"},
                outputs=[artefacts.solver(k)],
                byproducts=[f"{artefacts.files(k)}-*"],
                what=f"the solver and nets of fold {k}",
                make=lambda k=k: stage_prototxt(cfg, k),
            )
        )
    models = {k: artefacts.model_path(work, k, cfg.iterations) for k in ks}
    for k in ks:
        g.add(
            Stage(
                "train",
                work / "models",
                key=str(k),
                label=f"train (fold {k})",
                inputs={"prototxt": f"prototxt {k}"},
                outputs=[models[k].name],
                byproducts=[artefacts.snapshots(k)],
                what=f"the trained model of fold {k}",
                make=lambda k=k: training.train(
                    artefacts.solver_path(work, k), gpu=cfg.gpu, show_progress=cfg.show_progress and cfg.jobs == 1
                ),
                together=cfg.jobs,
            )
        )
    out_options = {
        "infer_mode": cfg.infer_mode,
        "stride": cfg.stride,
        "magnification": uc.magnification,
        "png_scale": "minmax",
    }

    # GeoJSON beside the maps, for QuPath (issue 29): segmentations once the maps exist; detections
    # once the scores exist, on the maps the scores read (--score-from), so the points are those counted
    spec = getattr(uc, "export", None)
    detects = spec is not None and spec.kind == "detection"

    def export_segmentations(k: int) -> None:
        if spec is not None and not detects and images.test(k):
            uc.export_outputs(artefacts.output_dir(work, k), export.Options(), only_missing=True)

    def export_detections() -> None:
        for k in ks:
            if detects and images.test(k):
                uc.export_outputs(artefacts.output_dir(work, k), export.Options(), source=cfg.score_from)

    for k in ks:
        g.add(
            Stage(
                "outputs",
                work / "output",
                key=str(k),
                label=f"outputs (fold {k})",
                options=out_options,
                inputs={"model": f"train {k}"},
                outputs=[str(k)],
                what=f"the step-5 outputs of fold {k}'s test images",
                make=lambda k=k: stage_outputs(
                    cfg, k, models[k], images.test(k), uc.magnification, artefacts.output_dir(work, k)
                ),
                incomplete=lambda k=k: outputs_missing(work, k, images.test(k)),
                after=lambda k=k: export_segmentations(k),
            )
        )
    # the validation images' maps go to their own folder, apart from the test maps (issue 11)
    for k in ks:
        g.add(
            Stage(
                "outputs",
                work / "validation",
                key=str(k),
                id=f"validation {k}",
                label=f"validation outputs (fold {k})",
                options=out_options,
                inputs={"model": f"train {k}"},
                outputs=[str(k)],
                what=f"the step-5 outputs of fold {k}'s validation images",
                make=lambda k=k: stage_outputs(
                    cfg, k, models[k], images.validation(k), uc.magnification, artefacts.validation_dir(work, k)
                ),
                when=lambda k=k: bool(images.validation(k)),
                incomplete=lambda k=k: outputs_missing(work, k, images.validation(k), "validation"),
            )
        )

    def score() -> None:
        fold_scores = [
            uc.score_fold(cfg, k, artefacts.output_dir(work, k), images.test(k), images.validation(k))
            for k in ks
            if images.test(k)
        ]
        if not fold_scores:
            raise ValueError(f"{cfg.data}: no fold has test images to score")
        scores = uc.pool(cfg, fold_scores)
        atomic.write_text(work / "scores.json", json.dumps(scores, indent=1))
        atomic.write_text(work / "scores.md", uc.markdown(scores))

    g.add(
        Stage(
            "scores",
            work,
            options={"stride": cfg.stride, "score_from": cfg.score_from, **recipes.plain(cfg.scoring)},
            inputs={
                **{f"outputs {k}": f"outputs {k}" for k in ks},
                **{f"validation {k}": f"validation {k}" for k in ks},
            },
            outputs=["scores.json", "scores.md"],
            what="the scores",
            make=score,
            after=export_detections,
        )
    )
    return g


# --------------------------------------------------------------------------- the run


def run(uc: FoldedUseCase, cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the stages for all folds; returns (and writes) a summary with per-fold and pooled scores.

    The run is :func:`graph`'s stages, run by :meth:`pipeline.graph.Graph.run`: each skipped when
    done with the same recipe, refused (or, with ``cfg.force``, recomputed) when an option changed;
    the stages that those asked for need are checked as inputs (done, same recipe).
    """
    t0 = time.time()
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    g = graph(uc, cfg)
    ran = g.run(stages, force=cfg.force)
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
