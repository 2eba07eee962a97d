"""QuPath's GeoJSON: features and a streaming FeatureCollection writer.

QuPath (0.4 and later) reads a FeatureCollection whose features carry ``properties.objectType``
("annotation", "detection" or "tile"), ``properties.classification`` ({"name", "color": [r, g, b]})
and optional ``properties.measurements`` ({name: number}); coordinates are pixels of the image's
full resolution (level 0), x to the right, y down, pixel centres at half-integers.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import shapely
from shapely.geometry.base import BaseGeometry

from pipeline import atomic

#: Decimal places of coordinates (1e-6 px: exact for pixel edges scaled by the usual factors).
DECIMALS = 6


def feature(
    geom: BaseGeometry,
    name: str,
    color: tuple[int, int, int],
    object_type: str = "annotation",
    measurements: dict[str, float] | None = None,
    extra: dict | None = None,
) -> dict:
    """One GeoJSON feature as QuPath imports it (NaN measurements left out)."""
    props: dict = {
        "objectType": object_type,
        "classification": {"name": name, "color": list(color)},
    }
    if measurements:
        props["measurements"] = {
            k: float(v) for k, v in measurements.items() if v is not None and not math.isnan(float(v))
        }
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "geometry": json.loads(shapely.to_geojson(geom)),
        "properties": props,
    }


def _rounded(geometry: dict) -> dict:
    def r(c):
        return [r(x) for x in c] if isinstance(c[0], list) else [round(x, DECIMALS) for x in c]

    return {**geometry, "coordinates": r(geometry["coordinates"])}


class FeatureWriter:
    """Writes features one by one into an open FeatureCollection (streamed: nothing held)."""

    def __init__(self, fh, extra: dict | None = None):
        self.fh, self.count = fh, 0
        head = {"type": "FeatureCollection", **(extra or {})}
        text = json.dumps(head)
        fh.write(text[:-1] + ', "features": [\n')

    def add(self, feat: dict) -> None:
        feat = {**feat, "geometry": _rounded(feat["geometry"])}
        self.fh.write((",\n" if self.count else "") + json.dumps(feat, separators=(",", ":")))
        self.count += 1

    def close(self) -> None:
        self.fh.write("\n]}\n")


@contextmanager
def collection(path: Path, extra: dict | None = None) -> Iterator[FeatureWriter]:
    """A FeatureCollection written to ``path`` atomically (a temporary name, renamed when complete);
    ``extra``: top-level members beside the features (what the file was made from)."""
    with atomic.atomic_path(Path(path)) as tmp, open(tmp, "w") as fh:
        w = FeatureWriter(fh, extra)
        yield w
        w.close()
