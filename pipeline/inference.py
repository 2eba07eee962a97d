"""Step 5: per-pixel probability maps of whole images with a trained 32x32 patch classifier.

Semantics of the original (common/step5_create_output_images_kfold.py): load RGB float [0, 1];
resize for the use case; pad 16 px symmetric; for padded rows and columns 17 .. size-17 (the first
row and column of the image are never computed) classify the window image[r-16:r+16, c-16:c+16]
with ``caffe.Classifier.predict`` (oversampling: the window and its mirror, averaged); with a
stride, rows and columns step by it. Outputs ``<stem>_prob.png`` (R = P(class 0), G = P(class 1),
B = 0) and ``<stem>_class.png`` (argmax).

Three modes compute this:

- ``reference``: the original loop, row by row, through ``caffe.Classifier.predict`` (10 inputs per
  window). Slow on purpose: the baseline and the oracle.
- ``exact``: the same numbers (|dP| <= 1e-5) computed fast: every window once plus its mirror,
  windows cut with numpy views, large batches through the reshaped deploy net.
- ``fcn``: the same weights turned into a fully convolutional net (ip1 as a 4x4 convolution, ip2 as
  1x1, softmax over channels) run on the whole padded image, 8x8 shifts stitched so every pixel gets
  a value (one pass with ``stride=8``), averaged with the mirrored image. It differs from ``exact``:
  each window's convolutions no longer see zero padding at the window border, pooling at the
  window's edge covers neighbours, and the per-channel mean replaces the per-pixel mean image.
"""
from __future__ import annotations

import glob
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, templates
from pipeline.atomic import Claim
from pipeline.caffe_env import import_caffe, set_mode
from pipeline.classify import PatchClassifier, check_model, num_outputs
from pipeline.databases import read_mean
from pipeline.imageio import load_image, write_png

log = logging.getLogger(__name__)

HW = 16                     #: half window (hwsize)
IMAGE_SUFFIXES = (".tif", ".tiff", ".png")

#: Use-case presets: resize factor applied to the input (training magnification).
PRESETS = {"idc": 1.0, "epi": 0.5, "lymphocyte": 4.0, "nuclei": 1.0, "mitosis": 1.0, "tubule": 1.0}


@dataclass
class Options:
    """Inference options (see ``python -m pipeline infer --help``)."""
    mode: str = "exact"
    resize: float = 1.0
    stride: int = 1
    batch: int = 2048
    all_pixels: bool = False
    gpu: bool = False
    max_rows: int | None = None      #: compute only the first N computed rows (benchmarks)


# --------------------------------------------------------------------------- geometry (pure)

def resize_like_caffe(img: np.ndarray, factor: float) -> np.ndarray:
    """caffe.io.resize_image(img, [int(h*f), int(w*f)]) as in 2016: min-max normalised bilinear
    skimage resize, mode 'constant', no anti-aliasing (which skimage added later). float32."""
    if factor == 1.0:
        return img
    from skimage.transform import resize
    new = (int(img.shape[0] * factor), int(img.shape[1] * factor))
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.full(new + (img.shape[2],), lo, dtype=np.float32)
    std = (img - lo) / (hi - lo)
    out = resize(std, new, order=1, mode="constant", anti_aliasing=False)
    return (out * (hi - lo) + lo).astype(np.float32)


def computed_coords(n: int, stride: int = 1, all_pixels: bool = False) -> np.ndarray:
    """Image coordinates (0-based, unpadded) the original computes along an axis of length n.

    The original's padded range(hwsize+1, n+2*hwsize-hwsize, stride) is 1 .. n-1 here.
    """
    return np.arange(0 if all_pixels else 1, n, stride)


def pad(img: np.ndarray) -> np.ndarray:
    """Symmetric 16-pixel padding (np.lib.pad(..., 'symmetric'))."""
    return np.pad(img, ((HW, HW), (HW, HW), (0, 0)), mode="symmetric")


