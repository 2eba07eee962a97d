"""What a data set holds, before any long run: ``python -m pipeline data check DATA --usecase X``.

:func:`inventory` reads every image's header and every mask of a :class:`pipeline.layouts.Match`
and reports patients, images, masks, image sizes and modes, mask bit depths and value sets, images
without masks and masks without images. Problems that would stop or spoil a run (unreadable files,
a mask of another size than its image, nothing found) are errors; the rest are warnings, which the
use cases handle (an image without a mask is skipped, as the original did).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.layouts import Match

log = logging.getLogger(__name__)

SHOWN = 5  # names listed per problem


_PNG_MODES = {
    (0, 1): "1",
    (0, 8): "L",
    (0, 16): "I;16",
    (2, 8): "RGB",
    (2, 16): "RGB;16",
    (3, 8): "P",
    (4, 8): "LA",
    (6, 8): "RGBA",
    (6, 16): "RGBA;16",
}


def png_header(head: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) from the first 26 bytes of a PNG (its IHDR chunk), or None."""
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, colour = head[24], head[25]
    return w, h, _PNG_MODES.get((colour, depth), f"png type {colour} depth {depth}")


def image_info(path: Path) -> tuple[int, int, str]:
    """(width, height, PIL mode) from the file's header (read directly for PNG: IDC has 277,524);
    tifffile when Pillow cannot read a TIFF."""
    from PIL import Image

    if Path(path).suffix.lower() == ".png":
        with open(path, "rb") as fh:
            info = png_header(fh.read(26))
        if info is not None:
            return info
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], im.mode
    except OSError:
        if Path(path).suffix.lower() not in (".tif", ".tiff"):
            raise
        import tifffile

        with tifffile.TiffFile(path) as tf:
            shape = tf.pages[0].shape
        return shape[1], shape[0], f"tiff {tf.pages[0].dtype}x{shape[2] if len(shape) > 2 else 1}"


def mask_info(path: Path, band: str | None = None) -> tuple[int, int, str, np.ndarray]:
    """(width, height, bit depth, sorted distinct values) of a mask: the ``band`` (e.g. "A") when
    the mask has it, else the mask as read (first band of a colour mask, palette as gray)."""
    from PIL import Image

    with Image.open(path) as im:
        mode, bands = im.mode, im.getbands()
        if mode == "1":
            arr, depth = np.asarray(im, dtype=np.uint8), "1-bit"
        elif band and band in bands:
            arr, depth = np.asarray(im.getchannel(band)), f"8-bit {mode} (band {band})"
        elif mode.startswith("I;16"):
            arr, depth = np.asarray(im), "16-bit"
        elif mode in ("I", "F"):
            arr, depth = np.asarray(im), f"32-bit {mode}"
        elif mode == "P":
            arr, depth = np.asarray(im.convert("L")), "8-bit P (palette, as gray)"
        else:
            arr = np.asarray(im)
            arr, depth = (arr[..., 0] if arr.ndim == 3 else arr), f"8-bit {mode}"
        size = im.size
    return size[0], size[1], depth, np.unique(arr)


def _values_key(values: np.ndarray) -> str:
    if len(values) <= 8:
        return "{" + ", ".join(str(v.item()) for v in values) + "}"
    return f"{len(values)} values from {values[0].item()} to {values[-1].item()}"


def _names(paths: list, root: Path) -> list[str]:
    out = []
    for p in paths:
        try:
            out.append(str(Path(p).relative_to(root)))
        except ValueError:
            out.append(str(p))
    return out


