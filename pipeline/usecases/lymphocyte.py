"""Use case 4, lymphocyte detection: patches (MATLAB step 1 ported), peak detection and detection scores.

Input (4-lymphocyte/step1_make_patches.m): images ``im<N>.tif`` (100x100 at 20x) and masks
``<N>m.tif`` whose alpha channel marks lymphocyte centres; each image is its own patient.

- image and mask upscaled 4x (MATLAB imresize, bicubic; ``abs`` of the mask), padded 32 symmetric;
- positives: 2000 pixels drawn with replacement with the mask as weights (MATLAB ``datasample``),
  then the border rule, a shuffle and at most 2000 taken (func_extraction_worker_w_rots),
  rotations 0, 90, 180, 270, type "p";
- negatives: a pixel classifier trained on 1000 random pixels (RGB -> mask > 0); its positive calls
  (posterior > .5) outside the mask are ranked by distance to the nearest mask pixel (KD-tree) and
  taken greedily, the largest first, clearing a radius of 5 around each, at most
  round(2000 * 2) = 4000; rotations 0, 90, type "n".
  The code ran ``[class,err,post]=classify(ior,ior(ind,:),io_mask(ind)>0)`` (step1_make_patches.m
  line 67): MATLAB ``classify`` with its defaults, type 'linear' (linear discriminant analysis,
  pooled covariance) and a uniform prior -- the default here (``classifier="lda"``,
  :func:`pipeline.matlab.classify_linear`). The comment on that line and the tutorial say naive
  Bayes: ``classifier="nb"`` (scikit-learn's GaussianNB) is that reading.
- step 5 peaks (step5_identify_peak_in_probs.m): ``double(io(:,:,2))/255`` of the 8-bit _prob.png
  (min-max scaled by scipy.misc.imsave, so the threshold applies to P / max P quantised to 1/255),
  convolved with ``fspecial('disk', 6)`` (symmetric padding 16), maxima above 0.7706 taken
  greedily, clearing a radius of 28 around each (at the 4x scale).
- scores (invented: the original stops at the peak list ``test_vals``, in 4x pixels): peaks mapped
  back to the original image with the inverse of the 4x resize (0-based u = (x + 0.5) / 4 - 0.5),
  matched one to one with the annotated centres.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import detection, inference, lists, metrics
from pipeline.detection import greedy_peaks, to_original_scale
from pipeline.export import Spec
from pipeline.matlab import classify_linear, fspecial_disk, imresize_scale, matlab_round
from pipeline.patches import save_png
from pipeline.report import Column, Picture, Row, Section, Table, from_json
from pipeline.sampling import ImageResult, cut_patch, patch_name, run_image_jobs, select_centres
from pipeline.usecases import datasets
from pipeline.usecases.base import CrossValidatedUseCase, Figure

log = logging.getLogger(__name__)

PEAK_THRESHOLD = 0.7706
PEAK_CLEAR_RADIUS = 28
DISK_RADIUS = 6
#: Default radius (pixels at the original 20x scale) within which a detection matches a true centre:
#: about one lymphocyte radius (lymphocytes are about 10 px across at 20x).
MATCH_RADIUS = 6.0


@dataclass(frozen=True)
class Params:
    """Sampling parameters; defaults are the published ones."""

    n_positive: int = 2000
    ratio_background: float = 2.0
    clear_radius: int = 5
    scale: float = 4.0
    n_train_pixels: int = 1000
    classifier: str = "lda"  # "lda" (the code's classify default) or "nb" (the comment's naive Bayes)


def mask_path_for(image: Path) -> Path:
    """``im<N>.tif`` -> ``<N>m.tif`` (the original's strrep(fname(3:end), '.', 'm.')).

    When that file does not exist but ``<N>m.tif`` does, for N the first number in the name (the
    tutorial's text names images ``img<N>_seg.tif``), that one is used.
    """
    import re

    faithful = image.with_name(image.name[2:].replace(".", "m.", 1))
    m = re.search(r"\d+", image.name)
    if not faithful.is_file() and m and image.with_name(f"{m.group(0)}m.tif").is_file():
        return image.with_name(f"{m.group(0)}m.tif")
    return faithful


def read_pair(image: Path, p: Params = Params()) -> tuple[np.ndarray, np.ndarray]:
    """Image (double RGB) and mask (alpha channel, double), upscaled and padded 32 symmetric."""
    from PIL import Image

    mpath = mask_path_for(image)
    if not mpath.is_file():
        raise ValueError(f"{image}: no mask {mpath.name}")
    with Image.open(image) as im:
        io = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    with Image.open(mpath) as im:
        if im.mode not in ("RGBA", "LA"):
            raise ValueError(f"{mpath}: mask has no alpha channel (mode {im.mode})")
        mask = np.asarray(im, dtype=np.float64)[:, :, -1] / 255.0
    if mask.shape != io.shape[:2]:
        raise ValueError(f"{mpath}: mask is {mask.shape}, image {image.name} is {io.shape[:2]}")
    io = imresize_scale(io, p.scale)
    mask = np.abs(imresize_scale(mask, p.scale))
    pad = ((32, 32), (32, 32))
    return np.pad(io, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric")


CLASSIFIERS = ("lda", "nb")


def pixel_posterior(train: np.ndarray, labels: np.ndarray, sample: np.ndarray, classifier: str = "lda") -> np.ndarray:
    """P(positive | pixel) for each row of ``sample`` (N x d), trained on ``train`` with bool ``labels``.

    "lda": MATLAB ``classify(sample, training, group)`` with its defaults (:func:`pipeline.matlab.
    classify_linear`: pooled covariance normalised by n - 2, uniform prior); written out because
    scikit-learn's LinearDiscriminantAnalysis normalises the pooled covariance by n (1.9) or weights
    it by the priors, which changes the posteriors. "nb": Gaussian naive Bayes (scikit-learn
    GaussianNB, empirical prior), the tutorial's description.
    """
    if classifier == "lda":
        return classify_linear(sample, train, labels)[1][:, 1]
    if classifier == "nb":
        from sklearn.naive_bayes import GaussianNB

        return GaussianNB().fit(train, labels).predict_proba(sample)[:, 1]
    raise ValueError(f"classifier {classifier!r} is not one of {CLASSIFIERS}")


def negative_centres(io: np.ndarray, mask: np.ndarray, p: Params, rng: np.random.RandomState) -> list[tuple[int, int]]:
    """Hard negatives: the classifier's false positives farthest from any positive pixel (0-based)."""
    from scipy.spatial import cKDTree

    h, w, d = io.shape
    # column-major pixel order, as MATLAB's reshape
    pix = io.transpose(1, 0, 2).reshape(-1, d)
    labels = mask.T.ravel() > 0
    train = rng.permutation(len(pix))[: p.n_train_pixels]
    if labels[train].all() or not labels[train].any():
        log.warning("training pixels hold one class only; no negatives from the classifier")
        return []
    post = pixel_posterior(pix[train], labels[train], pix, p.classifier)
    post[labels] = 0
    pimg = post.reshape(w, h).T
    rm, cm = np.nonzero(mask.T)[::-1]
    if len(rm) == 0:
        return []
    rp, cp = np.nonzero((pimg > 0.5).T)[::-1]
    dist, _ = cKDTree(np.c_[rm, cm]).query(np.c_[rp, cp], k=1)
    val = np.zeros_like(mask)
    val[rp, cp] = dist
    return greedy_peaks(val, p.clear_radius, limit=matlab_round(p.n_positive * p.ratio_background))


def _process(args) -> ImageResult:
    image, out_dir, p, seed = args
    image = Path(image)
    base = image.stem
    res = ImageResult(base, image.name)
    try:
        io, mask = read_pair(image, p)
    except (ValueError, OSError) as exc:
        res.problem = str(exc)
        return res
    rng = np.random.RandomState(seed)
    io8 = np.clip(np.floor(io * 255 + 0.5), 0, 255).astype(np.uint8)  # imwrite of a double image
    out = Path(out_dir)

    def write(r, c, max_num, label, kind, rots):
        r, c = select_centres(np.asarray(r), np.asarray(c), max_num, rng, mask.shape)
        ents = []
        for n, (ri, ci) in enumerate(zip(r, c), start=1):
            for deg in rots:
                name = patch_name(base, label, kind, n, deg)
                save_png(out / name, cut_patch(io8, int(ri), int(ci), deg))
                ents.append(lists.Entry(name, label))
        return ents

    weights = mask.T.ravel()
    if weights.sum() <= 0:
        res.problem = f"{mask_path_for(image)}: empty mask"
        return res
    idx = rng.choice(len(weights), size=p.n_positive, replace=True, p=weights / weights.sum())
    r, c = idx % mask.shape[0] + 1, idx // mask.shape[0] + 1  # ind2sub, 1-based
    res.positives = write(r, c, p.n_positive, 1, "p", (0, 90, 180, 270))
    try:
        neg = negative_centres(io, mask, p, rng)
    except ValueError as exc:  # e.g. MATLAB classify's "pooled covariance ... positive definite"
        res.problem = f"{image}: negative sampling failed ({exc})"
        return res
    nr = np.array([a + 1 for a, _ in neg], dtype=np.int64)
    nc = np.array([b + 1 for _, b in neg], dtype=np.int64)
    res.negatives = write(nr, nc, matlab_round(p.n_positive * p.ratio_background), 0, "n", (0, 90))
    res.counts = {"p": len(res.positives) // 4, "n": len(res.negatives) // 2}
    return res


def images_by_patient(folder: Path) -> dict[str, list[Path]]:
    """Each ``i*.tif`` image is its own patient (its stem)."""
    return {q.stem: [q] for q in sorted(Path(folder).glob("i*.tif"))}


def run_patches(
    folder: Path, work: Path, p: Params = Params(), seed: int = 1, jobs: int | None = None, show_progress: bool = True
) -> dict:
    """Patches of every image into ``work/subs``; report (with per-patient entries) in patches_report.json."""
    by_patient = images_by_patient(folder)
    config = {"data": str(Path(folder).resolve()), "params": p.__dict__, "seed": seed}
    imgs = [q for v in by_patient.values() for q in v]
    tasks = [(str(q), str(Path(work) / "subs"), p, seed * 100003 + i) for i, q in enumerate(imgs)]
    return run_image_jobs(work, config, list(by_patient), _process, tasks, "patches (lymphocyte)", jobs, show_progress)


# --------------------------------------------------------------------------- detection (step 5)


def disk_kernel(radius: int = DISK_RADIUS) -> np.ndarray:
    """``fspecial('disk', radius)`` of step5_identify_peak_in_probs.m line 7 (exact MATLAB algorithm)."""
    return fspecial_disk(radius)


def detect_peaks(
    prob_green: np.ndarray,
    threshold: float = PEAK_THRESHOLD,
    clear_radius: float = PEAK_CLEAR_RADIUS,
    radius: int = DISK_RADIUS,
) -> list[tuple[int, int]]:
    """Lymphocyte centres (0-based row, col) of a P(lymphocyte) map in [0, 1] (by default the
    _prob.png green channel / 255): ``imfilter`` with the disk after symmetric padding 16 (a
    correlation, zero outside the padded image), greedy maxima above ``threshold``,
    ``clear_radius`` cleared around each (step5_identify_peak_in_probs.m; :func:`pipeline.detection.detect_peaks`)."""
    return detection.detect_peaks(prob_green, threshold, clear_radius, radius)


def match_pairs(pred: np.ndarray, truth: np.ndarray, radius: float = MATCH_RADIUS) -> list[tuple[int, int]]:
    """:func:`pipeline.detection.match_pairs` at use case 4's radius by default."""
    return detection.match_pairs(pred, truth, radius)


def match_detections(pred: np.ndarray, truth: np.ndarray, radius: float = MATCH_RADIUS) -> dict:
    """:func:`pipeline.detection.match_detections` at use case 4's radius by default."""
    return detection.match_detections(pred, truth, radius)


def true_centres(image: Path) -> np.ndarray:
    """Annotated centres (0-based row, col, original scale): non-zero pixels of the mask's alpha channel."""
    from PIL import Image

    with Image.open(mask_path_for(image)) as im:
        alpha = np.asarray(im)[:, :, -1]
    return np.argwhere(alpha > 0)


# --------------------------------------------------------------------------- scores


def peak_map(out_dir: Path, stem: str, source: str = "png") -> np.ndarray:
    """The P(lymphocyte) map peaks are found on, at the 4x scale: the _prob.png green channel / 255
    (``source`` "png", the original) or the float map ("npy").

    Maps computed with a stride (the folder's record, ``.outputs.json``) are first filled from their
    computed pixels as ``--all-pixels`` fills them: the disk filter would otherwise average the
    never-computed zeros in as probabilities 0."""
    green, _ = inference.read_maps(Path(out_dir), stem, source)
    return inference.read_record(Path(out_dir)).filled(green)


def map_peaks(out_dir: Path, image: Path, source: str = "png") -> np.ndarray:
    """(N, 2) row, col peaks of ``image``'s step-5 P(lymphocyte) map (:func:`peak_map`), at the 4x scale."""
    return np.array(detect_peaks(peak_map(out_dir, Path(image).stem, source)), dtype=np.float64).reshape(-1, 2)


def score_fold(out_dir: Path, k: int, test: list[Path], scale: float, match_radius: float, source: str = "png") -> dict:
    """Detection scores of fold k: peaks of each image's P(lymphocyte) map at the 4x scale (the
    _prob.png green channel / 255 by default, the float map with ``source`` "npy"), mapped back to
    the original scale (:func:`to_original_scale`) and matched to the true centres."""
    per_image, tot = [], {"tp": 0, "fp": 0, "fn": 0}
    for img in test:
        s = match_detections(to_original_scale(map_peaks(out_dir, img, source), scale), true_centres(img), match_radius)
        per_image.append({"image": img.name, **s})
        for key in tot:
            tot[key] += s[key]
    pooled = metrics.scores({**tot, "tn": 0})
    return {
        "fold": k,
        "detection": {
            **tot,
            "precision": pooled["precision"],
            "recall": pooled["recall"],
            "f_score": pooled["f_score"],
        },
        "images": per_image,
    }


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def scores_markdown(s: dict) -> str:
    """Per-fold and pooled detection scores beside the recalled published F-score."""
    lines = [
        "### Use case 4 (lymphocytes), detection",
        "",
        f"Peaks: disk radius {DISK_RADIUS}, threshold {PEAK_THRESHOLD}, clearing radius "
        f"{PEAK_CLEAR_RADIUS} (4x scale) on "
        + (
            "the 8-bit min-max scaled _prob.png (green / 255), as the original"
            if s.get("score_from", "png") == "png"
            else "the float probability maps (.npy)"
        )
        + f"; peaks mapped to the original scale ((x + 0.5) / 4 - 0.5) and matched one to one within "
        f"{s['match_radius']} px.",
        "",
        "| fold | tp | fp | fn | precision | recall | F-score |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in s["folds"]:
        d = f["detection"]
        lines.append(
            f"| {f['fold']} | {d['tp']} | {d['fp']} | {d['fn']} | {_f(d['precision'])} | {_f(d['recall'])} | {_f(d['f_score'])} |"
        )
    d = s["pooled"]
    lines.append(
        f"| pooled | {d['tp']} | {d['fp']} | {d['fn']} | {_f(d['precision'])} | {_f(d['recall'])} | {_f(d['f_score'])} |"
    )
    lines.append(f"| published (recalled, unchecked) | | | | | | {s['published_f_recalled']:.2f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- report

HEADLINE = [
    Column("tp", "tp", 0),
    Column("fp", "fp", 0),
    Column("fn", "fn", 0),
    Column("precision", "precision"),
    Column("recall", "recall"),
    Column("f_score", "F-score"),
]


def sort_centres(peaks: np.ndarray, truth: np.ndarray, scale: float, radius: float) -> dict[str, np.ndarray]:
    """Detections ``peaks`` (at the output scale) and true centres (original scale), both (N, 2)
    row, col, sorted as scoring matches them (:func:`match_pairs` at the original scale, the peaks
    mapped back by :func:`to_original_scale`), returned at the output scale (the truth mapped
    forward by the resize's pixel mapping, x = (u + 0.5) scale - 0.5): "truth_matched",
    "truth_missed", "pred_matched", "pred_false"."""
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    pairs = match_pairs(to_original_scale(peaks, scale), truth, radius)
    pi, ti = {i for i, _ in pairs}, {j for _, j in pairs}
    shown = (truth + 0.5) * scale - 0.5
    return {
        "truth_matched": shown[sorted(ti)],
        "truth_missed": shown[[j for j in range(len(truth)) if j not in ti]],
        "pred_matched": peaks[sorted(pi)],
        "pred_false": peaks[[i for i in range(len(peaks)) if i not in pi]],
    }


def image_centres(
    out_dir: Path, image: Path, scale: float, radius: float, source: str = "png"
) -> dict[str, np.ndarray]:
    """:func:`sort_centres` of an image's step-5 peaks, found as the scores find them
    (:func:`map_peaks`), and its annotation."""
    return sort_centres(map_peaks(out_dir, image, source), true_centres(image), scale, radius)


def report_pictures(work: Path, scores: dict, data_dir: Path, scale: float, pictures: Path) -> list[Picture]:
    """Per fold, the test images of best, median and worst detection F: true and detected centres
    (matched, missed, false) over the image at the scale step 5 saw it."""
    from pipeline import inference
    from pipeline.report.pictures import centres, describe, pick_examples

    radius = scores.get("match_radius", MATCH_RADIUS)
    source = scores.get("score_from", "png")  # the maps the scores read: the pictures read them too
    suffix = "npy" if source == "npy" else "png"
    pics = []
    for f in scores["folds"]:
        k, out = f["fold"], Path(work) / "output" / str(f["fold"])
        per = {im["image"]: im for im in f["images"]}
        have = [
            (n, im["f_score"])
            for n, im in per.items()
            if (out / f"{Path(n).stem}_prob.{suffix}").is_file() and (data_dir / n).is_file()
        ]
        for label, name in pick_examples(have):
            s = per[name]
            c = image_centres(out, data_dir / name, scale, radius, source)
            fs = "–" if s["f_score"] is None else f"{s['f_score']:.3f}"
            title = f"Fold {k}, {describe(label, len(have))}: {name}\nF {fs} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"
            file = f"lymphocyte_fold{k}_{label}_{Path(name).stem}.png"
            centres(
                inference.load_resized(data_dir / name, scale),
                c["truth_matched"],
                c["truth_missed"],
                c["pred_matched"],
                c["pred_false"],
                title,
                pictures / file,
            )
            pics.append(Picture(file, title.replace("\n", ", ") + "."))
    return pics


# --------------------------------------------------------------------------- generated cohort


def make_cohort(root: Path, n_images: int = 10, size: int = 60, seed: int = 0) -> list[Path]:
    """Generated images ``im<N>.tif`` with small dark round "lymphocytes" (and larger, paler nuclei
    as distractors) on stroma, and masks ``<N>m.tif`` (RGBA, alpha 255 at each lymphocyte centre)."""
    from PIL import Image

    from pipeline.synth import EOSIN, HEMATOXYLIN

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for i in range(1, n_images + 1):
        img = np.empty((size, size, 3))
        img[:] = EOSIN + rng.normal(0, 8, 3)
        alpha = np.zeros((size, size), np.uint8)
        for _ in range(rng.randint(3, 7)):  # distractor nuclei: large, pale, oval
            cy, cx = rng.uniform(0, size, 2)
            nuc = ((yy - cy) / 5.5) ** 2 + ((xx - cx) / 3.5) ** 2 <= 1
            img[nuc] = (HEMATOXYLIN + EOSIN) / 2
        for _ in range(rng.randint(3, 8)):  # lymphocytes: small, dark, round
            cy, cx = rng.randint(4, size - 4, 2)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 3.5**2] = HEMATOXYLIN * 0.7
            alpha[cy, cx] = 255
        img += rng.normal(0, 5, img.shape)
        path = root / f"im{i}.tif"
        Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(path)
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., 3] = alpha
        Image.fromarray(rgba, mode="RGBA").save(root / f"{i}m.tif")
        out.append(path)
    log.info("generated lymphocyte cohort: %d images of %dx%d in %s (not real tissue)", n_images, size, size, root)
    return out


# --------------------------------------------------------------------------- the use case


class Lymphocytes(CrossValidatedUseCase):
    """Use case 4: lymphocyte detection in breast cancer H&E; each image its own patient, 5 folds."""

    name = "lymphocyte"
    number = 4
    title = "lymphocyte detection"
    command = "usecase4"
    demo_command = "demo-lymphocyte"
    magnification = Params.scale
    source_objective = 20.0  # tutorial: "scanned at 20x" (the paper says 40x; the author: 20x); model at "80x"
    archives = (datasets.LYMPHOCYTE,)  # its code reads both accepted layouts in place
    released_folder = "uc4-lymphocyte"
    published = (Figure("f_score", 0.90, "recalled", "detection, JPI 2016"),)
    validation = False
    export = Spec("detection", "Lymphocyte", (255, 0, 255), "detection")
    max_positive = 2000
    demo_max_positive = 100
    numeric_options = CrossValidatedUseCase.numeric_options + ("classifier", "match_radius")

    def add_usecase_arguments(self, parser: argparse.ArgumentParser, demo: bool) -> None:
        parser.add_argument(
            "--classifier",
            default="lda",
            choices=list(CLASSIFIERS),
            help="negatives: lda (default: what the original code ran, MATLAB classify's linear "
            "discriminant with a uniform prior) or nb (naive Bayes, as its comment says)",
        )
        parser.add_argument(
            "--match-radius",
            type=float,
            default=MATCH_RADIUS,
            help="detections match true centres within this many pixels (original scale)",
        )

    def images_by_patient(self, folder: Path) -> dict[str, list[Path]]:
        return images_by_patient(folder)

    def params_from_args(self, args: argparse.Namespace) -> Params:
        return Params(n_positive=args.max_positive, classifier=args.classifier)

    def scoring_from_args(self, args: argparse.Namespace) -> dict:
        return {"match_radius": args.match_radius}

    def sample_patches(self, cfg) -> dict:
        return run_patches(cfg.data, cfg.work, cfg.params, cfg.seed, show_progress=cfg.show_progress)

    def score_fold(self, cfg, k: int, out_dir: Path, test: list[Path], val: list[Path]) -> dict:
        return score_fold(
            out_dir, k, test, cfg.params.scale, cfg.scoring.get("match_radius", MATCH_RADIUS), cfg.score_from
        )

    def pool(self, cfg, fold_scores: list[dict]) -> dict:
        c = {m: sum(f["detection"][m] for f in fold_scores) for m in ("tp", "fp", "fn")}
        pooled = metrics.scores({**c, "tn": 0})
        return {
            "folds": fold_scores,
            "pooled": {**c, **{m: pooled[m] for m in ("precision", "recall", "f_score")}},
            "match_radius": cfg.scoring.get("match_radius", MATCH_RADIUS),
            "score_from": cfg.score_from,
            "published_f_recalled": self.figures("f_score")[0].value,
        }

    def markdown(self, scores: dict) -> str:
        return scores_markdown(scores)

    def report_headline(self, scores: dict) -> Table:
        rows = [
            Row(
                f"fold {f['fold']}",
                {c.key: from_json(scores, "scores.json", "folds", i, "detection", c.key) for c in HEADLINE},
                note=f"{len(f['images'])} test image(s)",
            )
            for i, f in enumerate(scores["folds"])
        ]
        rows.append(
            Row(
                "pooled",
                {c.key: from_json(scores, "scores.json", "pooled", c.key) for c in HEADLINE},
                kind="pooled",
                note="all folds' test images",
            )
        )
        return Table(
            HEADLINE,
            rows + self.published_rows({"f_score": "f_score"}),
            caption=(
                f"Detection: peaks of P(lymphocyte) (disk radius {DISK_RADIUS}, threshold {PEAK_THRESHOLD}, clearing "
                f"radius {PEAK_CLEAR_RADIUS} at the 4x scale) matched one to one to the annotated centres within "
                f"{scores.get('match_radius', MATCH_RADIUS):g} px at the original scale."
            ),
        )

    def report_sections(self, work: Path, run: dict, scores: dict, pictures: Path) -> list[Section]:
        import json

        data_dir = Path(json.loads((work / "patches_report.json").read_text())["config"]["data"])
        if not data_dir.is_dir():
            return [Section("Detections on test images", text=f"{data_dir}: the input images are gone; no pictures.")]
        radius = scores.get("match_radius", MATCH_RADIUS)
        return [
            Section(
                "Detections on test images",
                pictures=report_pictures(work, scores, data_dir, Params.scale, pictures),
                text=(
                    "For each fold, the test images with the best, median and worst detection F-score, enlarged "
                    f"×{Params.scale:g} as the model saw them. Green circles: annotated centres with a detection within "
                    f"{radius:g} px (original scale), green plus signs those detections; thick orange circles: annotated "
                    "centres nothing detected (false negatives); magenta crosses: detections matching no centre "
                    "(false positives)."
                ),
            )
        ]

    def make_demo_cohort(self, folder: Path, seed: int) -> Path:
        if not any(Path(folder).glob("i*.tif")):
            make_cohort(folder, seed=seed)
        log.warning("the demo cohort in %s is GENERATED (synthetic lymphocyte images), not real tissue", folder)
        return Path(folder)

    def export_peaks(self, folder: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
        """The peaks the scores find (on the _prob.png, as the original) and the map's value at each."""
        green = peak_map(folder, stem)
        peaks = np.array(detect_peaks(green), dtype=np.int64).reshape(-1, 2)
        return peaks, green[peaks[:, 0], peaks[:, 1]]
