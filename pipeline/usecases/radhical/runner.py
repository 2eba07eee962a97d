"""RADHicaL end to end: patches -> folds -> dbs -> prototxt -> train -> full -> search -> cascade -> table.

Work folder (the original's names; :mod:`pipeline.artefacts` spells them, fold "<k>_<l>"):

    WORK/subs_<l>/                                  patches of level l (1-4)
    WORK/subs_<l>/{train,test}_w32_<k>.txt          faithful TAB-separated lists (step2_make_training_lists.m)
    WORK/lists/{train,test}_w32_<k>_<l>.txt         space-separated copies for convert_imageset (Q7)
    WORK/lists/{train,test}_w32_parent_<k>.txt      patient IDs
    WORK/DB_{train,test}_<k>_<l>, WORK/DB_train_w32_<k>_<l>.binaryproto
    WORK/models/<k>-<l>-alexnet_solver_ada.prototxt, <k>-<l>-alexnet_traing_32w_db.prototxt,
                deploy_train32.prototxt (ip2: 3 outputs), <k>_<l>_caffenet_train_w32_iter_<N>.caffemodel
    WORK/cascade/level<l>-<key>/<stem>_<l>_prob.png outputs per level, keyed by what made them
    WORK/cascade/<run>.json                         full, naive, radhical-<thresholds> runs
    WORK/search/search.{json,csv,png}               threshold search (step 6)
    WORK/radhical.md, WORK/radhical.json            the headline table

A run is :func:`graph`'s stages (:mod:`pipeline.graph`), two chains: patches -> folds -> dbs ->
prototxt -> train of each trained fold and level (key "<k>_<l>", the shared per-fold stages of
:mod:`pipeline.crossval` with fold names "<k>_<l>"), and full -> search -> cascade -> table, whose
models input is the content (sha256) of fold ``cfg.fold``'s four level models (:func:`models_recipe`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable, Sequence

from pipeline import artefacts, atomic, crossval, folds, lists, nuclei, nuclei_grading, recipes, training
from pipeline.download import sha256_of
from pipeline.graph import Graph, Stage
from pipeline.run_options import RunOptions
from pipeline.usecases.radhical import cascade, geojson, search, table
from pipeline.usecases.radhical.levels import LEVELS
from pipeline.usecases.radhical.patches import Params, run_patches

log = logging.getLogger(__name__)

STAGES = ("patches", "folds", "dbs", "prototxt", "train", "full", "search", "cascade", "table")
#: The stages of the cascade side (full -> search -> cascade -> table): they need the validation and
#: test images of fold ``cfg.fold`` and its four level models.
CASCADE_STAGES = ("full", "search", "cascade", "table")
#: Q12, which test images the table grades: "disjoint" (the fold's test patients minus the validation
#: ones the thresholds are chosen on: the defensible reading, default) or "with-validation" (all the
#: fold's test patients, as the original's test folder presumably held them).
TEST_SETS = ("disjoint", "with-validation")


@dataclass(frozen=True, kw_only=True)
class Config(RunOptions):
    """Options of one RADHicaL run (defaults: the published ones): the shared run options
    (:class:`pipeline.run_options.RunOptions`) and these.

    ``cascade`` (engine, rule, Q1, PNG scaling, GPU, batch) defaults to the published options with
    ``infer_mode`` and ``gpu``; given, its ``mode`` becomes the run's ``infer_mode`` (so a copy with
    another engine replaces ``cascade``, not ``infer_mode``). Example::

        cfg = Config(data=Path("nuclei"), work=Path("runs/radhical"), infer_mode="fcn", train_folds=(1,))
        run(cfg)                                   # every stage
        run(cfg.replace(grid=16, force=True), ("search", "cascade", "table"))
    """

    data: Path | None  # the data folder (None where only the graph's checks are needed: the scheduler)
    params: Params = field(default_factory=Params)
    nfolds: int = 5
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5)  # folds whose 4 level models are trained
    fold: int = 1  # the cascade's models (the original: fold 1)
    validation_count: int = 10  # first N of test_w32_parent_<fold>.txt
    test_set: str = "disjoint"  # TEST_SETS: the fold's test patients minus the validation ones, or all of them
    cascade: cascade.Options | None = None
    thresholds: cascade.Thresholds | None = None  # explicit; else published (and the search's pick)
    grid: int = 32
    budget: float | None = None
    tolerance: float = 0.005
    data_recipe: recipes.Recipe | None = None  # recipe of ``data`` when a stage made it (the demo cohort)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
        if self.cascade is None:
            object.__setattr__(self, "cascade", cascade.Options(mode=self.infer_mode, gpu=self.gpu))
        else:
            object.__setattr__(self, "infer_mode", self.cascade.mode)

    def validate(self) -> None:
        """ValueError naming the option when the cascade options, thresholds, fold or test set are wrong."""
        self.cascade.validate()
        if self.thresholds is not None:
            self.thresholds.validate("--lower/--upper")
        if self.fold not in range(1, self.nfolds + 1):
            raise ValueError(f"--fold {self.fold} is not one of 1..{self.nfolds}")
        if self.test_set not in TEST_SETS:
            raise ValueError(f"--test-set {self.test_set!r} is not one of {', '.join(TEST_SETS)}")

    def crossval(self) -> crossval.Config:
        """The shared per-fold stages' view of this run."""
        return crossval.Config(
            data=self.data,
            work=self.work,
            iterations=self.iterations,
            seed=self.seed,
            nfolds=self.nfolds,
            jobs=self.jobs,
            gpu=self.gpu,
            caffe_shuffle=self.caffe_shuffle,
            solver=self.solver,
            show_progress=self.show_progress,
        )


