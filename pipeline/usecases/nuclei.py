"""Use case 1, nuclei segmentation: patches (MATLAB step 1 ported), per-nucleus scores, released models.

Input: ``<pid>_500_f<id>_original.tif`` (2000 x 2000 at 40x) with ``<pid>_500_f<id>_mask.png``
(incomplete nucleus annotation). Per image (DL tutorial Code/1-nuclei/step1_make_patches.m,
common/func_extraction_worker_w_rots.m), image and mask padded 32 px symmetric (``padarray``), then:

- positives: ``find(mask)`` (class 1, "p"), up to 2500;
- edge: the mask dilated three times with a 3x3 square minus the mask (class 0, "e"), npos x 1;
- background: ``makeNegativeMask(io, 50)`` of the padded image (class 0, "b"), round(npos x 0.3);
  it does not exclude the edge ring (RADHicaL's level 1 does); quirk Q2 of makeNegativeMask
  (``J < .3`` on uint8) applies here too (``--negative-rule corrected`` fixes it);
- centres, border rule, rotations 0 and 90, names ``<pid>_<fi>_<class>_<p|e|b>_<n>_<deg>.png``:
  :mod:`pipeline.sampling`; lists negatives then positives per image (common step 2).

Scores (invented here: the tutorial's step 6 was visual): each test image's ``P(class 1) >
threshold`` (default .5), holes filled, graded per annotated nucleus as RADHicaL's
grade_single_image.m does (F-score, TPR, PPV, detection rate; :mod:`pipeline.nuclei_grading`).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, classify, inference, metrics, nuclei, nuclei_grading, sampling
from pipeline.export import Spec
from pipeline.matlab import imfill_holes
from pipeline.patches import read_rgb_like_matlab
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure

log = logging.getLogger(__name__)

ROTATIONS = (0, 90)
PAD = 32


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    max_positive: int = 2500
    ratio_edge: float = 1.0
    ratio_background: float = 0.3
    edge_dilation: int = 3
    patch_dim: int = 50
    negative_rule: str = "faithful"


def class_masks(io: np.ndarray, mask: np.ndarray, p: Params = Params()) -> dict[str, np.ndarray]:
    """Positive, edge and background masks of a padded image and its padded mask."""
    return {
        "positive": mask != 0,
        "edge": nuclei.edge_ring(mask, p.edge_dilation),
        "background": nuclei.negative_mask(io, p.patch_dim, p.negative_rule),
    }


def load_pair(image: Path) -> tuple[np.ndarray, np.ndarray]:
    """Image (uint8 RGB) and mask, both padded 32 px symmetric; errors name the file."""
    io = read_rgb_like_matlab(image)
    if io.ndim != 3:
        raise ValueError(f"{image}: a grey image; RGB is expected")
    mask = nuclei.read_mask(nuclei.mask_path(image), io.shape[:2]).values
    pad = ((PAD, PAD), (PAD, PAD))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


def _process_image(args) -> sampling.ImageResult:
    image, base, out_dir, p, seed = args
    image = Path(image)
    res = sampling.ImageResult(base.split("_")[0], image.name)
    try:
        io, mask = load_pair(image)
    except (nuclei.BadMask, OSError, ValueError) as exc:
        res.problem = str(exc)
        return res
    masks = class_masks(io, mask, p)
    rng = np.random.RandomState(seed)
    res.positives = sampling.extract(io, masks["positive"], p.max_positive, 1, "p", rng, out_dir, base, ROTATIONS)
    npos = len(res.positives) // len(ROTATIONS)
    edge = sampling.extract(io, masks["edge"], npos * p.ratio_edge, 0, "e", rng, out_dir, base, ROTATIONS)
    back = sampling.extract(io, masks["background"], npos * p.ratio_background, 0, "b", rng, out_dir, base, ROTATIONS)
    res.negatives = edge + back
    res.counts = {"p": npos, "e": len(edge) // len(ROTATIONS), "b": len(back) // len(ROTATIONS)}
    if npos == 0:
        log.warning("%s: no positive centres (empty mask?)", image)
    return res


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Every image's patches into ``work/subs``; report (with per-patient entries) in patches_report.json."""
    by_patient = nuclei.images_by_patient(folder)
    if not by_patient:
        raise FileNotFoundError(f"{folder}: no *_mask.png files (expected {nuclei.LAYOUT})")
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(subs), p, seed * 100003 + len(tasks)))
    return sampling.run_image_jobs(
        work, config, list(by_patient), _process_image, tasks, "patches (nuclei)", jobs, show_progress
    )


# --------------------------------------------------------------------------- scores


