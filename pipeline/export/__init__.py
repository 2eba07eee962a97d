"""Results where pathologists look at them: GeoJSON that QuPath imports (issue 29).

One job a module: ``geometry`` (pixel-exact polygons of a class map's regions, points, the frame
mapping back through step 5's resize; pure), ``features`` (QuPath's feature format, a streaming
atomic writer), ``images`` (a step-5 output folder: one file per image), ``slides`` (an
``infer-wsi`` slide: tiles streamed, regions across tile borders merged), ``patches`` (use case 6's
patch classification: a square per patch). Nothing here knows a use case: each use case says what
its results are (:class:`Spec`) and the command line (``python -m pipeline export``) picks it.
"""

from pipeline.export.features import collection, feature
from pipeline.export.geometry import Region, peak_points, rasterise, regions, to_source
from pipeline.export.images import KINDS, Options, Spec, export_folder, is_current, map_stems, write_polygons
from pipeline.export.patches import export_patches, export_tiles
from pipeline.export.slides import export_slide, is_slide_folder, merge_pieces

__all__ = [
    "KINDS",
    "Options",
    "Region",
    "Spec",
    "collection",
    "export_folder",
    "export_patches",
    "export_slide",
    "export_tiles",
    "feature",
    "is_current",
    "is_slide_folder",
    "map_stems",
    "merge_pieces",
    "peak_points",
    "rasterise",
    "regions",
    "to_source",
    "write_polygons",
]