def fold_level(k: int, level: int) -> str:
    """The fold name of fold k, level l: "<k>_<l>" (DB_train_<k>_<l>, <k>_<l>_caffenet_train_w32)."""
    return f"{k}_{level}"


# --------------------------------------------------------------------------- steps 2-4


def stage_folds(cfg: Config, report: dict) -> dict[str, int]:
    """Seeded patient folds; per level the faithful TAB lists in subs_<l>/, space copies and parents in lists/."""
    patients = report["patients"]
    assignment = folds.assign_folds(patients, cfg.nfolds, cfg.seed)
    for k in range(1, cfg.nfolds + 1):
        for side in ("train", "test"):
            keep = [p for p in patients if (assignment[p] == k) == (side == "test")]
            lists.write_names(cfg.work / "lists" / artefacts.parent_list(side, k), keep)
            for lv in LEVELS:
                ents = [lists.Entry(n, int(lab)) for p in keep for n, lab in report["entries"][str(lv)][p]]
                lists.write_list(cfg.work / f"subs_{lv}" / artefacts.patch_list(side, k), ents, sep="\t")
                lists.write_list(artefacts.list_path(cfg.work, side, fold_level(k, lv)), ents, sep=" ")
    atomic.write_text(cfg.work / "lists" / "folds.json", json.dumps(assignment, indent=1))
    return assignment


def stage_dbs(cfg: Config, k: int, level: int) -> None:
    """DB_train_<k>_<l>, DB_test_<k>_<l> and the mean (the body of the dbs stage of fold k, level l
    in :func:`graph`: its recipe decides whether it runs). ValueError when the level has no
    training patches."""
    name = fold_level(k, level)
    if not lists.read_list(artefacts.list_path(cfg.work, "train", name)):
        raise ValueError(
            f"fold {k}, level {level}: no training patches in {cfg.work / f'subs_{level}'}; see the "
            "problems in patches_report.json (images too small for this level?)"
        )
    crossval.stage_dbs(cfg.crossval(), name, subs=cfg.work / f"subs_{level}")


