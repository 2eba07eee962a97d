"""GeoJSON of a patch classification (use case 6, IDC): one square per patch, with its class and
probabilities, one file per patient (slide).

The IDC data set names each 50x50 patch after its place in the patient's slide,
``<patient>_idx5_x<X>_y<Y>_class<C>.png`` with (X, Y) its top-left pixel, 1-based; the square is
[X-1, X-1+50) x [Y-1, Y-1+50) of that slide's pixels (edge frame). Read from the per-patch CSV the
evaluation writes (``WORK/eval/metrics.csv``: name, patient, label, p0, p1, predicted).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import shapely

from pipeline.export import features
from pipeline.export.images import Spec

log = logging.getLogger(__name__)

#: Side of an IDC patch in its slide's pixels (the data set's patches; a few at the slide's border
#: are smaller, which the file name does not say).
PATCH_SIDE = 50
NAME = re.compile(r"_x(\d+)_y(\d+)_class(\d)\.png$")


def export_patches(csv_path: Path, spec: Spec, out_dir: Path | None = None, side: int = PATCH_SIDE) -> list[Path]:
    """``<patient>.geojson`` per patient of a per-patch CSV (into ``out_dir``, default beside it):
    one square per patch whose name holds its position (rotated copies, ``..._class1<k>.png``, are
    left out), classification ``spec.name`` (predicted 1) or ``spec.other_name``, measurements
    P(class 0), P(class 1) and the true class."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: no per-patch results (run the evaluate stage first)")
    by_patient: dict[str, list[dict]] = {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            if NAME.search(row["name"]):
                by_patient.setdefault(row["patient"], []).append(row)
    if not by_patient:
        raise ValueError(f"{csv_path}: no patch name holds its position (<patient>_idx5_x<X>_y<Y>_class<C>.png)")
    out_dir = Path(out_dir) if out_dir is not None else csv_path.parent
    written = []
    for pid, rows in sorted(by_patient.items()):
        path = out_dir / f"{pid}.geojson"
        extra = {
            "pipeline": {
                "results": str(csv_path.resolve()),
                "patient": pid,
                "frame": "pixels of the patient's slide as the IDC data set names them (x, y of a patch's "
                "top-left, 1-based, minus 1), x right, y down",
            }
        }
        with features.collection(path, extra) as w:
            for row in rows:
                x, y, _ = (int(v) for v in NAME.search(row["name"]).groups())
                pred = int(row["predicted"])
                w.add(
                    features.feature(
                        shapely.box(x - 1, y - 1, x - 1 + side, y - 1 + side),
                        spec.name if pred == 1 else spec.other_name,
                        spec.color if pred == 1 else spec.other_color,
                        spec.object_type,
                        {
                            "P(class 0)": float(row["p0"]),
                            "P(class 1)": float(row["p1"]),
                            "True class": int(row["label"]),
                        },
                        {"name": row["name"]},
                    )
                )
        written.append(path)
        log.info("%s: %d patch(es)", path, len(rows))
    return written


def export_tiles(
    path: Path,
    centres: list[tuple[int, int]],
    side: int,
    labels: list[int],
    probs: list[list[float]],
    classes: tuple[tuple[str, tuple[int, int, int]], ...],
    object_type: str = "tile",
    extra: dict | None = None,
) -> Path:
    """One GeoJSON file of an image's classified tiles: a ``side`` x ``side`` square centred on each
    (row, column) of ``centres`` (pixels of the image, the square [c - side/2, c + side/2) x
    [r - side/2, r + side/2)), classified as its ``labels`` entry (the tile's vote), ``classes``
    giving each class's (name, colour); measurements P(<name>) per class from ``probs``."""
    hw = side / 2
    with features.collection(Path(path), extra) as w:
        for (r, c), k, p in zip(centres, labels, probs, strict=True):
            w.add(
                features.feature(
                    shapely.box(c - hw, r - hw, c + hw, r + hw),
                    classes[k][0],
                    classes[k][1],
                    object_type,
                    {f"P({name})": float(p[i]) for i, (name, _) in enumerate(classes)},
                )
            )
    return Path(path)