def inventory(match: Match, show_progress: bool = True) -> dict:
    """The report of a located data set (JSON-ready): counts, sizes, mask values, problems."""
    from tqdm import tqdm

    root = Path(match.root)
    lay = match.layout
    sizes: Counter = Counter()
    modes: Counter = Counter()
    depths: Counter = Counter()
    values: Counter = Counter()
    errors: list[str] = []
    warnings: list[str] = []
    unreadable, wrong_size, empty, many = [], [], [], []
    image_size = {}
    for key, img in tqdm(sorted(match.images.items()), desc="check images", unit="image", disable=not show_progress):
        try:
            w, h, mode = image_info(img)
        except Exception as exc:  # noqa: BLE001  any decoder error is reported, not raised
            unreadable.append(f"{_names([img], root)[0]} ({type(exc).__name__}: {exc})")
            continue
        image_size[key] = (w, h)
        sizes[f"{w}x{h}"] += 1
        modes[mode] += 1
    bad_masks = []
    for key, msk in tqdm(
        sorted(match.masks.items()), desc="check masks", unit="mask", disable=not show_progress or not match.masks
    ):
        try:
            w, h, depth, vals = mask_info(msk, lay.mask_band)
        except Exception as exc:  # noqa: BLE001
            bad_masks.append(f"{_names([msk], root)[0]} ({type(exc).__name__}: {exc})")
            continue
        depths[depth] += 1
        values[_values_key(vals)] += 1
        if key in image_size and image_size[key] != (w, h):
            iw, ih = image_size[key]
            wrong_size.append(f"{_names([msk], root)[0]} is {w}x{h}, its image {iw}x{ih}")
        if len(vals) == 1:
            empty.append(_names([msk], root)[0])
        elif len(vals) > 2:
            many.append(_names([msk], root)[0])
    no_mask = _names(match.images_without_masks(), root)
    no_image = _names(match.masks_without_images(), root)
    for label, items, sink in (
        ("unreadable image(s)", unreadable, errors),
        ("unreadable mask(s)", bad_masks, errors),
        ("mask(s) of another size than their image", wrong_size, errors),
        (f"image(s) without a mask (expected at {lay.masks}; skipped by the run)", no_mask, warnings),
        ("mask(s) without an image", no_image, warnings),
        ("mask(s) with a single value (no annotation)", empty, warnings),
        ("mask(s) with more than two values", many, warnings),
    ):
        if items:
            more = f" ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
            sink.append(f"{len(items)} {label}: {'; '.join(items[:SHOWN])}{more}")
    labels = Counter(f["label"] for f in match.fields.values() if "label" in f)
    return {
        "root": str(root),
        "layout": lay.describe(),
        "patients": len(match.patients()),
        "images": len(match.images),
        "masks": len(match.masks) if lay.masks else None,
        "pairs": match.pairs,
        "labels": dict(sorted(labels.items())) or None,
        "image_sizes": dict(sizes.most_common()),
        "image_modes": dict(modes.most_common()),
        "mask_depths": dict(depths.most_common()),
        "mask_values": dict(values.most_common()),
        "images_without_masks": no_mask,
        "masks_without_images": no_image,
        "errors": errors,
        "warnings": warnings,
    }


def _counts(d: dict, limit: int = 6) -> str:
    items = list(d.items())
    text = ", ".join(f"{k}: {v}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def format_report(report: dict, title: str) -> str:
    """The report as the text ``data check`` prints."""
    lines = [f"data check: {report['data']} ({title})"]
    arch = report.get("archive")
    if arch:
        lines.append(
            f"  archive    {arch['status']}: {arch['note']}"
            + (f"; sha256 {arch['sha256']}" if arch.get("sha256") else "")
        )
    lines.append(f"  layout     {report['layout']}")
    lines.append(f"  root       {report['root']}")
    lines.append(f"  patients   {report['patients']}")
    with_masks = f" ({report['pairs']} with masks)" if report["masks"] is not None else ""
    lines.append(
        f"  images     {report['images']}{with_masks}; sizes {_counts(report['image_sizes'])}; "
        f"modes {_counts(report['image_modes'])}"
    )
    if report.get("labels"):
        lines.append(f"  labels     {_counts(report['labels'])} (images per class folder)")
    if report["masks"] is not None:
        lines.append(
            f"  masks      {report['masks']}; {_counts(report['mask_depths'])}; values {_counts(report['mask_values'])}"
        )
        lines.append(
            f"  without masks: {len(report['images_without_masks'])} images; "
            f"masks without images: {len(report['masks_without_images'])}"
        )
    for e in report["errors"]:
        lines.append(f"  ERROR      {e}")
    for w in report["warnings"]:
        lines.append(f"  warning    {w}")
    lines.append(
        "  result     "
        + (
            "NOT READY: fix the errors above before a run"
            if report["errors"]
            else "ready" + (" (see the warnings)" if report["warnings"] else "")
        )
    )
    return "\n".join(lines)
