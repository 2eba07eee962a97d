"""What a use case is: the one file to read before adding one.

A use case is one experiment of the tutorials (use case 6 IDC patches, 2 epithelium, 4 lymphocytes;
later nuclei, RADHicaL, the U-Net...). It provides the facts and hooks of :class:`UseCase`; the
shared stages (``pipeline.patches``, ``sampling``, ``lists``, ``folds``, ``databases``,
``templates``, ``training``, ``inference``, ``crossval``, ``metrics``, ``regression``) know no use case
by name and receive what varies as arguments.

To add a use case:

1. write a module (or package) under ``pipeline/usecases/`` with a subclass of :class:`UseCase`
   (or of :class:`CrossValidatedUseCase` for images with masks split into patient folds, which then
   runs through the shared :func:`pipeline.crossval.run`);
2. add one line to ``REGISTRY`` in ``pipeline/usecases/__init__.py``;
3. optionally, fill the report hook (:meth:`UseCase.report`): the headline table (measured beside
   published) and the pictures of ``WORK/report/index.html``; see "Reports" below.

That is all: its commands (``python -m pipeline <command>``, ``<demo_command>``), the ``--usecase``
choices of ``infer``/``regress``/``fetch-released``/``data``, and the make targets (``make
<command> DATA=...``, ``make <demo_command>``: pattern rules) come from the registry.

Reports: every use-case command ends by writing ``WORK/report/index.html`` (and ``python -m
pipeline report WORK`` rebuilds it from the work folder alone). The shared report code
(:mod:`pipeline.report`) draws what every run has: the run's command, the options listed in
:attr:`UseCase.numeric_options` beside the published run's values, and the training curves of
:meth:`UseCase.training_logs`. :meth:`UseCase.report` adds the rest as a
:class:`pipeline.report.Content`:

- ``headline``: a :class:`pipeline.report.Table` of measured rows (each number a
  :class:`pipeline.report.Cell` made with :func:`pipeline.report.from_json`, so the page names the
  JSON file and key it came from) per fold and pooled, then :meth:`UseCase.published_rows`;
- ``sections``: titled paragraphs with tables and :class:`pipeline.report.Picture` s, PNGs the hook
  writes into the ``pictures`` folder it is given, with :mod:`pipeline.report.pictures`
  (``outlines`` for segmentations, ``centres`` for detections, ``montages`` for patches,
  ``label_overlay`` for pixels by class: RADHicaL's computed/accepted/rejected pixels per level, a
  whole-slide overlay), each with a caption saying what the colours mean;
- ``notes`` (problems met, stages not run yet) and ``options`` (values the outputs record).

The hook reads only what the run wrote (scores JSON, outputs, logs, ``WORK/run.json``); it never
recomputes a model's outputs. It must cope with a run that stopped early (say what is missing).

Imports run one way: use cases import shared stages, never the reverse.

Reruns never reuse stale work: a run is a :class:`pipeline.graph.Graph` of declared stages (of
each fold, level...), each naming the options that change its outputs, its inputs (earlier stages,
or the data's recipe), its outputs and the function that makes them, e.g.::

    g.add(Stage("dbs", work, key=str(k), options={"seed": cfg.seed}, inputs={"folds": "folds"},
                outputs=[artefacts.train_db(k), artefacts.mean(k)], make=lambda: build_fold_dbs(k)))
    g.run(stages, force=cfg.force)

Each stage records its recipe beside the outputs (``<stage>_<key>.recipe.json``, :mod:`pipeline.recipes`),
is skipped when done with the same recipe, resumed when it was interrupted with the same recipe,
and refused with one line naming the changed option when the recipe differs (``--force``, added to
every use-case command by :meth:`UseCase.add_commands`, recomputes it and everything after it). A
stage not asked for is only checked: a missing one is named with the stage that makes it. The
cluster scheduler's done checks (:meth:`UseCase.job_steps`) read the same graph. The shared
:func:`pipeline.crossval.graph` is the graph of every :class:`CrossValidatedUseCase`; a
generated demo cohort is a stage too (:meth:`UseCase.demo_data`).
"""