def stage_prototxt(cfg: Config, k: int, level: int) -> Path:
    """<k>-<l>-alexnet_solver_ada.prototxt etc. with ip2 of 3 outputs; returns the solver."""
    return crossval.stage_prototxt(cfg.crossval(), fold_level(k, level), num_output=3).solver


# --------------------------------------------------------------------------- steps 5-7


def images_of(by_patient: dict[str, list[Path]], patients: list[str]) -> list[Path]:
    """The images of ``patients``, in their order."""
    return [img for p in patients for img in by_patient.get(p, [])]


def validation_and_test(cfg: Config, by_patient: dict[str, list[Path]]) -> tuple[list[Path], list[Path]]:
    """Validation: the images of the first ``validation_count`` IDs of test_w32_parent_<fold>.txt
    (blog step 5); test (Q12): the images of the fold's other test patients (``test_set``
    "disjoint", default: no test image was used to choose a threshold), or of all of them
    ("with-validation"). ValueError when the disjoint test set is empty."""
    if cfg.test_set not in TEST_SETS:
        raise ValueError(f"--test-set {cfg.test_set!r} is not one of {', '.join(TEST_SETS)}")
    parents = lists.read_names(cfg.work / "lists" / artefacts.parent_list("test", cfg.fold))
    val_ids = parents[: cfg.validation_count]
    test_ids = [p for p in parents if cfg.test_set == "with-validation" or p not in val_ids]
    val, test = images_of(by_patient, val_ids), images_of(by_patient, test_ids)
    if parents and not test:
        raise ValueError(
            f"fold {cfg.fold} has {len(parents)} test patient(s), all of them validation patients "
            f"(--validation {cfg.validation_count}): no image is left to test on; lower --validation, "
            "or use a larger cohort (or --test-set with-validation, which tests on the tuning images)"
        )
    return val, test


def make_cascade(cfg: Config) -> cascade.Cascade:
    models = cascade.level_models(cfg.work, cfg.fold, cfg.iterations)
    return cascade.Cascade(models, cfg.cascade, cfg.work / "cascade", cfg.work / "models", cfg.show_progress)


def load_validation(res: cascade.RunResult, images: list[Path]) -> list[search.Validation]:
    """Full outputs per level and the annotation of each validation image."""
    out = []
    for img in images:
        stem = img.name[:-4]
        probs = {lv: cascade.read_prob(res.level_dir(lv), stem, lv) for lv in LEVELS}
        out.append(search.Validation(img.name, probs, nuclei.read_mask(nuclei.mask_path(img)).values))
    return out


def stage_search(cfg: Config, full: cascade.RunResult, images: list[Path]) -> dict:
    """The threshold search on the validation images' full outputs: WORK/search/search.{json,csv,png}."""
    result = search.search(load_validation(full, images), cfg.grid, cfg.budget, cfg.tolerance, cfg.show_progress)
    search.write(result, cfg.work / "search")
    return result


def threshold_sets(cfg: Config, searched: dict | None) -> dict[str, cascade.Thresholds]:
    """The cascade runs to make: explicit thresholds, else the published ones and the search's pick."""
    if cfg.thresholds is not None:
        return {"radhical (given thresholds)": cfg.thresholds}
    sets = {"radhical (published thresholds)": cascade.PUBLISHED}
    if searched is not None:
        sets["radhical (searched thresholds)"] = search.chosen(searched)
    return sets


def run_name(t: cascade.Thresholds) -> str:
    """The cascade run's name (WORK/cascade/<name>.json): radhical-<lower>_<upper>."""
    return "radhical-" + t.text().replace(" / ", "_").replace(",", "-")


