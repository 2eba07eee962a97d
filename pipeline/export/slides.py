"""GeoJSON of a whole slide (``infer-wsi --out``): regions of the class map, streamed tile by tile.

Each finished tile (``OUT/<slide>/tiles/*.npy``) is read in turn; a region inside its tile is
written at once; a region touching the tile's border is held (only those) and, after the last tile,
the held pieces are merged by a union (tiles share exact pixel edges), parts touching at a
corner grouped (8-connectivity, as inside a tile), so a region crossing tile borders is one
feature. Coordinates: the slide's level-0 pixels (edge frame): model pixel edges times the plan's
downsample (level-0 pixels per model pixel), the inverse of the resampling step 5 read the slide with.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.export import features, geometry
from pipeline.export.images import Options, Spec, _finish, area_measurements
from pipeline.wsi.plan import Plan
from pipeline.wsi.store import TileStore

log = logging.getLogger(__name__)


def is_slide_folder(folder: Path) -> bool:
    """``infer-wsi``'s folder of one slide (it holds ``plan.json``)."""
    return (Path(folder) / "plan.json").is_file()


def merge_pieces(pieces: list[tuple[BaseGeometry, int, float]]) -> list[tuple[BaseGeometry, int, float]]:
    """Regions of border-touching pieces (geometry, pixels, value sum) of adjacent tiles: the pieces'
    union split into its parts, parts that touch (at a corner) grouped, pixel counts and value sums
    added up per region; ordered by position (top, then left)."""
    if not pieces:
        return []
    geoms = np.array([p[0] for p in pieces], dtype=object)
    union = shapely.union_all(geoms)
    parts = list(shapely.get_parts(union))
    tree = shapely.STRtree(parts)
    parent = list(range(len(parts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    left, right = tree.query(parts, predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    part_of_piece = tree.query(shapely.point_on_surface(geoms), predicate="within")
    pixels = np.zeros(len(parts))
    sums = np.zeros(len(parts))
    for piece, part in zip(part_of_piece[0].tolist(), part_of_piece[1].tolist()):
        pixels[find(part)] += pieces[piece][1]
        sums[find(part)] += pieces[piece][2]
    groups: dict[int, list[int]] = {}
    for i in range(len(parts)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for root, members in groups.items():
        g = parts[members[0]] if len(members) == 1 else shapely.MultiPolygon([parts[m] for m in members])
        out.append((g, int(pixels[root]), float(sums[root])))
    return sorted(out, key=lambda r: (r[0].bounds[1], r[0].bounds[0]))


def export_slide(folder: Path, spec: Spec, opts: Options = Options()) -> Path:
    """``OUT/<slide>/<slide>.geojson`` of a finished slide (``summary.json`` present): polygons of its
    class map (argmax, or ``P >= threshold``), level-0 coordinates, merged across tiles. Areas in um^2
    from the slide's mpp when known (``opts.mpp`` wins)."""
    folder = Path(folder)
    if not is_slide_folder(folder):
        raise FileNotFoundError(f"{folder}: no plan.json: not a slide folder of infer-wsi")
    if not (folder / "summary.json").is_file():
        raise FileNotFoundError(f"{folder}: the slide is not finished (no summary.json); rerun infer-wsi to finish it")
    plan = Plan.from_json(json.loads((folder / "plan.json").read_text()), folder)
    factor = plan.scale.downsample
    mpp = opts.mpp or plan.scale.slide_mpp
    opts = Options(opts.threshold, opts.min_area, opts.simplify, mpp)
    store = TileStore(plan.tiles_dir)
    held: list[tuple[BaseGeometry, int, float]] = []
    path = folder / f"{plan.stem}.geojson"
    extra = {
        "pipeline": {
            "slide": str(plan.slide),
            "frame": "level-0 pixels of the slide, x right, y down, pixel centres at +0.5",
            "level0_pixels_per_model_pixel": factor,
            "settings": plan.to_json()["settings"],
            "options": {"threshold": opts.threshold, "min_area": opts.min_area, "simplify": opts.simplify},
        }
    }

    def add(w, g, pixels, value_sum) -> None:
        g = _finish(g, opts)
        if g is not None:
            w.add(
                features.feature(
                    g, spec.name, spec.color, spec.object_type, area_measurements(g, pixels, value_sum, opts)
                )
            )

    with features.collection(path, extra) as w:
        for t in plan.tiles:
            prob = np.asarray(store.load(t))
            p1 = prob[..., 1].astype(np.float64)
            mask = prob.argmax(axis=2) == 1 if opts.threshold is None else p1 >= opts.threshold
            for reg in geometry.regions(mask, p1):
                g = geometry.to_source(reg.geometry, factor, (t.x0, t.y0))
                if reg.on_border:
                    held.append((g, reg.pixels, reg.value_sum))
                else:
                    add(w, g, reg.pixels, reg.value_sum)
        inside = w.count
        for g, pixels, value_sum in merge_pieces(held):
            add(w, g, pixels, value_sum)
    log.info("%s: %d region(s) (%d inside one tile, %d pieces merged)", path, w.count, inside, len(held))
    return path