from __future__ import annotations

import argparse
import functools
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

from pipeline import artefacts, crossval, inference, recipes, regression
from pipeline import data as data_sets
from pipeline import export as geojson_export
from pipeline.inference import ENGINES, SCORE_SOURCES
from pipeline.layouts import Layout  # use cases declare their layouts with it
from pipeline.report.content import Cell, Content, Row, Section, Table
from pipeline.run_options import add_run_arguments, add_solver_arguments, solver_from_args  # noqa: F401 (use cases import them from here)
from pipeline.scheduler.plan import (
    JobStep,  # use cases describe their cluster jobs with it
    restrict,
)

#: Where a published figure comes from (shown beside it in every table).
SOURCES = ("paper", "code comment", "recalled")


@dataclass(frozen=True)
class Figure:
    """A published figure, shown beside the measured one.

    ``source`` is one of :data:`SOURCES`: read in the paper, written in the original code's
    comments, or recalled from the paper without a check (marked so in tables).
    """

    metric: str  # "f_score", "balanced_accuracy", "detection_rate", ...
    value: float
    source: str
    note: str = ""  # what it was measured on, e.g. "crop variant, no extra rotations"
    variant: str | None = None  # the option value it belongs to, if any

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Figure source {self.source!r} is not one of {SOURCES}")


@dataclass(frozen=True)
class Archive:
    """A data set archive as the tutorials published it, and the layouts its files may be in.

    ``layouts`` (see :mod:`pipeline.layouts`) lists the accepted layouts, as published first, then
    as the original scripts expected the files; :func:`pipeline.data.locate` finds the data in
    whichever matches. The data sets of the tutorials are declared in
    ``pipeline/usecases/datasets.py``.
    """

    name: str  # file name, e.g. "epi.tgz"
    url: str  # published location (``--url`` overrides)
    sha256: str | None = None  # published checksum (checked), or None: the first download's is recorded
    size: str = ""  # human size, e.g. "336 MB"
    layout: str = ""  # what the archive holds after extraction, one line for people
    layouts: tuple[Layout, ...] = ()  # accepted layouts: as published first


def parse_folds(text: str) -> tuple[int, ...]:
    """``--folds`` text ("1,2" or "1-3,5") to fold numbers; argparse reports a bad value."""
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, _, hi = part.partition("-")
            out += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected fold numbers such as 1,2 or 1-5") from None
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: no fold numbers")
    return tuple(sorted(set(out)))