def grade_run(res: cascade.RunResult, images: list[Path], lower1: float, levels: tuple[int, ...]) -> dict:
    """Scores (per nucleus, summarised) at the final threshold ``P1 > lower1``, and per level the
    mean windows and wall seconds per image: {"scores", "pixels" {level: windows}, "level_seconds"
    {level: s}, "seconds" (all levels), "lower1", "images" [per image]}."""
    grades, per_image = [], []
    for img in images:
        stem = img.name[:-4]
        shape = res.images[stem][1]["shape"]  # level 1 is the image's own size
        g = nuclei_grading.grade_single_image(
            nuclei.read_mask(nuclei.mask_path(img), shape).values, cascade.final_segmentation(res, stem, lower1)
        )
        grades.append(g)
        per_image.append(
            {
                "image": img.name,
                **nuclei_grading.image_scores(g),
                "levels": {str(lv): res.images[stem][lv] for lv in levels},
            }
        )
    n = max(1, len(images))
    pixels = {lv: sum(res.images[i.name[:-4]][lv]["computed"] for i in images) / n for lv in levels}
    level_seconds = {lv: sum(res.images[i.name[:-4]][lv]["seconds"] for i in images) / n for lv in levels}
    # fcn: the 64-px output tiles computed (the engine's work), when the runs recorded them
    has_tiles = all(res.images[i.name[:-4]][lv].get("tiles") is not None for i in images for lv in levels)
    tiles = {lv: sum(res.images[i.name[:-4]][lv]["tiles"] for i in images) / n for lv in levels} if has_tiles else None
    return {
        "scores": nuclei_grading.summarize(grades),
        "lower1": lower1,
        "pixels": pixels,
        "level_seconds": level_seconds,
        "tiles": tiles,
        "seconds": sum(level_seconds.values()),
        "images": per_image,
    }


def stage_table(
    cfg: Config,
    runs: dict[str, tuple[cascade.RunResult, cascade.Thresholds]],
    naive: cascade.RunResult,
    val: list[Path],
    test: list[Path],
    searched: dict | None,
) -> dict:
    """Grade every cascade run and, at each run's own final threshold, the naive run (so each pair
    of columns differs only in the cascade); WORK/radhical.{json,md}."""
    rows, naives = {}, {}
    chosen_on = {
        "radhical (published thresholds)": "the paper's 10 validation patients (real data, real models)",
        "radhical (given thresholds)": "given (--lower/--upper)",
    }
    if searched is not None:
        chosen_on["radhical (searched thresholds)"] = "validation: " + ", ".join(searched["images"])
    for label, (res, t) in runs.items():
        r = grade_run(res, test, t.lower[0], (4, 3, 2, 1))
        rows[label] = {**r, "thresholds": t.text(), "chosen_on": chosen_on.get(label, ""), "run": res.name}
        if t.lower[0] not in naives:
            naives[t.lower[0]] = grade_run(naive, test, t.lower[0], (1,))
        rows[label]["naive"] = naives[t.lower[0]]
    tuned = sorted({i.name for i in val} & {i.name for i in test})
    notes = [
        f"Naive: the fold-{cfg.fold} level-1 model on every pixel (create_output_image_vector.py -b 1 1), graded "
        "at the final threshold of the RADHicaL column before it (P1 > threshold, holes filled), so each pair of "
        f"columns differs only in the cascade; RADHicaL: the {cfg.cascade.rule} cascade rule, engine "
        f"{cfg.cascade.mode}, PNGs {cfg.cascade.png}, Q1 {cfg.cascade.q1}.",
        f"Test images ({len(test)}, --test-set {cfg.test_set}): {', '.join(i.name for i in test)}; "
        + (
            f"{len(tuned)} of them also chose the searched thresholds (validation): {', '.join(tuned)}."
            if tuned
            else "none of them was used to choose a threshold."
        ),
        "Scores: per annotated nucleus (grade_single_image), mean per image, nanmean over images; "
        "predictions touching no annotated nucleus cost nothing.",
        "Windows: 32x32 windows asked of the engine (one per computed pixel, any level); wall time per level: "
        "reading, resizing, selecting, classifying and writing; saved: 1 - RADHicaL / naive.",
    ]
    if searched is not None:
        notes.append(
            f"Searched thresholds: automatic pick on {len(searched['images'])} validation image(s), "
            f"grid {searched['grid']}, budget {searched['budget']}, tolerance {searched['tolerance']} "
            "(search/search.png)."
        )
    md = table.markdown(rows, len(test), cfg.fold, notes)
    out = {
        "runs": rows,
        "naive": next(iter(naives.values())) if naives else None,
        "images": [i.name for i in test],
        "validation": [i.name for i in val],
        "test_set": cfg.test_set,
        "published": {k: {"radhical": v[0], "naive": v[1]} for k, v in table.PUBLISHED.items()},
    }
    atomic.write_text(cfg.work / "radhical.json", json.dumps(out, indent=1, default=float))
    atomic.write_text(cfg.work / "radhical.md", md)
    return out


