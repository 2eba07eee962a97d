"""Checks of exported GeoJSON with real readers: the ``geojson`` package parses it, shapely finds
every geometry valid, and rasterised back the shapes give the maps they came from."""

from __future__ import annotations

import json
from pathlib import Path

import geojson
import numpy as np
import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from pipeline.export import rasterise


def load_checked(path: Path) -> dict:
    """The FeatureCollection of ``path`` after the checks: parsed and valid for the ``geojson``
    package, every geometry valid for shapely, QuPath's properties present."""
    text = Path(path).read_text()
    parsed = geojson.loads(text)
    assert isinstance(parsed, geojson.FeatureCollection) and parsed.is_valid, parsed.errors()
    fc = json.loads(text)
    for f in fc["features"]:
        g = shape(f["geometry"])
        assert g.is_valid, f"{path}: {explain_validity(g)}"
        props = f["properties"]
        assert props["objectType"] in ("annotation", "detection", "tile")
        assert set(props["classification"]) == {"name", "color"}
    return fc


def geometries(fc: dict) -> list:
    return [shape(f["geometry"]) for f in fc["features"]]


def raster(fc: dict, map_shape: tuple[int, int], resize: float) -> np.ndarray:
    """The map pixels (at step 5's scale) whose centres lie inside the file's shapes."""
    return rasterise(geometries(fc), map_shape, 1.0 / resize)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def points(fc: dict) -> np.ndarray:
    """(N, 2) x, y of the file's points."""
    return np.array([[p.x, p.y] for p in geometries(fc) if isinstance(p, shapely.Point)]).reshape(-1, 2)


def geojson_beside_each_map(output: Path, kind: str) -> int:
    """Every map under ``output`` (``<stem>_class.png``) has ``<stem>.geojson`` beside it that passes
    :func:`load_checked`, with geometries of ``kind`` ("Polygon", "Point"); returns the feature count."""
    maps = sorted(Path(output).rglob("*_class.png"))
    assert maps, f"no maps under {output}"
    n = 0
    for m in maps:
        fc = load_checked(m.with_name(m.name[: -len("_class.png")] + ".geojson"))
        assert all(shape(f["geometry"]).geom_type == kind for f in fc["features"]), m
        n += len(fc["features"])
    return n
