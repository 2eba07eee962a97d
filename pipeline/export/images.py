"""GeoJSON of a step-5 output folder (``infer --out``, ``WORK/output/<fold>``): one file per image.

Reads the folder's record (``.outputs.json``: resize, stride, ...) and each image's maps; writes
``<stem>.geojson`` beside them, coordinates in the original image's pixels (edge frame, see
:mod:`pipeline.export.geometry`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import shapely

from pipeline.export import features, geometry
from pipeline.inference.outputs import RECORD, OutputRecord, output_paths, read_maps, read_record

log = logging.getLogger(__name__)

KINDS = ("segmentation", "detection", "patches")


@dataclass(frozen=True)
class Spec:
    """What a use case's results are, for export: ``kind`` (one of :data:`KINDS`), the QuPath
    classification ``name`` and ``color`` of class 1, and the QuPath ``object_type`` of its features."""

    kind: str
    name: str
    color: tuple[int, int, int]
    object_type: str = "annotation"
    other_name: str = ""  #: class 0's name (patches: every patch is exported, with its class)
    other_color: tuple[int, int, int] = (128, 128, 128)


@dataclass(frozen=True)
class Options:
    """``export`` options: ``threshold`` None: the class map (argmax); else P(class 1) >= T;
    ``min_area``: regions below it (source pixels^2) left out; ``simplify``: Douglas-Peucker tolerance
    (source pixels; 0: the exact pixel edges); ``mpp``: source um per pixel (areas in um^2 too)."""

    threshold: float | None = None
    min_area: float = 0.0
    simplify: float = 0.0
    mpp: float | None = None


def map_stems(folder: Path) -> list[str]:
    """Stems of the images whose maps ``folder`` holds (``<stem>_class.png``), sorted."""
    return sorted(p.name[: -len("_class.png")] for p in Path(folder).glob("*_class.png"))


def load_class_map(
    folder: Path, stem: str, record: OutputRecord, threshold: float | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(class-1 mask, P(class 1), where P came from) of one image, H x W at the map's scale: the
    float map when written (``_prob.npy``), else the PNGs (P = green / 255 of the min-max PNG, so
    "mean probability" is then relative to the image's largest). Strided maps are filled from
    their computed pixels (what the scores read)."""
    if output_paths(Path(folder), stem)["npy"].is_file():
        prob = record.filled(np.load(output_paths(Path(folder), stem)["npy"]))
        p1, cls, source = prob[..., 1].astype(np.float64), prob.argmax(axis=2) == 1, "npy"
    else:
        p1, cls = read_maps(Path(folder), stem, "png")
        p1, cls, source = record.filled(p1), record.filled(cls), "png"
    return (cls if threshold is None else p1 >= threshold), p1, source


def _finish(g, opts: Options):
    """Simplified (topology kept) and valid, or None when below ``min_area``."""
    if opts.simplify > 0:
        g = shapely.simplify(g, opts.simplify, preserve_topology=True)
        if not g.is_valid:
            g = shapely.make_valid(g)
    if g.is_empty or g.area < opts.min_area:
        return None
    return g


def area_measurements(g, pixels: int, value_sum: float, opts: Options) -> dict[str, float]:
    """QuPath measurements of a region: its area (source pixels^2, and um^2 with ``mpp``), the number
    of map pixels and their mean P(class 1)."""
    m = {"Area px^2": g.area, "Map pixels": pixels, "Mean probability": value_sum / pixels if pixels else None}
    if opts.mpp:
        m["Area um^2"] = g.area * opts.mpp**2
    return m


def header(folder: Path, stem: str, record: OutputRecord, opts: Options, **more) -> dict:
    """Top-level members of a file: what it was made from (foreign members, ignored by readers)."""
    return {
        "pipeline": {
            "maps": str(Path(folder).resolve()),
            "image": stem,
            "frame": "pixels of the original image (before step 5's resize), x right, y down, pixel centres at +0.5",
            "record": dataclasses.asdict(record),
            "options": dataclasses.asdict(opts),
            **more,
        }
    }


