"""Use case 4's step 1: lymphocyte centres as positives, hard negatives chosen by a pixel classifier
(MATLAB classify: LDA by default), patch sampling per image."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import lists
from pipeline.detection import greedy_peaks
from pipeline.matlab import classify_linear, imresize_scale, matlab_round
from pipeline.patches import save_png
from pipeline.sampling import ImageResult, cut_patch, patch_name, run_image_jobs, select_centres

log = logging.getLogger(__name__)


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