# --------------------------------------------------------------------------- the run


def models_recipe(cfg: Config) -> recipes.Recipe:
    """The cascade's input: fold ``cfg.fold``'s four level models and means, by content (sha256), so
    that models trained again, or put there by hand, change the recipe of every stage using them."""
    models = cascade.level_models(cfg.work, cfg.fold, cfg.iterations)
    cascade.check_models(models, LEVELS)
    # the level models by their sha256; the folder's other files (nets, logs, snapshots) do not matter
    return recipes.source(
        cfg.work / "models",
        by_content=False,
        fold=cfg.fold,
        iter=cfg.iterations,
        **{f"level{lv}": [sha256_of(m.model)[:16], sha256_of(m.mean)[:16]] for lv, m in models.items()},
    )


def graph(cfg: Config, stages: Sequence[str] = STAGES, data: Callable[[], Path] | None = None) -> Graph:
    """The stages of a RADHicaL run (``stages``: those asked for, which decide whether the search is
    part of it): patches -> folds -> dbs, prototxt of each trained fold and level ("<k>_<l>",
    ``cfg.train_folds`` x levels 1-4) -> train of each (``cfg.jobs`` at a time, all refused before
    any starts); folds + the level models of fold ``cfg.fold`` by content -> full -> search ->
    cascade -> table. The search (and the full outputs it reads) is part of the run when it is asked
    for or was made before, and no ``--lower/--upper`` are given; the cascade then also runs its
    pick. ``data`` (a function giving the data folder, default ``cfg.data``) is called only when
    the images are needed. What an earlier stage wrote (the report, the folds, the search) is read
    when the stage using it is reached."""
    work = cfg.work
    asked = set(stages)
    data = data or (lambda: cfg.data)
    g = Graph()

    @cache
    def by_patient() -> dict[str, list[Path]]:
        return nuclei.images_by_patient(data())

    @cache
    def split() -> tuple[list[Path], list[Path]]:
        """(validation, test) images of fold ``cfg.fold`` (once the folds are made)."""
        return validation_and_test(cfg, by_patient())

    @cache
    def models() -> recipes.Recipe:
        return models_recipe(cfg)

    @cache
    def casc() -> cascade.Cascade:
        return make_cascade(cfg)

    def use_search() -> bool:
        made = recipes.read_record(recipes.record_path(work / "search", "search")) is not None
        return cfg.thresholds is None and ("search" in asked or made)

    def searched() -> dict | None:
        return json.loads((work / "search" / "search.json").read_text()) if use_search() else None

    def sets() -> dict[str, cascade.Thresholds]:
        return threshold_sets(cfg, searched())

    def names() -> dict[str, str]:
        return {label: run_name(t) for label, t in sets().items()}

    g.add(
        Stage(
            "patches",
            work,
            options={"seed": cfg.seed, **recipes.plain(cfg.params)},
            inputs={"data": lambda: cfg.data_recipe or recipes.source(data())},
            outputs=["patches_report.json"] + [f"subs_{lv}" for lv in LEVELS],
            what="the patches of the four levels and their report",
            make=lambda: run_patches(data(), by_patient(), work, cfg.params, cfg.seed, show_progress=cfg.show_progress),
        )
    )
    g.add(
        Stage(
            "folds",
            work,
            options={"seed": cfg.seed, "nfolds": cfg.nfolds},
            inputs={"patches": "patches"},
            outputs=["lists/folds.json"],
            byproducts=["lists/*.txt", "subs_*/*_w32_*.txt"],
            what="the patient folds and their lists",
            make=lambda: stage_folds(cfg, json.loads((work / "patches_report.json").read_text())),
        )
    )
    # ------------------------------------------------ training: per fold and level, key "<k>_<l>"
    pairs = [(k, lv) for k in cfg.train_folds for lv in LEVELS]
    sp = cfg.solver_params()
    for k, lv in pairs:
        name = fold_level(k, lv)
        n = crossval.fold_names(name)
        g.add(
            Stage(
                "dbs",
                work,
                key=name,
                label=f"dbs (fold {k}, level {lv})",
                options={"seed": None if cfg.caffe_shuffle else cfg.seed, "caffe_shuffle": cfg.caffe_shuffle},
                inputs={"folds": "folds"},
                outputs=[n["train_db"], n["mean"]],
                byproducts=[n["test_db"], f"{n['train_db']}.*", f"{n['test_db']}.*", f"{n['mean']}.*"],
                what=f"the databases and mean of fold {k}, level {lv}",
                make=lambda k=k, lv=lv: stage_dbs(cfg, k, lv),
            )
        )
        g.add(
            Stage(
                "prototxt",
                work / "models",
                key=name,
                label=f"prototxt (fold {k}, level {lv})",
                options=crossval.solver_options(sp, gpu=cfg.gpu),
                inputs={"dbs": f"dbs {name}"},
                outputs=[artefacts.solver(name)],
                byproducts=[f"{artefacts.files(name)}-*"],
                what=f"the solver and nets of fold {k}, level {lv}",
                make=lambda k=k, lv=lv: stage_prototxt(cfg, k, lv),
            )
        )
    for k, lv in pairs:
        name = fold_level(k, lv)
        g.add(
            Stage(
                "train",
                work / "models",
                key=name,
                label=f"train (fold {k}, level {lv})",
                inputs={"prototxt": f"prototxt {name}"},
                outputs=[artefacts.model(name, cfg.iterations)],
                byproducts=[artefacts.snapshots(name)],
                what=f"the trained model of fold {k}, level {lv}",
                make=lambda name=name: training.train(
                    artefacts.solver_path(work, name),
                    gpu=cfg.gpu,
                    show_progress=cfg.show_progress and cfg.jobs == 1,
                ),
                together=cfg.jobs,
            )
        )
    # ------------------------------------------------ the cascade side (fold cfg.fold's level models)
    casc_opts = {"infer_mode": cfg.cascade.mode, "png": cfg.cascade.png}

    def full_wanted() -> bool:
        if not ("full" in asked or use_search()):
            return False
        if not split()[0]:
            raise ValueError(f"fold {cfg.fold} has no validation images (--validation {cfg.validation_count})")
        return True

    def cascade_wanted() -> bool:
        if not split()[1]:
            raise ValueError(f"fold {cfg.fold} has no test images")
        return True

    def run_cascades() -> None:  # image by image, all runs side by side: their wall times compare like for like
        runs = [(names()[label], t, (4, 3, 2, 1)) for label, t in sets().items()]
        casc().run_interleaved(split()[1], runs + [("naive", None, (1,))])

    def make_table() -> None:
        val, test = split()
        runs = {label: (cascade.load_run(work / "cascade", names()[label]), t) for label, t in sets().items()}
        naive = cascade.load_run(work / "cascade", "naive")
        stage_table(cfg, runs, naive, val, test, searched())
        geojson.export_work(work)

    g.add(
        Stage(
            "full",
            work / "cascade",
            options={**casc_opts, "validation": cfg.validation_count},
            inputs={"folds": "folds", "models": models},
            outputs=["full.json"],
            what="the full outputs of every level on the validation images",
            make=lambda: casc().run(split()[0], "full", None),
            when=full_wanted,
        )
    )
    g.add(
        Stage(
            "search",
            work / "search",
            options={"grid": cfg.grid, "budget": cfg.budget, "tolerance": cfg.tolerance},
            inputs={"full": "full"},
            outputs=["search.json"],
            byproducts=["search.csv", "search.png"],
            what="the threshold search",
            make=lambda: stage_search(cfg, cascade.load_run(work / "cascade", "full"), split()[0]),
            when=use_search,
        )
    )
    g.add(
        Stage(
            "cascade",
            work / "cascade",
            options=lambda: {
                **casc_opts,
                "rule": cfg.cascade.rule,
                "q1": cfg.cascade.q1,
                "test_set": cfg.test_set,
                "validation": cfg.validation_count,
                "thresholds": {label: t.text() for label, t in sets().items()},
            },
            # the search's input is left out when it is not part of the run (given thresholds)
            inputs={"folds": "folds", "models": models, "search": "search"},
            outputs=lambda: ["naive.json"] + [f"{n}.json" for n in names().values()],
            what="the cascade and naive runs on the test images",
            make=run_cascades,
            when=cascade_wanted,
        )
    )
    g.add(
        Stage(
            "table",
            work,
            inputs={"cascade": "cascade"},
            outputs=["radhical.json", "radhical.md", "geojson"],
            what="the headline table (and each RADHicaL row's segmentations as GeoJSON, WORK/geojson/)",
            make=make_table,
        )
    )
    return g