def export_segmentation(folder: Path, stem: str, record: OutputRecord, spec: Spec, opts: Options) -> Path:
    """``<stem>.geojson``: one polygon (with holes) per 8-connected region of the class map (or
    ``P >= threshold``), classification ``spec.name``, measurements :func:`area_measurements`."""
    mask, p1, source = load_class_map(folder, stem, record, opts.threshold)
    extra = header(folder, stem, record, opts, probability_from=source)
    return write_polygons(Path(folder) / f"{stem}.geojson", mask, p1, 1.0 / record.resize, spec, opts, extra)


def write_polygons(
    path: Path, mask: np.ndarray, values: np.ndarray, factor: float, spec: Spec, opts: Options, extra: dict
) -> Path:
    """``path``: one polygon (with holes) per 8-connected region of the H x W boolean ``mask``, mapped
    to the source frame by ``factor`` (source pixels per map pixel), classification ``spec.name``,
    measurements :func:`area_measurements` (mean of ``values`` over the region); ``extra``: the
    file's top-level members."""
    with features.collection(Path(path), extra) as w:
        for reg in geometry.regions(mask, values):
            g = _finish(geometry.to_source(reg.geometry, factor), opts)
            if g is not None:
                w.add(
                    features.feature(
                        g,
                        spec.name,
                        spec.color,
                        spec.object_type,
                        area_measurements(g, reg.pixels, reg.value_sum, opts),
                    )
                )
    log.info("%s: %d region(s)", path, w.count)
    return Path(path)


#: A use case's detections of one image: (N, 2) 0-based (row, col) peaks at the map's scale and
#: (N,) their probabilities, found exactly as its scores find them.
Peaks = Callable[[Path, str], tuple[np.ndarray, np.ndarray]]


def export_detection(folder: Path, stem: str, record: OutputRecord, spec: Spec, peaks: Peaks) -> Path:
    """``<stem>.geojson``: one point per detection (``peaks``), mapped to the original image as the
    scores map them, measurement "Peak probability"."""
    pk, val = peaks(Path(folder), stem)
    pts = geometry.peak_points(pk, record.resize)
    path = Path(folder) / f"{stem}.geojson"
    with features.collection(path, header(folder, stem, record, Options())) as w:
        for (x, y), v in zip(pts, val):
            w.add(
                features.feature(
                    shapely.Point(x, y), spec.name, spec.color, spec.object_type, {"Peak probability": float(v)}
                )
            )
    log.info("%s: %d detection(s)", path, w.count)
    return path


def is_current(made: Path, source: Path) -> bool:
    """``made`` exists and is not older than ``source`` (the file it was made from)."""
    return made.is_file() and made.stat().st_mtime_ns >= source.stat().st_mtime_ns


def export_folder(
    folder: Path, spec: Spec, opts: Options = Options(), peaks: Peaks | None = None, only_missing: bool = False
) -> list[Path]:
    """Every image of a step-5 output folder (``only_missing``: those without a ``.geojson`` at least as
    new as their ``_class.png``).
    Raises FileNotFoundError (one line) for a folder without maps or without its record."""
    folder = Path(folder)
    stems = map_stems(folder)
    if not stems:
        raise FileNotFoundError(f"{folder}: no step-5 maps (no *_class.png) to export")
    if not (folder / RECORD).is_file():
        raise FileNotFoundError(
            f"{folder}: maps without {RECORD}, the record of how they were made (resize, stride, model), "
            "so their coordinates cannot be mapped back; recompute them with this version (infer --force)"
        )
    record = read_record(folder)
    if record.resize is None:
        raise ValueError(f"{folder / RECORD}: records no resize (written before issue 23); recompute with --force")
    out = []
    for stem in stems:
        if only_missing and is_current(folder / f"{stem}.geojson", output_paths(folder, stem)["class"]):
            continue
        if spec.kind == "segmentation":
            out.append(export_segmentation(folder, stem, record, spec, opts))
        elif spec.kind == "detection":
            if peaks is None:
                raise ValueError("detection export needs the use case's peak finder")
            out.append(export_detection(folder, stem, record, spec, peaks))
        else:
            raise ValueError(f"{folder}: maps of kind {spec.kind!r} cannot be exported per image")
    return out