class UseCase(ABC):
    """What every use case provides. Class attributes are facts; methods are hooks.

    The command line calls, for ``python -m pipeline <command> ...``: :meth:`add_arguments`
    (building the parser), then :meth:`run` with the parsed options. ``<demo_command>`` does the
    same with ``demo=True`` after :meth:`make_demo_cohort`.
    """

    #: Registry key and value of ``--usecase`` options ("idc", "epi", "lymphocyte").
    name: ClassVar[str]
    #: The tutorial's use-case number (6, 2, 4) or None for systems without one.
    number: ClassVar[int | None] = None
    #: One line for help texts and tables.
    title: ClassVar[str]
    #: Command running it end to end (``python -m pipeline usecase2``, ``make usecase2 DATA=...``).
    command: ClassVar[str]
    #: Command running it on a generated cohort (``make demo-epi``), or None.
    demo_command: ClassVar[str | None] = None
    #: Resize factor step 5 applies to an image: the magnification the model was trained at.
    magnification: ClassVar[float] = 1.0
    #: Objective power of the data set's images ("scanned at 20x": 20), or None when unknown. The
    #: model sees ``source_objective * magnification`` (:attr:`model_objective`): whole-slide
    #: inference reads slides at that.
    source_objective: ClassVar[float | None] = None
    #: Number of classes of its nets.
    n_classes: ClassVar[int] = 2
    #: Its stages, in order (``--stages`` takes a comma-separated subset).
    stages: ClassVar[tuple[str, ...]]
    #: Data set archive(s) as published, with their accepted layouts.
    archives: ClassVar[tuple[Archive, ...]] = ()
    #: Layouts its code reads in place (empty: every accepted layout). Data found in another
    #: accepted layout is presented in the first of these, as a folder of links (see prepare_data).
    reads: ClassVar[tuple[Layout, ...]] = ()
    #: Folder of its released models in ``pipeline/resources/released.json`` ("uc2-epi"), or None.
    released_folder: ClassVar[str | None] = None
    #: Published figures shown beside measured ones.
    published: ClassVar[tuple[Figure, ...]] = ()
    #: Options (argparse ``dest`` names) whose values change numbers: each report lists them beside
    #: the values of the published run (the command's defaults).
    numeric_options: ClassVar[tuple[str, ...]] = ()
    #: What ``python -m pipeline export`` makes of its results for QuPath (segmentation polygons,
    #: detection points or patch squares, class name and colour), or None: no export.
    export: ClassVar[geojson_export.Spec | None] = None

    # ------------------------------------------------------------------ command line
    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        """Add the options of :attr:`command` (``demo=False``) or :attr:`demo_command`."""

    @abstractmethod
    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        """Run ``stages`` with the parsed options; return the summary (also in WORK/summary.json).

        A summary may hold "table": the path of a Markdown table the command line prints.
        """

    # ------------------------------------------------------------------ data
    def prepare_data(self, data: Path, cache: Path) -> Path:
        """The root folder of the inputs, in a layout of :attr:`reads`.

        ``data`` is an archive (its sha256 checked against the published one, extracted once,
        safely, under ``cache``) or a folder; the images and masks are found in any layout of
        :attr:`archives` (the top folder and up to 3 below) and, when they are in one the code
        does not read, presented in ``reads[0]`` as links under ``cache``. Raises
        FileNotFoundError listing what was looked for, ChecksumError on a checksum mismatch
        (unless ALLOW_UNVERIFIED=1).
        """
        return data_sets.prepare(
            data, cache, self.archives, self.reads, fetch_hint=f"python -m pipeline data fetch {self.name} --dest DIR"
        )

    @abstractmethod
    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        """Write a small generated cohort (not real tissue) under ``folder`` unless it is there;
        return the data folder to run on."""

    # ------------------------------------------------------------------ regression (optional)
    def add_regress_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options of ``python -m pipeline regress --usecase <name>`` beyond the shared ones
        (--released, --data, --ours, --ours-mean, --out, --gpu)."""

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """Compare the released models in ``released_dir`` with ``args.ours``; return a summary
        whose "table" is a Markdown file. Use cases without released models say so."""
        raise ValueError(f"use case {self.name} has no released models to regress against")

    # ------------------------------------------------------------------ GeoJSON export (issue 29)
    def export_peaks(self, folder: Path, stem: str, source: str = "png"):
        """A detection use case's detections of one image of a step-5 output folder, found as its
        scores find them on the maps ``source`` ("png": the 8-bit _prob.png, "npy": the float map):
        ((N, 2) 0-based (row, col) at the map's scale, (N,) probabilities)."""
        raise ValueError(f"use case {self.name} does not detect points")

    def export_outputs(
        self, folder: Path, opts: geojson_export.Options, only_missing: bool = False, source: str = "png"
    ) -> list[Path]:
        """GeoJSON of each image of a step-5 output folder of this use case's model (beside its maps);
        ``only_missing``: only images without one yet (the outputs stage's automatic export);
        ``source``: the maps a detection use case finds its points on (its scores' ``--score-from``)."""
        if self.export is None:
            raise ValueError(f"use case {self.name} has no GeoJSON export")
        peaks = (lambda f, s: self.export_peaks(f, s, source)) if self.export.kind == "detection" else None
        return geojson_export.export_folder(folder, self.export, opts, peaks, only_missing)

    def export_work(self, work: Path, opts: geojson_export.Options) -> list[Path]:
        """GeoJSON of a work folder's results: every ``WORK/output/<fold>/`` (test images' maps);
        detections on the maps its scores read (``score_from`` of WORK/scores.json, else the PNGs)."""
        folders = sorted(p for p in (Path(work) / "output").glob("*") if p.is_dir())
        if not folders:
            raise FileNotFoundError(f"{work}: no output/<fold>/ folders of step-5 maps (run the outputs stage first)")
        scores = Path(work) / "scores.json"
        source = json.loads(scores.read_text()).get("score_from", "png") if scores.is_file() else "png"
        return [f for d in folders for f in self.export_outputs(d, opts, source=source)]

    # ------------------------------------------------------------------ cluster jobs
    def submitted_data(self, args: argparse.Namespace) -> Callable[[], Path]:
        """The data folder of a submitted run (the demo's generated cohort, or the data prepared in
        WORK/data), found when first asked and then remembered: the scheduler's done checks need it
        only once the prepare job has made it."""
        work = Path(args.work)
        return functools.cache(
            lambda: work / "generated_cohort" if args.demo else self.prepare_data(args.data, work / "data")
        )

    def job_steps(self, args: argparse.Namespace) -> tuple[JobStep, ...]:
        """The run of :attr:`command` with the parsed ``args`` as cluster jobs (``python -m pipeline
        submit``): steps in order, each a job or a job array whose tasks run this command with
        ``--stages``, chained by ``after`` (scheduler dependencies), each knowing when a task's
        artefacts exist (a rerun submits only the others).

        Default: one job running every stage asked for (never recorded as done: the stages skip
        their finished work). Use cases with folds or levels return a job array per fold-wise stage;
        RADHicaL chains each level's steps after the coarser level's.
        """
        return (JobStep("all", self.parse_stages(getattr(args, "stages", None)), what=f"{self.command}, every stage"),)

    # ------------------------------------------------------------------ report
    def report(self, work: Path, run: dict, pictures: Path) -> Content:
        """This use case's part of ``WORK/report/index.html`` (see "Reports" in the module doc).

        ``run``: ``WORK/run.json`` (usecase, command, demo, stages, options), empty when absent;
        ``pictures``: the folder to write PNGs into. The default shows the training curves only.
        """
        return Content(training_logs=self.training_logs(work))

    def training_logs(self, work: Path) -> dict[str, Path]:
        """Training-log CSVs by label: ``WORK/models/<k>_*_log.csv`` as "fold <k>" (``<k>`` may be
        "1_2": fold 1, level 2), in fold order; a single log as "training"."""
        import re

        logs = {}
        for p in Path(work).glob("models/*_log.csv"):
            m = re.match(r"(\d+(?:_\d+)*)_", p.name)
            logs[tuple(int(x) for x in m.group(1).split("_")) if m else (), p.name] = (
                f"fold {m.group(1)}" if m else p.stem,
                p,
            )
        if len(logs) == 1:
            return {"training": next(iter(logs.values()))[1]}
        return dict(v for _, v in sorted(logs.items()))

    def published_rows(self, column_of: dict[str, str], variant: str | None = None) -> list[Row]:
        """Rows of the published figures (of ``variant`` or of none), one per figure note, each
        figure in the column ``column_of[figure.metric]`` (figures of other metrics left out)."""
        rows: dict[tuple[str, str], Row] = {}
        for f in self.published:
            if f.variant not in (None, variant):
                continue
            if f.metric not in column_of:
                continue
            row = rows.setdefault(
                (f.note, f.source),
                Row("published", {}, kind="published", source=f.source, note=f.note.removeprefix("published, ")),
            )
            row.cells[column_of[f.metric]] = Cell(f.value)
        return list(rows.values())

    # ------------------------------------------------------------------ shared helpers
    @property
    def model_objective(self) -> float | None:
        """The apparent magnification the model was trained at (10 for epithelium), or None."""
        return None if self.source_objective is None else self.source_objective * self.magnification

    def figures(self, metric: str, variant: str | None = None) -> list[Figure]:
        """Published figures of ``metric`` (for ``variant``, or those with no variant)."""
        return [f for f in self.published if f.metric == metric and f.variant in (None, variant)]

    def add_commands(self, sub: Any) -> None:
        """Register :attr:`command` and :attr:`demo_command` on an argparse sub-parser set, each
        with ``--stages`` and ``--force``.

        Override to add more commands (use case 6 adds its single-stage commands).
        """
        p = sub.add_parser(
            self.command,
            help=f"use case {self.number}: {self.title}, end to end" if self.number else f"{self.title}, end to end",
        )
        self.add_arguments(p, demo=False)
        p.add_argument("--stages", help="comma-separated subset of " + ",".join(self.stages))
        add_force_argument(p)
        p.set_defaults(usecase=self, demo=False)
        if self.demo_command:
            d = sub.add_parser(self.demo_command, help=f"{self.title} on a small GENERATED cohort (CPU, minutes)")
            self.add_arguments(d, demo=True)
            d.add_argument("--stages", help="comma-separated subset of " + ",".join(self.stages))
            add_force_argument(d)
            d.set_defaults(usecase=self, demo=True)

    def demo_data(self, work: Path, seed: int, force: bool = False, **more: Any) -> tuple[Path, recipes.Recipe]:
        """The generated cohort in ``work/generated_cohort`` as a stage ("cohort", options ``seed`` and
        ``more``, which :meth:`make_demo_cohort` also receives): made once, refused when asked again
        with other options; returns (data folder, its recipe)."""
        folder = Path(work) / "generated_cohort"
        made: list[Path] = []
        rec = recipes.stage(
            "cohort",
            work,
            options={"usecase": self.name, "seed": seed, **more},
            outputs=[folder.name],
            what="the generated cohort",
            force=force,
            make=lambda: made.append(self.make_demo_cohort(folder, seed, **more)),
        )
        return made[0] if made else self.make_demo_cohort(folder, seed, **more), rec

    def parse_stages(self, text: str | None) -> tuple[str, ...]:
        """``--stages`` text to a tuple in pipeline order; unknown names are an error."""
        if not text:
            return self.stages
        asked = [s.strip() for s in text.split(",") if s.strip()]
        unknown = [s for s in asked if s not in self.stages]
        if unknown:
            raise ValueError(
                f"{self.command}: unknown stage(s) {', '.join(unknown)}; choose from {','.join(self.stages)}"
            )
        return tuple(s for s in self.stages if s in asked)


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``: recompute the stages whose recipe changed (and everything after them) instead of refusing."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="recompute each stage whose options changed since it was made, and every stage after "
        "it (default: refuse, naming the option); stages with unchanged options are skipped",
    )