def windows(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """32x32 windows (len(rows)*len(cols) x 32 x 32 x 3) centred as the original: for image pixel
    (r, c) the padded rows r .. r+31 and columns c .. c+31 (image rows r-16 .. r+15)."""
    view = np.lib.stride_tricks.sliding_window_view(padded, (2 * HW, 2 * HW), axis=(0, 1))
    sel = view[rows][:, cols]                                   # R x C x 3 x 32 x 32
    return sel.reshape(-1, padded.shape[2], 2 * HW, 2 * HW).transpose(0, 2, 3, 1)


def fill_strided(prob: np.ndarray, rows: np.ndarray, cols: np.ndarray, stride: int) -> np.ndarray:
    """With --all-pixels and a stride: repeat each computed value over its stride x stride block."""
    out = prob.copy()
    h, w = prob.shape[:2]
    ri = np.clip(np.searchsorted(rows, np.arange(h), side="right") - 1, 0, len(rows) - 1)
    ci = np.clip(np.searchsorted(cols, np.arange(w), side="right") - 1, 0, len(cols) - 1)
    out[:, :] = prob[rows[ri]][:, cols[ci]]
    return out


# --------------------------------------------------------------------------- engines

class Engine:
    """Shared set-up: deploy net, weights, mean."""

    def __init__(self, model: Path, mean: Path, deploy: Path | None = None, dropout: bool = False,
                 gpu: bool = False):
        self.model, self.mean_path = Path(model), Path(mean)
        self.n_out = num_outputs(self.model)
        self.deploy = Path(deploy) if deploy else templates.default_deploy_path(dropout=dropout, num_output=self.n_out)
        self.dropout = dropout
        self.gpu = gpu

    def run(self, img: np.ndarray, opts: Options) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class ReferenceEngine(Engine):
    """The original loop through caffe.Classifier (oversampling), row by row."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        caffe = import_caffe()
        set_mode(self.gpu)
        check_model(self.deploy, self.model)          # Caffe would abort the process on a mismatch
        means = read_mean(self.mean_path, shape=(3, 32, 32))
        self.net = caffe.Classifier(str(self.deploy), str(self.model), mean=means, channel_swap=(2, 1, 0),
                                    raw_scale=255, image_dims=(32, 32))

    def run(self, img: np.ndarray, opts: Options) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        cols = computed_coords(w, opts.stride, opts.all_pixels)
        for r in computed_coords(h, opts.stride, opts.all_pixels)[:opts.max_rows]:
            patches = [p[r:r + 2 * HW, c:c + 2 * HW, :] for c in cols]
            out[r, cols] = self.net.predict(patches)
        return out


class ExactEngine(Engine):
    """Each window once plus its mirror, in large batches: the reference's numbers, fast."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy, gpu=self.gpu)

    def run(self, img: np.ndarray, opts: Options) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        self.clf.batch = opts.batch
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        rows = computed_coords(h, opts.stride, opts.all_pixels)[:opts.max_rows]
        cols = computed_coords(w, opts.stride, opts.all_pixels)
        per_chunk = max(1, opts.batch // max(1, len(cols)))
        for s in range(0, len(rows), per_chunk):
            rr = rows[s:s + per_chunk]
            win = windows(p, rr, cols)
            out[np.ix_(rr, cols)] = self.clf.predict(win).reshape(len(rr), len(cols), -1)
        return out


class FCNEngine(Engine):
    """Net surgery into a fully convolutional net, run on the whole padded image, with layer-wise
    shift-and-stitch: conv1 once at full resolution, then each stride-2 pooling is run at its two
    offsets per axis (4, 16, 64 branches), so every window position gets a value with no layer
    computed twice for the same input. The window with top-left t = a1 + 2 a2 + 4 a3 + 8 i comes
    from offsets (a1, a2, a3) at pool1, pool2, pool3."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._caffe = import_caffe()
        set_mode(self.gpu)
        clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy)
        src = clf.net
        self.channel_mean = clf.mean.mean(axis=(1, 2))
        cache = templates.default_deploy_path(dropout=self.dropout, num_output=self.n_out).parent
        self.stages = []
        for stage, channels in ((1, 3), (2, 32), (3, 32), (4, 64)):
            path = cache / f"fcn_stage{stage}_{self.n_out}{'_dropout' if self.dropout else ''}.prototxt"
            templates.write_if_changed(path, templates.render(
                "fcn_stage.prototxt.j2", stage=stage, channels=channels, height=64, width=64,
                dropout=self.dropout, num_output=self.n_out))
            self.stages.append(self._caffe.Net(str(path), self._caffe.TEST))
        for net in self.stages:
            for name, blobs in net.params.items():
                srcname = name.replace("-conv", "")
                for i, b in enumerate(blobs):
                    b.data.flat = src.params[srcname][i].data.flat

    def _forward(self, stage: int, x: np.ndarray) -> np.ndarray:
        net = self.stages[stage - 1]
        blob = net.blobs["data"]
        if blob.data.shape[1:] != x.shape:
            blob.reshape(1, *x.shape)
            net.reshape()
        blob.data[0] = x
        return net.forward()[net.outputs[0]][0].copy()

    def _dense(self, x: np.ndarray, offs_y, offs_x) -> np.ndarray:
        """Window probabilities at the top-left positions ``offs + 8k`` of a preprocessed padded image
        x (3 x Hp x Wp): (Hp-31) x (Wp-31) x classes, NaN where not computed."""
        _, hp, wp = x.shape
        out = np.full((hp - 2 * HW + 1, wp - 2 * HW + 1, self.n_out), np.nan, dtype=np.float32)
        bits = lambda offs, k: sorted({(o >> k) & 1 for o in offs})  # noqa: E731
        # a branch whose input is too small (pooling needs 2 rows; pool3 + the 4x4 ip1 need 8) is skipped:
        # Caffe aborts the process on empty blobs
        fits = lambda a, need: a.shape[1] >= need and a.shape[2] >= need  # noqa: E731
        c1 = self._forward(1, x)
        for a1 in bits(offs_y, 0):
            for b1 in bits(offs_x, 0):
                if not fits(c1[:, a1:, b1:], 2):
                    continue
                c2 = self._forward(2, c1[:, a1:, b1:])
                for a2 in bits(offs_y, 1):
                    for b2 in bits(offs_x, 1):
                        if not fits(c2[:, a2:, b2:], 2):
                            continue
                        c3 = self._forward(3, c2[:, a2:, b2:])
                        for a3 in bits(offs_y, 2):
                            for b3 in bits(offs_x, 2):
                                if not fits(c3[:, a3:, b3:], 8):
                                    continue
                                prob = self._forward(4, c3[:, a3:, b3:]).transpose(1, 2, 0)
                                ys = a1 + 2 * a2 + 4 * a3 + 8 * np.arange(prob.shape[0])
                                xs = b1 + 2 * b2 + 4 * b3 + 8 * np.arange(prob.shape[1])
                                okr, okc = ys < out.shape[0], xs < out.shape[1]
                                out[np.ix_(ys[okr], xs[okc])] = prob[np.ix_(okr, okc)]
        return out

    def run(self, img: np.ndarray, opts: Options) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        x = (p.transpose(2, 0, 1)[::-1] * np.float32(255) - self.channel_mean[:, None, None]).astype(np.float32)
        wp = x.shape[2]
        if opts.stride == 8:          # one branch: the computed grid is the net's own 8-pixel grid
            off = 0 if opts.all_pixels else 1
            oy, ox, oxm = [off], [off], [(w - off) % 8]
        else:                          # every offset 0..7 on both axes
            oy = ox = oxm = list(range(8))
        dense = self._dense(x, oy, ox)[:h, :w]
        # the mirror of the window at column c starts at column (Wp - 32 - c) of the flipped image
        mirrored = self._dense(np.ascontiguousarray(x[:, :, ::-1]), oy, oxm)
        mir = mirrored[:h, wp - 2 * HW - np.arange(w)]
        prob = (dense + mir) / np.float32(2)
        rows = computed_coords(h, opts.stride, opts.all_pixels)
        cols = computed_coords(w, opts.stride, opts.all_pixels)
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        out[np.ix_(rows, cols)] = prob[np.ix_(rows, cols)]
        return np.nan_to_num(out)


ENGINES = {"reference": ReferenceEngine, "exact": ExactEngine, "fcn": FCNEngine}


# --------------------------------------------------------------------------- outputs

def bytescale(a: np.ndarray) -> np.ndarray:
    """scipy.misc.imsave's rescaling: (a - min) * 255 / (max - min), rounded (the original's PNGs)."""
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return (np.clip((a - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


def encode_outputs(prob: np.ndarray, minmax_scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(_prob RGB uint8, _class uint8) of an H x W x C probability map.

    _prob: R = P(class 0), G = P(class 1), B = 0, round(255 p); _class: argmax as 0/255 (two classes)
    or the class index (more classes). ``minmax_scale`` rescales each image's min..max to 0..255 as
    the original's scipy.misc.imsave did.
    """
    h, w, c = prob.shape
    rgb = np.zeros((h, w, 3), dtype=np.float64)
    rgb[:, :, :min(c, 3)] = prob[:, :, :3]
    cls = prob.argmax(axis=2)
    if minmax_scale:
        return bytescale(rgb), bytescale(cls.astype(np.float64))
    prob_png = np.floor(rgb * 255 + 0.5).astype(np.uint8)
    cls_png = (cls * 255).astype(np.uint8) if c == 2 else cls.astype(np.uint8)
    return prob_png, cls_png


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Names of the outputs for one input image."""
    return {"prob": out_dir / f"{stem}_prob.png", "class": out_dir / f"{stem}_class.png",
            "npy": out_dir / f"{stem}_prob.npy", "lock": out_dir / f".{stem}.lock"}


def expand_inputs(items: list[str], list_file: Path | None = None, parents: Path | None = None) -> list[Path]:
    """Image paths from files, globs and folders (``.tif``, ``.tiff``, ``.png``, masks excluded),
    plus the lines of ``list_file``; with ``parents`` only names starting with "<id>_" of a listed ID."""
    paths: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in it for ch in "*?["):
            paths += sorted(Path(q) for q in glob.glob(it))
        else:
            paths.append(p)
    if list_file:
        paths += [Path(ln.strip()) for ln in Path(list_file).read_text().splitlines() if ln.strip()]
    paths = [p for p in paths if not p.stem.endswith("_mask")]
    if parents:
        ids = [ln.strip() for ln in Path(parents).read_text().splitlines() if ln.strip()]
        paths = [p for p in paths if any(p.name.startswith(f"{i}_") for i in ids)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"input image(s) do not exist: {', '.join(map(str, missing[:5]))}")
    return list(dict.fromkeys(paths))


def infer_images(images: list[Path], engine: Engine, out_dir: Path, opts: Options, save_npy: bool = False,
                 minmax_scale: bool = False, show_progress: bool = True) -> dict:
    """Process images one by one, claiming each atomically so many workers can share ``out_dir``.

    Finished images (both PNGs present) are skipped; a crash leaves no partial output under the
    final names. Returns {"computed": [...], "skipped": [...], "seconds": s, "pixels": n}.
    """
    from tqdm import tqdm
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, skipped, pixels = [], [], 0
    t0 = time.perf_counter()
    for img_path in tqdm(images, desc=f"infer ({opts.mode})", unit="image", disable=not show_progress):
        paths = output_paths(out_dir, img_path.stem)
        if paths["prob"].is_file() and paths["class"].is_file():
            skipped.append(str(img_path))
            continue
        claim = Claim(paths["lock"])
        if not claim.acquire():
            skipped.append(str(img_path))
            continue
        try:
            img = resize_like_caffe(load_image(img_path), opts.resize)
            prob = engine.run(img, opts)
            if opts.all_pixels and opts.stride > 1 and opts.mode != "fcn":
                prob = fill_strided(prob, computed_coords(img.shape[0], opts.stride, True),
                                    computed_coords(img.shape[1], opts.stride, True), opts.stride)
            prob_png, cls_png = encode_outputs(prob, minmax_scale)
            if save_npy:
                with atomic.atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, prob.astype(np.float32))
            write_png(paths["class"], cls_png)
            write_png(paths["prob"], prob_png)
            pixels += int(np.prod(img.shape[:2]))
            done.append(str(img_path))
        finally:
            claim.release()
    return {"computed": done, "skipped": skipped, "seconds": round(time.perf_counter() - t0, 3), "pixels": pixels}


def make_engine(mode: str, model: Path, mean: Path, deploy: Path | None = None, dropout: bool = False,
                gpu: bool = False) -> Engine:
    """An engine of the given mode ("reference", "exact", "fcn")."""
    if mode not in ENGINES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(ENGINES)}")
    return ENGINES[mode](model, mean, deploy=deploy, dropout=dropout, gpu=gpu)


def window_count(h: int, w: int, stride: int = 1, all_pixels: bool = False) -> int:
    """Number of windows the original classifies for an h x w image."""
    return len(computed_coords(h, stride, all_pixels)) * len(computed_coords(w, stride, all_pixels))


#: FLOP of one 32x32 window forward (convolutions and inner products: 2 x 12.35 M multiply-adds,
#: plus pooling, ReLU and bias), the figure the benchmark's GFLOP/s are counted with.
WINDOW_FLOP = 24.9e6