def segmentation(prob: np.ndarray, threshold: float) -> np.ndarray:
    """``P(class 1) > threshold`` with holes filled (the final step of RADHicaL's get_masks)."""
    return imfill_holes(prob[:, :, 1] > threshold)


def score_fold(out_dir: Path, k: int, test: list[Path], threshold: float) -> dict:
    """Per-nucleus scores of fold k's test images (from their float maps, WORK/output/<k>/*.npy).

    Maps computed with a stride (the folder's record, ``.outputs.json``) are first filled from their
    computed pixels as ``--all-pixels`` fills them: the never-computed zeros would otherwise be
    segmented as background, cutting every nucleus into dots."""
    grades, per_image = [], []
    record = inference.read_record(Path(out_dir))
    for img in test:
        prob = record.filled(np.load(Path(out_dir) / f"{img.stem}_prob.npy"))
        g = nuclei_grading.grade_single_image(
            nuclei.read_mask(nuclei.mask_path(img)).values, segmentation(prob, threshold)
        )
        grades.append(g)
        per_image.append({"image": img.name, **nuclei_grading.image_scores(g)})
    return {
        "fold": k,
        "threshold": threshold,
        "scores": nuclei_grading.summarize(grades),
        "images": per_image,
        "grades": grades,
    }


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled per-nucleus scores beside the recalled published F-score."""
    lines = [
        "### Use case 1 (nuclei), per annotated nucleus",
        "",
        f"P(nucleus) > {s['threshold']:g}, holes filled, graded as grade_single_image.m (mean per image, "
        "nanmean over images).",
        "",
        "| fold | images | nuclei | detection rate | F-score | TPR | PPV |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in s["folds"] + [{"fold": "pooled", "scores": s["pooled"]}]:
        c = f["scores"]
        lines.append(
            f"| {f['fold']} | {c['images']} | {c['nuclei']} | {_f(c['detection_rate'])} | {_f(c['f_score'])} | "
            f"{_f(c['tpr'])} | {_f(c['ppv'])} |"
        )
    for fig in s["published"]:
        lines.append(f"| published ({fig['source']}, unchecked: {fig['note']}) | | | | {fig['value']:.4f} | | |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- regression


def patch_set(images: list[Path], p: Params, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Step 1's patches of ``images`` at rotation 0 (positives, edge, background as sampled for
    training): N x 32 x 32 x 3 float RGB [0, 1] and labels (1 = nucleus)."""
    wins, labels = [], []
    for i, img in enumerate(images):
        io, mask = load_pair(img)
        masks = class_masks(io, mask, p)
        rng = np.random.RandomState(seed * 100003 + i)
        npos = 0
        for key, label, cap in (("positive", 1, p.max_positive), ("edge", 0, None), ("background", 0, None)):
            cap = cap if cap is not None else npos * (p.ratio_edge if key == "edge" else p.ratio_background)
            r, c = sampling.sample_centres(masks[key], cap, rng, io.shape[:2])
            npos = len(r) if key == "positive" else npos
            wins += [sampling.cut_patch(io, int(a), int(b), 0) for a, b in zip(r, c)]
            labels += [label] * len(r)
    if not wins:
        raise ValueError("regress --usecase nuclei: no patches in the given images (empty masks?)")
    return np.stack(wins).astype(np.float32) / 255, np.array(labels)


def regress_models(
    models: list[tuple[str, Path, Path]],
    images: list[Path],
    out: Path,
    p: Params,
    mode: str,
    gpu: bool = False,
    threshold: float = 0.5,
) -> dict:
    """Each model (name, caffemodel, mean) on the same images: patch level (step 1's patches, window
    and mirror averaged) and pixel level (step-5 maps with ``mode``, P(nucleus) > threshold, holes
    filled, graded per nucleus). Writes ``regress_nuclei.{json,md}`` into ``out``."""
    out = Path(out)
    wins, labels = patch_set(images, p)
    rows = []
    for name, model, mean in models:
        for f in (model, mean):
            if not Path(f).is_file():
                raise FileNotFoundError(f"{f}: missing (python -m pipeline fetch-released --usecase nuclei)")
        prob = classify.PatchClassifier(model, mean, gpu=gpu, net_dir=out).predict(wins)
        patch = metrics.scores(metrics.confusion(labels, prob.argmax(1) == 1))
        engine = inference.make_engine(mode, model, mean, gpu=gpu, net_dir=out)
        grades = [
            nuclei_grading.grade_single_image(
                nuclei.read_mask(nuclei.mask_path(img)).values,
                segmentation(
                    engine.run(inference.load_resized(img, 1.0), inference.Options(all_pixels=True)), threshold
                ),
            )
            for img in images
        ]
        rows.append({"model": name, "patch": patch, "pixel": nuclei_grading.summarize(grades)})
    report = {"images": [i.name for i in images], "patches": int(len(labels)), "mode": mode, "rows": rows}
    atomic.write_text(out / "regress_nuclei.json", json.dumps(report, indent=1))
    lines = [
        f"Use case 1 (nuclei): {len(labels)} patches (step 1, rotation 0) and {len(images)} image(s), "
        f"maps with the {mode} engine, P(nucleus) > {threshold:g}",
        "",
        "| model | patch F | patch balanced acc. | patch acc. | nucleus detection rate | nucleus F | TPR | PPV |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["patch"], r["pixel"]
        lines.append(
            f"| {r['model']} | {_f(a['f_score'])} | {_f(a['balanced_accuracy'])} | {_f(a['accuracy'])} | "
            f"{_f(b['detection_rate'])} | {_f(b['f_score'])} | {_f(b['tpr'])} | {_f(b['ppv'])} |"
        )
    atomic.write_text(out / "regress_nuclei.md", "\n".join(lines) + "\n")
    return report


# --------------------------------------------------------------------------- the use case


class Nuclei(CrossValidatedUseCase):
    """Use case 1: nuclei segmentation in ER+ breast cancer H&E (40x), 5 patient folds, 2 classes."""

    name = "nuclei"
    number = 1
    title = "nuclei segmentation (pixel level, graded per nucleus)"
    command = "usecase1"
    demo_command = "demo-nuclei"
    magnification = 1.0
    archives = (datasets.NUCLEI,)
    reads = (datasets.NUCLEI_SIDE_BY_SIDE,)
    released_folder = "uc1-nuclei"
    published = (Figure("f_score", 0.83, "recalled", "JPI 2016, use case 1"),)
    validation = False
    export = Spec("segmentation", "Nucleus", (0, 0, 200), "detection")
    max_positive = 2500
    demo_max_positive = 150

    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument(
            "--threshold",
            type=float,
            default=0.5,
            help="segmentation: P(nucleus) > threshold, holes filled (default .5)",
        )
        parser.add_argument(
            "--negative-rule",
            default="faithful",
            choices=nuclei.NEGATIVE_RULES,
            help="Q2: makeNegativeMask's J<.3 on uint8 (faithful: J==0) or on J/255 (corrected)",
        )

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return nuclei.images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(max_positive=args.max_positive, negative_rule=args.negative_rule)

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        if not 0 <= args.threshold <= 1:
            raise ValueError(f"--threshold {args.threshold} is outside [0, 1]")
        return {"threshold": args.threshold}

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return score_fold(out_dir, k, test, cfg.scoring.get("threshold", 0.5))

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        pooled = nuclei_grading.summarize([g for f in fold_scores for g in f.pop("grades")])
        return {
            "folds": fold_scores,
            "pooled": pooled,
            "threshold": cfg.scoring.get("threshold", 0.5),
            "published": [f.__dict__ for f in self.published],
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def regress(self, args: argparse.Namespace, released_dir: Path) -> dict:
        """The five released fold models (and ``--ours``) on ``--images`` or the images of ``--data``
        (patch and pixel level), plus the map comparison against the released ``--fold`` model."""
        images = inference.expand_inputs(args.images) if args.images else []
        if not images and args.data:
            images = [
                i
                for v in nuclei.images_by_patient(self.prepare_data(args.data, Path(args.out) / "data")).values()
                for i in v
            ]
        if not images:
            raise ValueError("regress --usecase nuclei needs --images or --data (images with their _mask.png)")
        if len(args.ours_mean) != len(args.ours):
            raise ValueError("give one --ours-mean per --ours model")
        rd = Path(released_dir)
        rd = rd / self.released_folder if (rd / self.released_folder).is_dir() else rd
        models = [
            (
                f"released fold {k}",
                rd / f"{k}_caffenet_train_w32_iter_600000.caffemodel",
                rd / f"DB_train_w32_{k}.binaryproto",
            )
            for k in range(1, 6)
        ]
        models += [(f"ours {Path(m).name}", Path(m), Path(mm)) for m, mm in zip(args.ours, args.ours_mean)]
        regress_models(models, images, args.out, Params(max_positive=200), args.mode, args.gpu)
        if args.ours:
            args.images = [str(i) for i in images]
            super().regress(args, released_dir)
        return {"table": str(Path(args.out) / "regress_nuclei.md")}

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob(nuclei.MASK_GLOB)):
            nuclei.make_cohort(folder, n_patients=6, size=400, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic nuclei images), not real tissue", folder)
        return Path(folder)