class CrossValidatedUseCase(UseCase):
    """Images with masks (or annotated centres), patients split into k folds, run end to end by
    the shared :func:`pipeline.crossval.run`: patches -> folds -> dbs -> prototxt -> train ->
    outputs -> scores. Subclasses sample patches, list images per patient and score a fold.
    """

    stages: ClassVar[tuple[str, ...]] = ("patches", "folds", "dbs", "prototxt", "train", "outputs", "scores")
    #: Whether each fold picks a threshold on validation images (the patients of the next fold).
    validation: ClassVar[bool] = False
    #: Positive centres per image: published, and for the demo cohorts.
    max_positive: ClassVar[int]
    demo_max_positive: ClassVar[int]
    numeric_options: ClassVar[tuple[str, ...]] = (
        "iterations",
        "seed",
        "max_positive",
        "infer_mode",
        "stride",
        "caffe_shuffle",
    )

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        """The use case's images per patient ID, in the order the original processed them."""

    @abstractmethod
    def params_from_args(self, args: argparse.Namespace) -> Any:
        """The sampling parameters (a frozen dataclass) from the parsed options."""

    @abstractmethod
    def sample_patches(self, cfg: Any) -> dict:
        """Write every image's patches to WORK/subs; return the stage report (see
        :func:`pipeline.sampling.run_image_jobs`): patients, per-patient list entries, counts, problems."""

    @abstractmethod
    def score_fold(self, cfg: Any, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        """Scores of fold ``k`` from its outputs in ``out_dir`` (test images; validation images
        when :attr:`validation`)."""

    @abstractmethod
    def pool(self, cfg: Any, fold_scores: list[dict]) -> dict:
        """The scores JSON: per-fold scores, pooled scores and the published figures."""

    @abstractmethod
    def markdown(self, scores: dict) -> str:
        """The scores as a Markdown table beside the published figures."""

    def report_headline(self, scores: dict) -> Table | None:
        """The headline table of a scores JSON (``WORK/scores.json``): per fold, pooled, published."""
        return None

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        """Report sections with pictures drawn from the run's outputs (``WORK/output/<k>/``)."""
        return []

    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        """Options of this use case only (sampling, scoring); none by default."""

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        """Scoring options from the parsed options; none by default."""
        return {}

    # ------------------------------------------------------------------ implemented
    def add_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if not demo:
            parser.add_argument(
                "--data",
                type=Path,
                required=True,
                help=f"{self.archives[0].name if self.archives else 'archive'} or its extracted folder",
            )
        add_run_arguments(
            parser,
            work=Path(f"runs/{self.demo_command or self.command}") if demo else None,
            iterations=200 if demo else 600000,
            infer_mode="fcn" if demo else "exact",
            intervals=(100, 100, 20) if demo else (None, None, None),
        )
        parser.add_argument(
            "--max-positive",
            type=int,
            default=self.demo_max_positive if demo else self.max_positive,
            help=f"positive centres per image (published {self.max_positive})",
        )
        parser.add_argument("--stride", type=int, default=1, help="step 5: compute every S-th row and column")
        parser.add_argument(
            "--folds",
            type=parse_folds,
            default=(),
            help="run the per-fold stages (dbs, prototxt, train, outputs) and the scores of these folds "
            "only, e.g. 1,2 (default: all 5; cluster array tasks run one fold each)",
        )

        parser.add_argument(
            "--score-from",
            default="png",
            choices=list(SCORE_SOURCES),
            help="scores read step 5's 8-bit min-max scaled _prob/_class PNGs (png, default: what the "
            "original's later steps read) or its float maps (npy)",
        )
        self.add_usecase_arguments(parser, demo)

    def config(self, args: argparse.Namespace, data: Path | None = None, data_recipe: recipes.Recipe | None = None):
        """The :class:`pipeline.crossval.Config` of the parsed options (``data``: the data folder found
        or made; None where the caller does not need it, as the scheduler's checks)."""
        return crossval.Config.from_args(
            args,
            data=data,
            params=self.params_from_args(args),
            scoring=self.scoring_from_args(args),
            stride=args.stride,
            score_from=args.score_from,
            data_recipe=data_recipe,
            folds=tuple(args.folds),
        )

    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        if demo:
            data, data_recipe = self.demo_data(args.work, args.seed, getattr(args, "force", False))
        else:
            data = self.prepare_data(args.data, args.work / "data")
            data_recipe = recipes.source(args.data, memo=args.work / "data")
        summary = crossval.run(self, self.config(args, data, data_recipe), stages)
        if demo:
            summary["cohort"] = f"GENERATED (synthetic): the numbers show the pipeline works, nothing about {self.name}"
        return summary

    def job_steps(self, args: argparse.Namespace) -> tuple[JobStep, ...]:
        """prepare (patches, folds, dbs, prototxt: one job) -> train (an array: task k trains fold k)
        -> outputs (an array: task k computes fold k's step-5 outputs) -> scores (one job); only the
        steps of the stages asked for. A task is done when the run's stage graph
        (:func:`pipeline.crossval.graph`) says its stages are done: recorded done and, for step 5,
        every image's outputs there. Step 5 is partitioned by fold, not shared by claims: each
        fold's outputs are one stage with one recipe record, written by one task (docs/scale-out-clusters.md)."""
        ks = tuple(crossval.selected_folds(args.folds))
        data_folder = self.submitted_data(args)

        g = crossval.graph(self, self.config(args), data_folder)
        prepare = ("patches", "folds", "dbs", "prototxt")
        return restrict(
            (
                JobStep(
                    "prepare",
                    prepare,
                    done=lambda _t: g.all_done(prepare),
                    what="patches, folds, databases, nets",
                ),
                JobStep(
                    "train",
                    ("train",),
                    tasks=ks,
                    after=("prepare",),
                    task_option="--folds",
                    gpu=True,
                    done=lambda k: g.done(f"train {k}"),
                    what="train fold {task}",
                ),
                JobStep(
                    "outputs",
                    ("outputs",),
                    tasks=ks,
                    after=("train",),
                    task_option="--folds",
                    gpu=True,
                    done=lambda k: g.all_done(("outputs",), keys=(k,)),
                    what="step 5 of fold {task}",
                ),
                JobStep(
                    "scores",
                    ("scores",),
                    after=("outputs",),
                    done=lambda _t: g.all_done(("outputs", "scores")),
                    what="scores",
                ),
            ),
            self.parse_stages(getattr(args, "stages", None)),
        )

    def report(self, work: Path, run: dict, pictures: Path) -> Content:
        """Training curves per fold, then :meth:`report_headline` and :meth:`report_sections` of
        ``WORK/scores.json``; problems of the patch stage as notes."""
        content = super().report(work, run, pictures)
        summary = Path(work) / "summary.json"
        for problem in json.loads(summary.read_text()).get("problems", []) if summary.is_file() else []:
            content.notes.append(f"skipped by the patch stage: {problem}")
        scores = Path(work) / "scores.json"
        if not scores.is_file():
            content.notes.append(f"no {scores.name} yet: the scores stage has not run")
            return content
        doc = json.loads(scores.read_text())
        content.headline = self.report_headline(doc)
        content.sections += self.report_sections(Path(work), run, doc, pictures)
        return content

    def add_regress_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--images", nargs="*", default=[], help="images for the map comparison (image use cases)")
        parser.add_argument("--fold", type=int, default=1, help="released fold model to compare with (image use cases)")

        parser.add_argument(
            "--mode",
            default="fcn",
            choices=sorted(ENGINES),
            help="step-5 engine of the map comparison (default fcn: fast; both sides use it)",
        )

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """Probability maps of the released fold model and of ``--ours`` on ``--images``."""
        images = inference.expand_inputs(args.images)
        if not images or not args.ours:
            raise ValueError(f"regress --usecase {self.name} needs --images and at least one --ours with --ours-mean")
        rd = Path(released_dir)
        if self.released_folder and (rd / self.released_folder).is_dir():
            rd = rd / self.released_folder
        regression.compare_maps(
            artefacts.released_model(rd, args.fold),
            artefacts.released_mean(rd, args.fold),
            images,
            args.out,
            args.ours,
            args.ours_mean,
            self.magnification,
            label=f"Use case {self.name}, fold {args.fold}",
            mode=args.mode,
            gpu=args.gpu,
        )
        return {"table": str(Path(args.out) / "maps.md")}
