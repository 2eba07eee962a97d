"""``python -m pipeline export``: results as GeoJSON that QuPath imports (issue 29).

FOLDER is a use case's work folder (``WORK/run.json``), a step-5 output folder (``infer --out``,
``WORK/output/<fold>``: its ``.outputs.json`` record says how the maps were made), an ``infer-wsi``
slide folder (``plan.json``) or an ``infer-wsi --out`` folder of slide folders.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import export
from pipeline.inference.outputs import RECORD, read_record
from pipeline.usecases import REGISTRY

#: Class of a whole slide's map when no use case is named (``infer-wsi`` without ``--usecase``).
GENERIC = export.Spec("segmentation", "Class 1", (200, 0, 0), "annotation")
FORMATS = ("geojson",)


def add(sub) -> None:
    p = sub.add_parser("export", help="results as GeoJSON for QuPath (polygons, points, squares)")
    p.add_argument("folder", type=Path, help="work folder, infer --out folder, infer-wsi --out folder or slide folder")
    p.add_argument("--format", default="geojson", choices=FORMATS, help="output format (default geojson)")
    p.add_argument(
        "--threshold",
        type=float,
        help="segmentation: regions of P(class 1) >= T (from the float map when written) instead of the class map",
    )
    p.add_argument("--min-area", type=float, default=0.0, help="leave out regions smaller than A (original pixels^2)")
    p.add_argument(
        "--simplify",
        type=float,
        default=0.0,
        help="simplify polygons with tolerance S (original pixels; default 0: exact pixel edges)",
    )
    p.add_argument("--mpp", type=float, help="um per pixel of the original image: areas also in um^2")
    p.add_argument(
        "--usecase",
        choices=list(REGISTRY),
        help="what the maps are, when their record and run.json do not say (infer without --usecase)",
    )
    p.set_defaults(func=run)


def usecase_of(folder: Path, given: str | None):
    """The use case whose results ``folder`` holds: ``given``, else the maps' record, else the
    run.json of the work folder above (``WORK/output/<k>``); ValueError (one line) when unknown."""
    name = given
    if name is None and (folder / RECORD).is_file():
        name = read_record(folder).usecase
    for up in (folder, folder.parent, folder.parent.parent):
        if name is None and (up / "run.json").is_file():
            name = json.loads((up / "run.json").read_text()).get("usecase")
    if name is None:
        raise ValueError(
            f"{folder}: unknown use case (neither the maps' record nor a run.json names one); "
            f"give --usecase ({', '.join(REGISTRY)})"
        )
    if name not in REGISTRY:
        raise ValueError(f"{folder}: unknown use case {name!r} (known: {', '.join(REGISTRY)})")
    uc = REGISTRY[name]
    if uc.export is None:
        raise ValueError(f"{folder}: use case {name} has no GeoJSON export")
    return uc


def slide_spec(given: str | None) -> export.Spec:
    """A whole slide's class map as polygons, named after the use case when given."""
    uc = REGISTRY.get(given) if given else None
    if uc is None or uc.export is None or uc.export.kind != "segmentation":
        return GENERIC
    return uc.export


def export_any(folder: Path, opts: export.Options, usecase: str | None = None) -> list[Path]:
    """Whatever ``folder`` holds (see the module doc); FileNotFoundError/ValueError (one line) otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if export.is_slide_folder(folder):
        return [export.export_slide(folder, slide_spec(usecase), opts)]
    slides = sorted(p for p in folder.iterdir() if p.is_dir() and export.is_slide_folder(p))
    if slides:
        return [export.export_slide(s, slide_spec(usecase), opts) for s in slides]
    if (folder / RECORD).is_file() or export.map_stems(folder):
        if not (folder / RECORD).is_file():
            raise FileNotFoundError(
                f"{folder}: maps without {RECORD}, the record of how they were made (resize, stride, model), "
                "so their coordinates cannot be mapped back; recompute them with this version (infer --force)"
            )
        return usecase_of(folder, usecase).export_outputs(folder, opts)
    if (folder / "run.json").is_file():
        return usecase_of(folder, usecase).export_work(folder, opts)
    raise FileNotFoundError(
        f"{folder}: nothing to export: no step-5 maps (*_class.png), no slide folders (plan.json) "
        "and no run.json of a use case's work folder"
    )


def run(a) -> dict:
    opts = export.Options(a.threshold, a.min_area, a.simplify, a.mpp)
    files = export_any(a.folder, opts, a.usecase)
    return {"geojson": [str(f) for f in files], "files": len(files)}