def run(cfg: Config, stages: tuple[str, ...] = STAGES) -> dict:
    """Run the stages; returns (and writes WORK/summary.json) a summary naming the table.

    The run is :func:`graph`'s stages, run by :meth:`pipeline.graph.Graph.run`: each stage (per
    fold x level for dbs, prototxt and train: key "<k>_<l>") is skipped when done with the same
    options, refused in one line naming the changed option, recomputed with ``cfg.force``
    (with every stage after it); the stages those asked for need are checked as inputs. The
    cascade side takes the level models by content (:func:`models_recipe`), so models trained
    elsewhere can be used.
    """
    t0 = time.time()
    work = cfg.work
    work.mkdir(parents=True, exist_ok=True)
    cfg.validate()
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {','.join(STAGES)}")
    if not nuclei.images_by_patient(cfg.data):
        raise FileNotFoundError(f"{cfg.data}: no *_mask.png files (expected {nuclei.LAYOUT})")
    g = graph(cfg, stages)
    # (a run training no fold has no dbs, prototxt or train stage)
    ran = g.run([s for s in stages if s in g.names()], force=cfg.force)
    summary: dict = {}
    if "folds" in ran:
        summary["folds"] = json.loads((work / "lists" / "folds.json").read_text())
    if "patches" in ran:
        report = json.loads((work / "patches_report.json").read_text())
        probs = report["problems"]
        summary.update(
            mask_kinds=report["mask_kinds"],
            problems=probs if len(probs) <= 5 else f"{len(probs)} (listed in patches_report.json)",
        )
    summary.update(iterations=cfg.iterations, fold=cfg.fold)
    if any(s in stages for s in CASCADE_STAGES):
        val, test = validation_and_test(cfg, nuclei.images_by_patient(cfg.data))
        summary.update(validation=[i.name for i in val], test=[i.name for i in test])
    if "search" in ran:
        searched = json.loads((work / "search" / "search.json").read_text())
        summary["search"] = {"thresholds": searched["thresholds"], "plot": str(work / "search" / "search.png")}
    if "table" in ran:
        summary["scores"] = json.loads((work / "radhical.json").read_text())
        summary["table"] = str(work / "radhical.md")
    summary["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(work / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary
