"""Pictures of a report, drawn with matplotlib (figures, legends) and scikit-image (contours, montages).

Each function writes one self-explaining PNG (title, legend, axis labels where they help), so the
files read without the page. Colours follow the Okabe-Ito palette, distinguishable with the common
colour-vision deficiencies, and every legend also differs by line style or marker shape.

For use cases adding their own pictures (RADHicaL's levels, whole-slide overlays, the U-Net):
:func:`outlines` (truth and prediction outlines beside a probability map), :func:`centres`
(matched, missed and false detections), :func:`montages` (patch grids per group) and
:func:`label_overlay` (pixels tinted by class, e.g. computed/accepted/rejected per level, or a
low-resolution slide overlay). Images are (H, W, 3) float in [0, 1] or uint8.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline import atomic
from pipeline.report.content import Picture
from pipeline.report.mdtable import fixed

__all__ = [
    "COLOURS",
    "centres",
    "describe",
    "label_overlay",
    "montages",
    "outlines",
    "pick_examples",
    "training_curves",
]

#: Okabe-Ito colours by role.
COLOURS = {
    "truth": "#00CC66",
    "prediction": "#FFD21F",
    "matched": "#00CC66",
    "missed": "#E69F00",
    "false": "#FF2BD6",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "grey": "#999999",
}
#: Display size of the longest image side, in pixels (images are shown at least this large, or their own size).
MIN_SIDE = 320
#: Narrowest figure, in pixels (room for the title and a two-column legend).
MIN_WIDTH = 480
DPI = 100


def _figure(width_px: float, height_px: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def _wrap(title: str, width_px: float) -> tuple[str, int]:
    """``title`` (its own line breaks kept) wrapped to a figure ``width_px`` wide (11-point text):
    (text, number of lines)."""
    import textwrap

    lines = [w for line in title.split("\n") for w in textwrap.wrap(line, width=max(24, int(width_px / 7.4)))] or [""]
    return "\n".join(lines), len(lines)


def _title(fig, text: str, height_px: float) -> None:
    fig.suptitle(text, fontsize=11, y=1 - 8 / height_px, va="top")


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _as_float(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def _panel_px(shape: tuple[int, ...], max_side: int) -> tuple[float, float]:
    """Width and height in pixels at which an image of ``shape`` is shown: its own size, enlarged
    to at least :data:`MIN_SIDE` on the long side, shrunk to at most ``max_side``."""
    h, w = shape[:2]
    side = float(min(max(max(h, w), MIN_SIDE), max_side))
    s = side / max(h, w)
    return w * s, h * s


def _image_axes(fig, rect: Sequence[float], image: np.ndarray, title: str):
    ax = fig.add_axes(rect)
    ax.imshow(_as_float(image), interpolation="nearest" if max(image.shape[:2]) < MIN_SIDE else "antialiased")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def pick_examples(scored: Sequence[tuple[str, float | None]]) -> list[tuple[str, str]]:
    """Best, median and worst of ``(key, score)`` pairs by score (None ranks last): ``[(label, key)]``.

    One item: "only"; two: "best", "worst"; three or more: "best", "median" (index (n - 1) // 2
    of the descending order), "worst". Ties keep the input order.
    """
    order = sorted(range(len(scored)), key=lambda i: (scored[i][1] is None, -(scored[i][1] or 0.0)))
    keys = [scored[i][0] for i in order]
    if not keys:
        return []
    if len(keys) == 1:
        return [("only", keys[0])]
    if len(keys) == 2:
        return [("best", keys[0]), ("worst", keys[1])]
    return [("best", keys[0]), ("median", keys[(len(keys) - 1) // 2]), ("worst", keys[-1])]


def describe(label: str, n: int, what: str = "test image") -> str:
    """Words for a :func:`pick_examples` label among ``n`` items: "the only test image", "best of 5 test images"."""
    return f"the only {what}" if n == 1 else f"{label} of {n} {what}s"


# --------------------------------------------------------------------------- segmentation


def outlines(
    image: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    prob: np.ndarray | None,
    title: str,
    path: Path,
    prob_label: str = "P(class 1)",
    max_side: int = 480,
) -> Path:
    """The image with the outlines of ``truth`` (solid) and ``pred`` (dashed) drawn over it, and
    beside it ``prob`` (H, W) in [0, 1] as a colour map with a colour bar; all arrays of the same
    (H, W). Writes ``path`` (PNG)."""
    from matplotlib.lines import Line2D
    from skimage.measure import find_contours

    pw, ph = _panel_px(image.shape, max_side)
    n = 2 if prob is not None else 1
    gap, cbar = 24, 70 if prob is not None else 0
    W = max(n * pw + (n - 1) * gap + cbar + 20, MIN_WIDTH)
    text, nlines = _wrap(title, W)
    margin_top, margin_bottom = 30 + 17 * nlines, 40
    H = ph + margin_top + margin_bottom
    fig = _figure(W, H)
    _title(fig, text, H)
    left = (W - (n * pw + (n - 1) * gap + cbar)) / 2
    rect = [left / W, margin_bottom / H, pw / W, ph / H]
    ax = _image_axes(fig, rect, image, "H&E with outlines")
    for mask, key, style in ((truth, "truth", "-"), (pred, "prediction", "--")):
        for c in find_contours(np.pad(np.asarray(mask, dtype=np.float32), 1), 0.5):
            ax.plot(c[:, 1] - 1, c[:, 0] - 1, style, color=COLOURS[key], linewidth=1.8)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    handles = [
        Line2D([], [], color=COLOURS["truth"], linestyle="-", linewidth=2, label="ground truth"),
        Line2D([], [], color=COLOURS["prediction"], linestyle="--", linewidth=2, label="prediction"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=9, frameon=False)
    if prob is not None:
        ax2 = fig.add_axes([(left + pw + gap) / W, margin_bottom / H, pw / W, ph / H])
        im = ax2.imshow(
            np.asarray(prob, dtype=np.float32),
            vmin=0,
            vmax=1,
            cmap="viridis",
            interpolation="nearest" if max(image.shape[:2]) < MIN_SIDE else "antialiased",
        )
        ax2.set_title(prob_label, fontsize=10)
        ax2.set_xticks([])
        ax2.set_yticks([])
        cax = fig.add_axes([(left + 2 * pw + gap + 10) / W, margin_bottom / H, 14 / W, ph / H])
        fig.colorbar(im, cax=cax)
    return _save(fig, path)


# --------------------------------------------------------------------------- detection


def centres(
    image: np.ndarray,
    truth_matched: np.ndarray,
    truth_missed: np.ndarray,
    pred_matched: np.ndarray,
    pred_false: np.ndarray,
    title: str,
    path: Path,
    max_side: int = 480,
) -> Path:
    """True and detected centres over ``image``: matched true centres (circles) with their detections
    (plus signs), missed true centres (thick circles) and false detections (crosses). Centres are
    (N, 2) arrays of (row, col) in the image's pixel coordinates. Writes ``path`` (PNG)."""
    from matplotlib.lines import Line2D

    pw, ph = _panel_px(image.shape, max_side)
    W = max(pw + 20, MIN_WIDTH)
    text, nlines = _wrap(title, W)
    margin_top, margin_bottom = 16 + 17 * nlines, 64
    H = ph + margin_top + margin_bottom
    fig = _figure(W, H)
    _title(fig, text, H)
    ax = _image_axes(fig, [(W - pw) / 2 / W, margin_bottom / H, pw / W, ph / H], image, "")
    ms = 11
    styles = [
        (
            truth_matched,
            dict(marker="o", markersize=ms, markerfacecolor="none", markeredgewidth=1.6, color=COLOURS["matched"]),
            "true centre, detected",
        ),
        (
            pred_matched,
            dict(marker="+", markersize=ms * 0.8, markeredgewidth=1.8, color=COLOURS["matched"]),
            "detection, matched",
        ),
        (
            truth_missed,
            dict(marker="o", markersize=ms, markerfacecolor="none", markeredgewidth=2.6, color=COLOURS["missed"]),
            "true centre, missed",
        ),
        (
            pred_false,
            dict(marker="x", markersize=ms * 0.7, markeredgewidth=2.2, color=COLOURS["false"]),
            "false detection",
        ),
    ]
    handles = []
    for pts, st, label in styles:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if len(pts):
            ax.plot(pts[:, 1], pts[:, 0], linestyle="none", **st)
        handles.append(Line2D([], [], linestyle="none", label=f"{label} ({len(pts)})", **st))
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=8.5, frameon=False)
    return _save(fig, path)


# --------------------------------------------------------------------------- patches


def detection_example(image: np.ndarray, found: dict[str, np.ndarray], score: dict, head: str, path: Path) -> Picture:
    """One example image of a detection use case: :func:`centres` of ``found`` (the four groups of
    :func:`pipeline.detection.sort_centres`) over ``image``, titled ``head`` and the image's F, tp, fp
    and fn (``score``); written to ``path``, returned as the report's picture."""
    title = f"{head}\nF {fixed(score['f_score'], 3)} (tp {score['tp']}, fp {score['fp']}, fn {score['fn']})"
    centres(
        image, found["truth_matched"], found["truth_missed"], found["pred_matched"], found["pred_false"], title, path
    )
    return Picture(path.name, title.replace("\n", ", ") + ".")


def montages(
    groups: dict[str, list[np.ndarray]],
    title: str,
    path: Path,
    columns: int = 8,
    scale: int = 2,
    panel_columns: int = 2,
) -> Path:
    """A grid of patch montages, one panel per group (e.g. "true positives (123)": patches), patches
    of one group all of the same (h, w, 3) shape, shown ``scale`` times enlarged. Writes ``path``."""
    from skimage.util import montage

    names = list(groups)
    tiles = {}
    for name in names:
        patches = [_as_float(p) for p in groups[name]]
        if patches:
            rows = -(-len(patches) // columns)
            blank = [np.ones_like(patches[0])] * (rows * columns - len(patches))
            tiles[name] = montage(
                np.stack(patches + blank), grid_shape=(rows, columns), padding_width=2, fill=(1.0,) * 3, channel_axis=-1
            )
    shape = max((t.shape for t in tiles.values()), default=(100, 100 * columns // 2, 3))
    tw, th = shape[1] * scale, shape[0] * scale
    pcols = min(panel_columns, max(1, len(names)))
    prows = -(-len(names) // pcols)
    top, head, gap = 40, 26, 16
    W, H = pcols * tw + (pcols + 1) * gap, top + prows * (th + head + gap)
    fig = _figure(W, H)
    _title(fig, title, H)
    for i, name in enumerate(names):
        r, c = divmod(i, pcols)
        x = gap + c * (tw + gap)
        y = H - top - (r + 1) * (th + head + gap) + gap
        ax = fig.add_axes([x / W, y / H, tw / W, th / H])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        if name in tiles:
            t = tiles[name]
            ax.imshow(t, interpolation="nearest", extent=(0, t.shape[1], t.shape[0], 0))
            ax.set_xlim(0, shape[1])
            ax.set_ylim(shape[0], 0)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, color=COLOURS["grey"])
        for s in ax.spines.values():
            s.set_visible(False)
    return _save(fig, path)


# --------------------------------------------------------------------------- label maps


def label_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    classes: dict[int, tuple[str, str]],
    title: str,
    path: Path,
    alpha: float = 0.45,
    max_side: int = 640,
) -> Path:
    """``image`` with each pixel of ``labels`` (H, W) int tinted by its class's colour; ``classes``:
    label -> (name, colour), label values not listed stay untinted (e.g. 0 = not computed). For
    RADHicaL's per-level computed/accepted/rejected pixels or a whole-slide overlay. Writes ``path``."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    img = _as_float(image)[..., :3].copy()
    labels = np.asarray(labels)
    if labels.shape != img.shape[:2]:
        raise ValueError(f"labels are {labels.shape}, image {img.shape[:2]}")
    counts = {}
    for value, (name, colour) in classes.items():
        m = labels == value
        counts[value] = int(m.sum())
        img[m] = (1 - alpha) * img[m] + alpha * np.array(to_rgb(colour), dtype=np.float32)
    pw, ph = _panel_px(img.shape, max_side)
    W = max(pw + 20, MIN_WIDTH)
    text, nlines = _wrap(title, W)
    margin_top, margin_bottom = 16 + 17 * nlines, 30 + 18 * -(-len(classes) // 2)
    H = ph + margin_top + margin_bottom
    fig = _figure(W, H)
    _title(fig, text, H)
    ax = _image_axes(fig, [(W - pw) / 2 / W, margin_bottom / H, pw / W, ph / H], img, "")
    handles = [Patch(color=colour, label=f"{name} ({counts[v]} px)") for v, (name, colour) in classes.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=8.5, frameon=False)
    return _save(fig, path)


# --------------------------------------------------------------------------- training


def _read_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, list[tuple[int, float]]] = {}
    for key in ("train_loss", "test_loss", "test_accuracy"):
        out[key] = [(int(r["iteration"]), float(r[key])) for r in rows if r.get(key)]
    return out


def training_curves(logs: dict[str, Path], path: Path, title: str = "Training") -> Path | None:
    """Loss (train solid, test dashed) and test accuracy against iteration, one colour per log
    (``{"fold 1": <prefix>_log.csv, ...}``, CSVs of :func:`pipeline.training.write_log_csv`).
    Returns ``path``, or None when no log holds a value."""
    from matplotlib.lines import Line2D

    data = {label: _read_log(p) for label, p in logs.items() if Path(p).is_file()}
    data = {k: v for k, v in data.items() if any(v.values())}
    if not data:
        return None
    has_acc = any(v["test_accuracy"] for v in data.values())
    n = 2 if has_acc else 1
    W, H = 460 * n + 40, 380
    fig = _figure(W, H)
    _title(fig, title, H)
    axes = fig.subplots(1, n, squeeze=False)[0]
    fig.subplots_adjust(left=0.09 if n == 2 else 0.14, right=0.98, top=0.84, bottom=0.3, wspace=0.28)
    palette = [COLOURS[k] for k in ("blue", "vermillion", "matched", "false", "sky", "missed", "grey")]
    for i, (label, v) in enumerate(data.items()):
        col = palette[i % len(palette)]
        if v["train_loss"]:
            axes[0].plot(*zip(*v["train_loss"]), "-", color=col, linewidth=1.2)
        if v["test_loss"]:
            axes[0].plot(*zip(*v["test_loss"]), "--o", color=col, linewidth=1.2, markersize=3)
        if has_acc and v["test_accuracy"]:
            axes[1].plot(*zip(*v["test_accuracy"]), "-o", color=col, linewidth=1.2, markersize=3)
    xs = [x for v in data.values() for series in v.values() for x, _ in series]
    for ax in axes:
        ax.set_xlim(0, max(max(xs), 1) * 1.02)
    axes[0].set_title("loss", fontsize=10)
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("softmax loss")
    if has_acc:
        axes[1].set_title("accuracy on the test phase's DB", fontsize=10)
        axes[1].set_xlabel("iteration")
        axes[1].set_ylabel("accuracy")
        axes[1].set_ylim(0, 1.02)
    handles = [
        Line2D([], [], color=palette[i % len(palette)], label=label) for i, label in enumerate(data) if len(data) > 1
    ]
    handles += [
        Line2D([], [], color="k", linestyle="-", label="train"),
        Line2D([], [], color="k", linestyle="--", marker="o", markersize=3, label="test"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=8.5, frameon=False)
    return _save(fig, path)
