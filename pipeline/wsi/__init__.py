"""Whole-slide images: step 5 tile by tile on slides OpenSlide reads (issue 14).

reader -> splitter -> engine -> merger, as TIAToolbox and MONAI split it, one job a module:
``slide`` (OpenSlide reader), ``magnification`` (which level and resampling give the model's
magnification; pure), ``resample`` (model pixels in global coordinates; pure), ``tissue`` (tissue
mask and tile selection; pure), ``tiling`` (tiles, context margins, job-array parts; pure),
``plan`` (a slide's shared plan), ``store`` (finished tiles on disk, claims), ``process`` (tiles
through a step-5 engine), ``writer`` (pyramidal TIFFs, overlay), ``runner`` (workers, merge).
Nothing here knows a use case: the command line turns ``--usecase`` into a magnification.
"""

from pipeline.wsi.magnification import MissingMagnification, Scale, plan_scale, slide_objective
from pipeline.wsi.plan import Plan, Settings, make_plan
from pipeline.wsi.process import compute_tile, process_tiles, read_model_pixels
from pipeline.wsi.runner import infer_slide, merge, output_paths, slide_folder
from pipeline.wsi.slide import Slide, SlideError
from pipeline.wsi.tiling import Tile, grid, parse_part, part, with_context

__all__ = [
    "MissingMagnification",
    "Plan",
    "Scale",
    "Settings",
    "Slide",
    "SlideError",
    "Tile",
    "compute_tile",
    "grid",
    "infer_slide",
    "make_plan",
    "merge",
    "output_paths",
    "parse_part",
    "part",
    "plan_scale",
    "process_tiles",
    "read_model_pixels",
    "slide_folder",
    "slide_objective",
    "with_context",
]
