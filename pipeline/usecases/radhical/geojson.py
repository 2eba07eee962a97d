"""RADHicaL's results as GeoJSON for QuPath (issue 29): per RADHicaL row of the table and test image,
the final level-1 segmentation the table grades (``(P1 > lower(1) where computed) | accepted``,
holes filled: :func:`pipeline.usecases.radhical.cascade.final_segmentation`) as one polygon per
nucleus, in the image's 40x pixels: ``WORK/geojson/<run name>/<stem>.geojson``."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import Options, Spec, write_polygons
from pipeline.usecases.radhical import cascade

#: QuPath class of a segmented nucleus
SPEC = Spec("segmentation", "Nucleus", (0, 0, 200), "detection")


def export_run(work: Path, res: cascade.RunResult, lower1: float, opts: Options = Options()) -> list[Path]:
    """GeoJSON of every image of one cascade run, graded at ``P1 > lower1``."""
    out = Path(work) / "geojson" / res.name
    files = []
    for stem in sorted(res.images):
        mask = cascade.final_segmentation(res, stem, lower1)
        p1 = cascade.read_prob(res.level_dir(1), stem, 1)[:, :, 1]
        extra = {
            "pipeline": {
                "run": res.name,
                "image": stem,
                "final threshold (P1 >)": lower1,
                "frame": "pixels of the 40x image (level 1), x right, y down",
            }
        }
        files.append(write_polygons(out / f"{stem}.geojson", mask, p1, 1.0, SPEC, opts, extra))
    return files


def export_work(work: Path, opts: Options = Options()) -> list[Path]:
    """GeoJSON of each RADHicaL row of a finished table (``WORK/radhical.json``) at its own final threshold."""
    table = Path(work) / "radhical.json"
    if not table.is_file():
        raise FileNotFoundError(f"{work}: no radhical.json (run the table stage first)")
    rows = json.loads(table.read_text())["runs"]
    files = []
    for label, row in rows.items():
        if "run" not in row:
            raise ValueError(
                f"{table}: row {label!r} does not name its cascade run (an older table); rerun the table stage"
            )
        res = cascade.load_run(Path(work) / "cascade", row["run"])
        files += export_run(work, res, row["lower1"], opts)
    return files
