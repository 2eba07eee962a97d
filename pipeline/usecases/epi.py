"""Use case 2, epithelium segmentation: patches (MATLAB step 1 ported), pixel scores, demo cohort.

Input: <patient>_<n>.tif with <patient>_<n>_mask.png (white = epithelium), 1000x1000 at 20x.
Per image (2-epi/step1_make_patches.m, common/func_extraction_worker_w_rots.m):

- image and mask ``imresize(., .5)`` (10x apparent magnification), padded 32 px symmetric;
- background: ``im2double(rgb2gray(io)) > .8``; positive: mask and not background;
  stroma: not (positive dilated 3 times, 3x3) and not background;
  edge: mask dilated 2 times minus the mask;
- centres, selection, rotations (0, 90) and names: :mod:`pipeline.sampling`; up to 5000
  positives, edge ``npos * 1``, stroma ``npos * 0.3``; type p (positive, class 1), e (edge, class
  0), b (stroma/background, class 0); image# is the 1-based index among the patient's images.

Scores (invented here: the original's step 6 was a visual check): pixel-level F-score, precision and
recall of the class maps against the masks (resized like the images), over the pixels the original
computes, per fold and pooled; and of ``P >= threshold`` with the threshold maximising F on the
validation images (the next fold's patients, on the training side of fold k; their maps are written
to WORK/validation/<k>/, apart from the test maps). By default both read the PNGs the original
wrote (``_class.png``; ``_prob.png`` green / 255, min-max scaled), so the threshold applies to the
values the tutorial's "use this threshold on the _prob image" meant; ``--score-from npy`` reads the
float maps.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import folds, inference, lists, metrics, sampling
from pipeline.export import Spec
from pipeline.imageio import imread_matlab
from pipeline.matlab import bwmorph_dilate, imresize_scale, rgb2gray
from pipeline.patches import read_rgb_like_matlab, save_png
from pipeline.report import Column, Picture, Row, Section, Table, from_json
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure

log = logging.getLogger(__name__)

ROTATIONS = (0, 90)


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    max_positive: int = 5000
    ratio_edge: float = 1.0
    ratio_background: float = 0.3
    edge_dilation: int = 2
    stroma_dilation: int = 3
    resize: float = 0.5
    gray_threshold: float = 0.8


class BadPair(ValueError):
    """An image without a usable mask; the message names the files."""


def read_mask(path: Path) -> np.ndarray:
    """A mask as MATLAB's ``imread`` gives it (:func:`pipeline.imageio.imread_matlab`): bool for a
    1-bit PNG, palette indices for an indexed PNG, else the stored grey values (first channel of a
    colour mask). Non-zero counts as epithelium downstream (MATLAB's ``&`` and ``bwmorph``)."""
    arr = imread_matlab(path)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr


def class_masks(io: np.ndarray, mask: np.ndarray, p: Params = Params()) -> dict[str, np.ndarray]:
    """Background, positive, stroma and edge masks of a padded image and its (padded) mask."""
    m = mask.astype(bool) if mask.dtype != bool else mask
    gray = rgb2gray(io)
    iob = (gray.astype(np.float64) / (255.0 if gray.dtype == np.uint8 else 1.0)) > p.gray_threshold
    iot = m & ~iob
    ios = ~bwmorph_dilate(iot, p.stroma_dilation) & ~iob
    edge = bwmorph_dilate(m, p.edge_dilation) & ~m
    return {"background": iob, "positive": iot, "stroma": ios, "edge": edge}


def mask_path(image: Path) -> Path:
    """``<patient>_<n>.tif`` -> ``<patient>_<n>_mask.png`` beside it."""
    return image.with_name(image.stem + "_mask.png")


def load_pair(image: Path, p: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its mask, resize both and pad 32 symmetric. Raises BadPair naming files."""
    mpath = mask_path(image)
    if not mpath.is_file():
        raise BadPair(f"{image}: no mask {mpath.name}")
    io = read_rgb_like_matlab(image)
    mask = read_mask(mpath)
    if io.shape[:2] != mask.shape[:2]:
        raise BadPair(f"{mpath}: mask is {mask.shape[:2]}, image {image.name} is {io.shape[:2]}")
    if io.ndim == 2:
        io = np.repeat(io[:, :, None], 3, axis=2)
    if p.resize != 1:
        io = imresize_scale(io, p.resize)
        mask = imresize_scale(mask, p.resize)
    pad = ((sampling.WSIZE, sampling.WSIZE), (sampling.WSIZE, sampling.WSIZE))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


def _process_image(args) -> sampling.ImageResult:
    image, base, out_dir, p, seed = args
    image = Path(image)
    res = sampling.ImageResult(base.split("_")[0], image.name)
    try:
        io, mask = load_pair(image, p)
    except (BadPair, OSError, ValueError) as exc:
        res.problem = str(exc)
        return res
    masks = class_masks(io, mask, p)
    if not masks["positive"].any():
        log.warning("%s: empty mask (no positive pixels)", image)
    rng = np.random.RandomState(seed)
    out = Path(out_dir)

    def extract(mask_, max_num, label, kind) -> list[lists.Entry]:
        r, c = sampling.sample_centres(mask_, max_num, rng, io.shape[:2])
        entries = []
        for n, (ri, ci) in enumerate(zip(r, c), start=1):
            for deg in ROTATIONS:
                name = sampling.patch_name(base, label, kind, n, deg)
                save_png(out / name, sampling.cut_patch(io, int(ri), int(ci), deg))
                entries.append(lists.Entry(name, label))
        return entries

    res.positives = extract(masks["positive"], p.max_positive, 1, "p")
    npos = len(res.positives) // len(ROTATIONS)
    edge = extract(masks["edge"], npos * p.ratio_edge, 0, "e")
    stroma = extract(masks["stroma"], npos * p.ratio_background, 0, "b")
    res.negatives = edge + stroma
    res.counts = {"p": npos, "e": len(edge) // 2, "b": len(stroma) // 2}
    if npos < p.max_positive:
        log.info("%s: %d positive centres available (asked %d): took what exists", image.name, npos, p.max_positive)
    return res


def images_by_patient(folder: Path) -> dict[str, list[Path]]:
    """Patients (prefix before the first underscore of each *_mask.png) and their .tif images, in name order."""
    folder = Path(folder)
    masks = sorted(folder.glob("*_mask.png"))
    patients = sorted({folds.patient_of(m.name) for m in masks})
    out = {}
    for pid in patients:
        out[pid] = sorted(q for q in folder.glob(f"{pid}_*.tif") if q.is_file())
    orphans = sorted(q.name for q in folder.glob("*.tif") if folds.patient_of(q.name) not in out)
    for o in orphans:
        log.warning("%s: image without a mask (no %s_*_mask.png); skipped", o, folds.patient_of(o))
    return out


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Write every image's patches to ``work/subs`` and the per-patient lists; report in patches_report.json."""
    by_patient = images_by_patient(folder)
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    subs = Path(work) / "subs"
    tasks = []
    for pid, imgs in by_patient.items():
        for fi, img in enumerate(imgs, start=1):
            tasks.append((str(img), f"{pid}_{fi}", str(subs), p, seed * 100003 + len(tasks)))
    return sampling.run_image_jobs(
        work, config, list(by_patient), _process_image, tasks, "patches (epi)", jobs, show_progress
    )


# --------------------------------------------------------------------------- scores


def truth_mask(image: Path, factor: float) -> np.ndarray:
    """The image's mask at the output magnification (MATLAB imresize as in step 1), boolean."""
    m = read_mask(mask_path(image))
    m = imresize_scale(m, factor) if factor != 1 else m
    return m.astype(bool)


def score_maps(
    out_dir: Path, images: list[Path], factor: float, stride: int | None = None, source: str = "png"
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(P(epithelium) maps, class maps, true masks) of ``images`` over the pixels step 5 computed,
    as the folder's record says (``.outputs.json``: stride, all-pixels; the original's pixels by
    default). ``stride``: only for maps that are not step-5 outputs (no record: the U-Net's), the
    original's pixels at that stride; None (step-5 folders): the record decides.

    ``source`` "png" (default) reads the _prob.png green channel / 255 and the _class.png the
    original wrote (min-max scaled by scipy.misc.imsave); "npy" the float maps.
    """
    probs, classes, truths = [], [], []
    record = inference.read_record(Path(out_dir)) if stride is None else None
    for img in images:
        p1, cls = inference.read_maps(Path(out_dir), img.stem, source)
        t = truth_mask(img, factor)
        if record is not None:
            rr, cc = record.computed(*p1.shape[:2])
        else:
            rr, cc = inference.computed_coords(p1.shape[0], stride), inference.computed_coords(p1.shape[1], stride)
        probs.append(p1[np.ix_(rr, cc)])
        classes.append(cls[np.ix_(rr, cc)])
        truths.append(t[np.ix_(rr, cc)])
    return probs, classes, truths


def score_fold(
    out_dir: Path,
    k: int,
    test: list[Path],
    val: list[Path],
    factor: float,
    val_dir: Path | None = None,
    source: str = "png",
    stride: int | None = None,
) -> dict:
    """Pixel scores of fold k's test images (maps in ``out_dir``): the class maps, and
    ``P >= threshold`` with the threshold chosen on the validation images (maps in ``val_dir``,
    default ``out_dir``). With ``source`` "png" both read the values the original's PNGs hold.
    ``stride``: only for maps without a step-5 record (:func:`score_maps`)."""
    tp, tc, tt = score_maps(out_dir, test, factor, stride, source=source)
    th = 0.5
    if val:
        vp, _, vt = score_maps(val_dir or out_dir, val, factor, stride, source=source)
        th = metrics.best_threshold(vp, vt)
    truth = np.concatenate([t.ravel() for t in tt])
    cls = metrics.pixel_scores(np.concatenate([c.ravel() for c in tc]), truth)
    thr = metrics.pixel_scores(np.concatenate([(p >= th).ravel() for p in tp]), truth)
    return {
        "fold": k,
        "threshold": th,
        "score_from": source,
        "class_map": cls,
        "thresholded": thr,
        "test_images": [i.name for i in test],
        "validation_images": [i.name for i in val],
    }


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled pixel scores beside the recalled published F-score."""
    source = {
        "png": "the 8-bit min-max scaled _class.png and _prob.png (green / 255) the original wrote",
        "npy": "the float probability maps (.npy)",
    }.get(s.get("score_from", "png"), s.get("score_from"))
    lines = [
        "### Use case 2 (epithelium), pixel level",
        "",
        f"Maps read: {source}; threshold chosen on the validation images of each fold.",
        "",
        "| fold | threshold | F (class map) | precision | recall | F (P >= threshold) | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in s["folds"]:
        c, t = f["class_map"], f["thresholded"]
        lines.append(
            f"| {f['fold']} | {f['threshold']:.2f} | {_f(c['f_score'])} | {_f(c['precision'])} | {_f(c['recall'])} | "
            f"{_f(t['f_score'])} | {_f(t['precision'])} | {_f(t['recall'])} |"
        )
    c, t = s["pooled"]["class_map"], s["pooled"]["thresholded"]
    lines.append(
        f"| pooled | – | {_f(c['f_score'])} | {_f(c['precision'])} | {_f(c['recall'])} | {_f(t['f_score'])} | "
        f"{_f(t['precision'])} | {_f(t['recall'])} |"
    )
    lines.append(f"| published (recalled, unchecked) | | {s['published_f_recalled']:.2f} | | | | | |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- report

HEADLINE = [
    Column("cm_f", "F-score", group="class map (argmax)"),
    Column("cm_p", "precision", group="class map (argmax)"),
    Column("cm_r", "recall", group="class map (argmax)"),
    Column("th", "threshold", 2, group="P ≥ threshold"),
    Column("th_f", "F-score", group="P ≥ threshold"),
    Column("th_p", "precision", group="P ≥ threshold"),
    Column("th_r", "recall", group="P ≥ threshold"),
]
_KEYS = {"f": "f_score", "p": "precision", "r": "recall"}


def headline_cells(scores: dict, *path: str | int) -> dict:
    """The headline cells of one entry of the scores JSON (``folds/<i>`` or ``pooled``)."""
    entry = scores
    for p in path:
        entry = entry[p]
    cells = {
        f"{pre}_{k}": from_json(scores, "scores.json", *path, part, key)
        for pre, part in (("cm", "class_map"), ("th", "thresholded"))
        for k, key in _KEYS.items()
    }
    if "threshold" in entry:
        cells["th"] = from_json(scores, "scores.json", *path, "threshold")
    return cells


def report_pictures(
    work: Path, scores: dict, data_dir: Path, factor: float, pictures: Path
) -> tuple[list[Picture], list[Row]]:
    """Per fold, the test images of best, median and worst F (class map): truth and predicted
    outlines over the image as step 5 saw it, P(epithelium) beside; and every test image's scores."""
    from pipeline.report import Cell
    from pipeline.report.pictures import describe, outlines, pick_examples

    pics, rows = [], []
    for f in scores["folds"]:
        k, out = f["fold"], Path(work) / "output" / str(f["fold"])
        scored = []
        for name in f["test_images"]:
            if not (out / f"{Path(name).stem}_prob.npy").is_file() or not (data_dir / name).is_file():
                continue
            _, classes, truths = score_maps(out, [data_dir / name], factor, source="npy")
            s = metrics.pixel_scores(classes[0], truths[0])
            scored.append((name, s["f_score"]))
            rows.append(
                Row(
                    name,
                    {
                        "fold": Cell(k),
                        **{c: Cell(s[key]) for c, key in (("f", "f_score"), ("p", "precision"), ("r", "recall"))},
                    },
                )
            )
        for label, name in pick_examples(scored):
            img_path = data_dir / name
            prob = inference.read_record(out).filled(np.load(out / f"{img_path.stem}_prob.npy"))
            image = inference.load_resized(img_path, factor)
            truth = truth_mask(img_path, factor)
            h, w = (min(a.shape[0] for a in (prob, image, truth)), min(a.shape[1] for a in (prob, image, truth)))
            fs = "–" if dict(scored)[name] is None else f"{dict(scored)[name]:.3f}"
            title = f"Fold {k}, {describe(label, len(scored))}: {name}, F {fs}"
            file = f"epi_fold{k}_{label}_{img_path.stem}.png"
            outlines(
                image[:h, :w],
                truth[:h, :w],
                prob[:h, :w].argmax(2) == 1,
                prob[:h, :w, 1],
                title,
                pictures / file,
                prob_label="P(epithelium)",
            )
            pics.append(Picture(file, title + "."))
    return pics, rows


# --------------------------------------------------------------------------- generated cohort


def make_cohort(root: Path, n_patients: int = 6, size: int = 160, seed: int = 0, first_id: int = 8001) -> list[Path]:
    """Generated epithelium-like images <patient>_<n>.tif and masks <patient>_<n>_mask.png.

    Epithelium: blobs of dense purple nuclei on a purple background (the mask, white); stroma: pink
    with sparse nuclei; a little white background in a corner. Deterministic for a seed.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    from pipeline.synth import EOSIN, EOSIN_DENSE, HEMATOXYLIN

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    out = []
    for i in range(n_patients):
        pid = str(first_id + i)
        field = gaussian_filter(rng.rand(size, size), sigma=size / 12)
        mask = field > np.quantile(field, 0.62)
        img = np.empty((size, size, 3))
        img[:] = EOSIN
        img[mask] = EOSIN_DENSE
        yy, xx = np.mgrid[0:size, 0:size]
        for _ in range(int(size * size / 40)):
            cy, cx = rng.randint(0, size, 2)
            if not mask[cy, cx] and rng.rand() > 0.25:
                continue
            r = rng.uniform(1.5, 3.0)
            nuc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            img[nuc] = HEMATOXYLIN
        img[: size // 8, : size // 8] = 245  # white background (gray > 0.8)
        img += rng.normal(0, 6, img.shape)
        arr = np.clip(np.round(img), 0, 255).astype(np.uint8)
        path = root / f"{pid}_00001.tif"
        Image.fromarray(arr).save(path)
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / f"{pid}_00001_mask.png")
        out.append(path)
    log.info("generated epithelium cohort: %d images of %dx%d in %s (not real tissue)", n_patients, size, size, root)
    return out


# --------------------------------------------------------------------------- the use case


class Epithelium(CrossValidatedUseCase):
    """Use case 2: epithelium segmentation in ER+ breast cancer H&E, 5 patient folds."""

    name = "epi"
    number = 2
    title = "epithelium segmentation (pixel level)"
    command = "usecase2"
    demo_command = "demo-epi"
    magnification = Params.resize
    source_objective = 20.0  # tutorial: "42 ER+ BCa images scanned at 20x" (model at 10x)
    archives = (datasets.EPI,)
    reads = (datasets.EPI_SIDE_BY_SIDE,)  # masks beside the images, as the MATLAB read them
    released_folder = "uc2-epi"
    published = (Figure("f_score", 0.84, "recalled", "pixel level, JPI 2016"),)
    validation = True
    export = Spec("segmentation", "Epithelium", (200, 0, 0), "annotation")
    max_positive = 5000
    demo_max_positive = 150

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(max_positive=args.max_positive)

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        from pipeline.crossval import validation_dir

        return score_fold(out_dir, k, test, val, cfg.params.resize, validation_dir(cfg.work, k), cfg.score_from)

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        pooled = {
            key: metrics.scores({m: sum(f[key][m] for f in fold_scores) for m in ("tp", "fp", "fn", "tn")})
            for key in ("class_map", "thresholded")
        }
        return {
            "folds": fold_scores,
            "pooled": pooled,
            "score_from": cfg.score_from,
            "published_f_recalled": self.figures("f_score")[0].value,
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def report_headline(self, scores: dict) -> Table:
        rows = [
            Row(f"fold {f['fold']}", headline_cells(scores, "folds", i), note=f"{len(f['test_images'])} test image(s)")
            for i, f in enumerate(scores["folds"])
        ]
        rows.append(Row("pooled", headline_cells(scores, "pooled"), kind="pooled", note="all folds' test pixels"))
        return Table(
            HEADLINE,
            rows + self.published_rows({"f_score": "cm_f"}),
            corner="",
            caption="Pixel level, over the pixels the original computes. Class map: argmax of the "
            "probability map. P ≥ threshold: the threshold maximising F on validation images "
            "(the next fold's patients, seen in training: optimistic).",
        )

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Outlines on test images", text=f"{data_dir}: the input images are gone; no pictures.")]
        pics, rows = report_pictures(work, scores, data_dir, Params.resize, pictures)
        cols = [
            Column("fold", "fold", 0),
            Column("f", "F (class map)"),
            Column("p", "precision"),
            Column("r", "recall"),
        ]
        return [
            Section(
                "Outlines on test images",
                pictures=pics,
                text=(
                    "For each fold, the test images with the best, median and worst pixel F-score of the class map. "
                    "Left: the ground-truth epithelium (solid green) and the predicted class map (dashed yellow) "
                    f"outlined over the image resized ×{Params.resize:g}, as the model saw it. Right: the predicted "
                    "probability of epithelium."
                ),
            ),
            Section(
                "Test images",
                tables=[
                    Table(
                        cols,
                        rows,
                        corner="image",
                        caption=(
                            "Each test image's pixel scores of the class map, computed for this report from the saved "
                            "probability maps over the same pixels as the table above."
                        ),
                    )
                ],
            ),
        ]

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("*_mask.png")):
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic epithelium images), not real tissue", folder)
        return Path(folder)
