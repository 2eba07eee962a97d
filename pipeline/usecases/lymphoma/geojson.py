"""Use case 7's step-5 results as GeoJSON for QuPath (issue 29): per test image one square per
36x36 tile, classified by the tile's vote (CLL, FL or MCL) with its mean probabilities; the image's
majority label and counts in the file's ``pipeline`` member."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import export_tiles
from pipeline.usecases.lymphoma import tiles

#: QuPath class names and colours of the three classes, in the nets' output order.
CLASS_STYLE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("CLL", (0, 114, 178)),
    ("FL", (230, 159, 0)),
    ("MCL", (0, 158, 115)),
)


def export_record(rec: dict, out_dir: Path) -> Path:
    """``<image stem>.geojson`` in ``out_dir`` of one step-5 record (``output/<k>/images/<stem>.json``:
    tile centres (row, column), per-tile probabilities and votes, the image's label)."""
    extra = {
        "pipeline": {
            "image": rec["image"],
            "predicted": tiles.CLASSES[rec["predicted"]],
            "true": None if rec.get("true") is None else tiles.CLASSES[rec["true"]],
            "counts": dict(zip(tiles.CLASSES, rec["counts"])),
            "frame": f"pixels of the image, x right, y down; {tiles.TILE}x{tiles.TILE} tiles centred on step 5's grid",
        }
    }
    return export_tiles(
        Path(out_dir) / f"{Path(rec['image']).stem}.geojson",
        [tuple(c) for c in rec["centres"]],
        tiles.TILE,
        rec["votes"],
        rec["probs"],
        CLASS_STYLE,
        extra=extra,
    )


def export_fold(out_dir: Path) -> list[Path]:
    """GeoJSON of every image record of a fold's output folder (``output/<k>/images/*.json``)."""
    return [
        export_record(json.loads(p.read_text()), out_dir) for p in sorted((Path(out_dir) / "images").glob("*.json"))
    ]


def export_work(work: Path) -> list[Path]:
    """GeoJSON of every fold's test images of a use-case-7 work folder."""
    folders = sorted(p for p in (Path(work) / "output").glob("*") if (p / "images").is_dir())
    if not folders:
        raise FileNotFoundError(f"{work}: no output/<fold>/images/ records (run the outputs stage first)")
    return [f for d in folders for f in export_fold(d)]
