"""Use case 5, mitosis detection in two training stages: the registered plug-in (facts, options,
the run, cluster jobs, report, regression against the released second-stage models)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from pipeline import artefacts, crossval, inference, recipes
from pipeline import export as geojson_export
from pipeline.report import DETECTION_COLUMNS, Section, Table, detection_rows
from pipeline.scheduler.plan import JobStep, restrict
from pipeline.usecases.base import Archive, CrossValidatedUseCase, Figure, Layout
from pipeline.usecases.mitosis import detection, regression, runner
from pipeline.usecases.mitosis.cohort import make_cohort
from pipeline.usecases.mitosis.sampling import Params, images_by_patient

log = logging.getLogger(__name__)

#: The original's layout (step1_make_patches.m): flat frames with their ground truth and cmask beside them.
FLAT = Layout(
    "as the original read it: <pp>_<ff>.tif with <pp>_<ff>_pc.png (and <pp>_<ff>_cmask.png) beside it",
    images="{patient:[0-9][0-9]}_{n}.tif",
    masks="{patient}_{n}_pc.png",
    patient="patient",
)
MITOSIS = Archive(
    "mitosis",
    "",  # no public archive is known (AMIDA13's training set, with the authors' _pc and _cmask files)
    layout="<pp>_<ff>.tif (2000x2000, 40x) with <pp>_<ff>_pc.png (mitosis pixels non-zero) and "
    "<pp>_<ff>_cmask.png (blue-ratio mask) beside it; pp = patient 01..12",
    layouts=(FLAT,),
)

DEMO_ITER = 100  #: training iterations of each stage in the demo


class Mitosis(CrossValidatedUseCase):
    """Use case 5: mitosis detection in breast H&E frames at 40x, 12 patients (10 dropped), 5 patient
    folds, stage 1 (blue-ratio negatives) then stage 2 (negatives by stage-1 probability)."""

    name = "mitosis"
    number = 5
    title = "mitosis detection (two stages)"
    command = "usecase5"
    demo_command = "demo-mitosis"
    magnification = 0.5
    source_objective = 40.0
    stages = runner.STAGES
    archives = (MITOSIS,)
    export = geojson_export.Spec("detection", "Mitosis", (255, 140, 0), "detection")
    released_folder = "uc5-mitosis"
    published = (Figure("f_score", 0.53, "paper", "detection, 550 mitoses, JPI 2016"),)
    validation = False
    max_positive = 0  # every mitosis pixel is a positive (no cap): --max-positive is not used
    demo_max_positive = 0
    numeric_options = tuple(o for o in CrossValidatedUseCase.numeric_options if o != "max_positive") + (
        "rot225", "negative_class_in_name", "npos_in_image_only", "stage2_negatives", "stage2_replace",
        "peak_threshold", "peak_disk", "peak_clear_radius", "match_radius",
    )  # fmt: skip

    # ------------------------------------------------------------------ options
    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        if demo:  # two stages x 5 folds: 100 iterations each keeps the demo near 10 CPU minutes
            parser.set_defaults(iterations=DEMO_ITER)
        g = parser.add_argument_group("use case 5 (mitosis)")
        g.add_argument(
            "--rot225",
            action="store_true",
            help="stage-1 positives rotated by 225 degrees (default: 215, as the original's list, sic)",
        )
        g.add_argument(
            "--negative-class-in-name",
            type=int,
            choices=(0, 1),
            default=1,
            help="class written in stage-1 negative patch NAMES: 1 (default: the code that made the "
            "released models, issue #5) or 0 (the 2020 fix); list labels are 0 either way",
        )
        g.add_argument(
            "--npos-in-image-only",
            action="store_true",
            help="stage 1's negative count 2.5 npos counts the frame's mask pixels only (default: the "
            "padded mask's, mirrored copies included, as the original)",
        )
        g.add_argument(
            "--stage2-negatives",
            type=int,
            default=200 if demo else 3636,
            help="stage 2: num_neg_samples; a frame draws this minus its positive pixels (original 3636)",
        )
        g.add_argument(
            "--stage2-without-replacement",
            dest="stage2_replace",
            action="store_false",
            help="stage 2 draws negatives without replacement (default: with, datasample's default)",
        )
        g.add_argument(
            "--keep-patient-10",
            action="store_true",
            help="do not drop patient 10 by name (patients without mitoses are dropped anyway)",
        )
        g.add_argument(
            "--peak-threshold",
            type=float,
            default=detection.PEAK_THRESHOLD,
            help="detections: maxima of the smoothed stage-2 P(mitosis) above this (invented)",
        )
        g.add_argument(
            "--peak-disk",
            type=int,
            default=detection.PEAK_DISK,
            help="detections: fspecial('disk', R) smoothing at 0.5x (invented)",
        )
        g.add_argument(
            "--peak-clear-radius",
            type=float,
            default=detection.PEAK_CLEAR_RADIUS,
            help="detections: px cleared around each maximum at 0.5x (invented)",
        )
        g.add_argument("--match-radius", type=float, default=detection.MATCH_RADIUS,
                       help="a detection matches a mitosis centroid within this many px at 40x (invented)")  # fmt: skip

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(
            rot225=args.rot225,
            negative_class_in_name=args.negative_class_in_name,
            npos_in_image_only=args.npos_in_image_only,
            stage2_negatives=args.stage2_negatives,
            stage2_replace=args.stage2_replace,
            drop_patients=() if args.keep_patient_10 else Params.drop_patients,
        )

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        return {k: getattr(args, k) for k in ("peak_threshold", "peak_disk", "peak_clear_radius", "match_radius")}

    # ------------------------------------------------------------------ hooks of CrossValidatedUseCase
    def prepare_data(self, data: Path, cache: Path) -> Path:
        """The data folder (no public archive exists: a folder in the original's layout)."""
        if not Path(data).exists():
            raise FileNotFoundError(
                f"{data}: no such folder. Use case 5 has no public archive: give the folder of "
                f"{MITOSIS.layout} (docs/usecase5-mitosis.md)"
            )
        return super().prepare_data(data, cache)

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return images_by_patient(folder)[0]

    def sample_patches(self, cfg) -> dict:  # the runner calls stage 1 itself
        raise NotImplementedError("use case 5 runs through pipeline.usecases.mitosis.runner")

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        raise NotImplementedError("use case 5 runs through pipeline.usecases.mitosis.runner")

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        return detection.pool(fold_scores, cfg.scoring)

    def markdown(self, scores: dict) -> str:
        return detection.scores_markdown(scores)

    # ------------------------------------------------------------------ the run
    def run(self, args: argparse.Namespace, stages: tuple[str, ...], demo: bool = False) -> dict:
        """The stages of :func:`pipeline.usecases.mitosis.runner.graph` for the config of ``args``
        (:meth:`config`), then the detections as GeoJSON beside the stage-2 maps."""
        if demo:
            data, data_recipe = self.demo_data(args.work, args.seed, getattr(args, "force", False))
        else:
            data = self.prepare_data(args.data, args.work / "data")
            data_recipe = recipes.source(args.data, memo=args.work / "data")
        cfg = self.config(args, data, data_recipe)
        summary = runner.run(cfg, stages)
        if "scores" in stages:  # GeoJSON beside the maps, for QuPath: the detections these scores counted
            found = self._peak_finder(cfg.scoring, cfg.score_from)
            for k in crossval.selected_folds(cfg.folds):
                if artefacts.output_dir(cfg.work, k).is_dir():
                    geojson_export.export_folder(
                        artefacts.output_dir(cfg.work, k), self.export, geojson_export.Options(), found
                    )
        if demo:
            summary["cohort"] = "GENERATED (synthetic): the numbers show the pipeline works, nothing about mitoses"
        return summary

    @staticmethod
    def _peak_finder(scoring: dict, source: str):
        """The detections of one image of a stage-2 output folder (0.5x) and the map's value at each,
        found with the scoring's peak options on the maps the scores read (``source``)."""
        opts = detection.peak_options(scoring)

        def found(folder: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
            green, _ = inference.read_maps(Path(folder), stem, source)
            peaks = detection.peaks(green, **opts).astype(np.int64).reshape(-1, 2)
            return peaks, green[peaks[:, 0], peaks[:, 1]]

        return found

    def export_peaks(self, folder: Path, stem: str, source: str = "png") -> tuple[np.ndarray, np.ndarray]:
        """``export`` of a work folder: the detections its scores counted (the peak options and map
        source recorded in WORK/scores.json; the defaults and ``source`` when it has none)."""
        recorded = Path(folder).parent.parent / "scores.json"
        s = json.loads(recorded.read_text()) if recorded.is_file() else {}
        defaults = {
            "peak_threshold": detection.PEAK_THRESHOLD,
            "peak_clear_radius": detection.PEAK_CLEAR_RADIUS,
            "peak_disk": detection.PEAK_DISK,
        }
        scoring = {k: s.get(k, v) for k, v in defaults.items()}
        return self._peak_finder(scoring, s.get("score_from", source))(folder, stem)

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("*.tif")):
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic mitosis frames), not real tissue", folder)
        return Path(folder)

    # ------------------------------------------------------------------ cluster jobs
    def job_steps(self, args: argparse.Namespace) -> tuple[JobStep, ...]:
        """stage 1: prepare (patches, folds, dbs, prototxt) -> train (array over folds) -> probs (array);
        stage 2: prepare2 (patches2, dbs2, prototxt2; array) -> train2 (array) -> outputs (array);
        then scores. Each step waits for the one before it (afterok): stage 2 of fold k needs stage
        1's maps of fold k, which need stage 1's model k. A task is done when the run's stage graph
        (:func:`pipeline.usecases.mitosis.runner.graph`) says its stages are done: recorded done and,
        for step 5 of the test frames, every frame's maps there."""
        ks = tuple(crossval.selected_folds(args.folds))
        data_folder = self.submitted_data(args)

        g = runner.graph(self.config(args), data_folder)
        prepare, prepare2 = ("patches", "folds", "dbs", "prototxt"), ("patches2", "dbs2", "prototxt2")
        steps = (
            JobStep("prepare", prepare, done=lambda _t: g.all_done(prepare),
                    what="stage 1: patches, folds, databases, nets"),
            JobStep("train", ("train",), tasks=ks, after=("prepare",), task_option="--folds", gpu=True,
                    done=lambda k: g.done(f"train {k}"), what="stage 1: train fold {task}"),
            JobStep("probs", ("probs",), tasks=ks, after=("train",), task_option="--folds", gpu=True,
                    done=lambda k: g.done(f"probs {k}"), what="stage 1: step 5 of fold {task}'s training frames"),
            JobStep("prepare2", prepare2, tasks=ks, after=("probs",), task_option="--folds",
                    done=lambda k: g.all_done(prepare2, keys=(k,)),
                    what="stage 2: patches, databases, nets of fold {task}"),
            JobStep("train2", ("train2",), tasks=ks, after=("prepare2",), task_option="--folds", gpu=True,
                    done=lambda k: g.done(f"train2 {k}"), what="stage 2: train fold {task}"),
            JobStep("outputs", ("outputs",), tasks=ks, after=("train2",), task_option="--folds", gpu=True,
                    done=lambda k: g.done(f"outputs {k}"), what="stage 2: step 5 of fold {task}'s test frames"),
            JobStep("scores", ("scores",), after=("outputs",), done=lambda _t: g.all_done(("outputs", "scores")),
                    what="scores"),
        )  # fmt: skip
        return restrict(steps, self.parse_stages(getattr(args, "stages", None)))

    # ------------------------------------------------------------------ report
    def training_logs(self, work: Path) -> dict[str, Path]:
        """Stage-1 and stage-2 training logs, per fold."""
        logs = {}
        for sub, stage in (("models", 1), ("models_2nd", 2)):
            for p in sorted(Path(work).glob(f"{sub}/*_log.csv")):
                logs[f"stage {stage}, fold {p.name.split('_')[0]}"] = p
        return logs

    def report_headline(self, scores: dict) -> Table:
        rows = detection_rows(scores, "frame") + self.published_rows({"f_score": "f_score"})
        return Table(DETECTION_COLUMNS, rows, caption=detection.rule_text(scores))

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Detections on test frames", text=f"{data_dir}: the input frames are gone; no pictures.")]
        return [
            Section(
                "Detections on test frames",
                pictures=detection.report_pictures(work, scores, data_dir, pictures),
                text=(
                    "For each fold, the test frames with the best, median and worst detection F-score, at the 0.5x "
                    "scale step 5 saw them. Green circles: annotated mitoses with a detection within "
                    f"{scores['match_radius']:g} px (40x), green plus signs those detections (hits); thick orange "
                    "circles: mitoses nothing detected (misses); magenta crosses: detections matching no mitosis "
                    "(false alarms)."
                ),
            )
        ]

    # ------------------------------------------------------------------ regression
    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:

        return regression.run(args, Path(released_dir), self.released_folder)
