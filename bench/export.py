"""Benchmark: GeoJSON export (issue 29), polygons per second on a whole-slide-sized class map.

Generates a class map of nucleus-like blobs and a few large regions (SIZE x SIZE model pixels),
then times (1) the polygons of the whole map in one piece (:func:`pipeline.export.regions`), and
(2) ``export_slide`` on the same map stored as an ``infer-wsi`` slide folder of TILE-pixel tiles:
tiles read one by one, regions inside a tile written at once, those crossing tile borders merged,
the GeoJSON streamed to disk. Prints a table; the tiled export's rate is also given as a ratio of
the one-piece rate measured in the same command.

    python bench/export.py [--size 4096] [--tile 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import export  # noqa: E402
from pipeline.wsi.magnification import Scale  # noqa: E402
from pipeline.wsi.plan import Plan, Settings  # noqa: E402
from pipeline.wsi.store import TileStore  # noqa: E402
from pipeline.wsi.tiling import grid  # noqa: E402


def class_map(size: int, seed: int = 0) -> np.ndarray:
    """P(class 1), size x size float32: about one nucleus-like disk (radius 4..8) per 900 pixels, and
    large smooth regions (a tenth of the area) that cross many tiles."""
    from scipy import ndimage

    rng = np.random.RandomState(seed)
    p = np.zeros((size, size), np.float32)
    n = size * size // 900
    ys, xs, rs = rng.randint(0, size, n), rng.randint(0, size, n), rng.randint(4, 9, n)
    for y, x, r in zip(ys, xs, rs):
        y0, y1, x0, x1 = max(0, y - r), min(size, y + r + 1), max(0, x - r), min(size, x + r + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        p[y0:y1, x0:x1][(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = 0.8
    coarse = ndimage.zoom(rng.rand(size // 256 + 1, size // 256 + 1), 256, order=1)[:size, :size]
    p[coarse > 0.8] = 0.9
    return p


def fake_slide(folder: Path, p1: np.ndarray, tile: int) -> None:
    """An infer-wsi slide folder holding ``p1`` as finished tiles (downsample 2, 0.25 um/px)."""
    h, w = p1.shape
    scale = Scale(20.0, "objective-power", 0.25, 10.0, 2.0, 0, 1.0, 0.5, (h, w))
    tiles = grid((h, w), tile)
    plan = Plan(Path("bench.svs"), folder, Settings(10.0, tile=tile), {}, scale, 16, 2, len(tiles), tiles, 1.0, 1.0)
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(plan.to_json()))
    store = TileStore(plan.tiles_dir)
    for t in tiles:
        sub = p1[t.y0 : t.y1, t.x0 : t.x1]
        store.save(t, np.stack([1 - sub, sub], axis=2))
    (folder / "summary.json").write_text("{}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=4096, help="class map side, model pixels")
    ap.add_argument("--tile", type=int, default=1024, help="tile side, model pixels")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        p1 = class_map(a.size)
        mask = p1 > 0.5
        t = time.perf_counter()
        whole = export.regions(mask, p1)
        t_whole = time.perf_counter() - t
        fake_slide(tmp / "bench", p1, a.tile)
        t = time.perf_counter()
        path = export.export_slide(tmp / "bench", export.Spec("segmentation", "Nucleus", (0, 0, 200)))
        t_slide = time.perf_counter() - t
        n_slide = len(json.loads(path.read_text())["features"])
        rows = [
            ("polygons, whole map in one piece", len(whole), t_whole),
            (f"export_slide, {a.tile}-pixel tiles, GeoJSON written", n_slide, t_slide),
        ]
        base = rows[0][1] / rows[0][2]
        print(f"\n{'step':<46} {'polygons':>9} {'seconds':>8} {'polygons/s':>11} {'vs one piece':>13}")
        for name, n, dt in rows:
            print(f"{name:<46} {n:>9} {dt:>8.2f} {n / dt:>11.0f} {n / dt / base:>12.2f}x")
        print(
            f"\nmachine: {os.cpu_count()} cores; class map {a.size}x{a.size} model pixels "
            f"({mask.mean():.1%} class 1), {len(grid(mask.shape, a.tile))} tiles; "
            f"GeoJSON {path.stat().st_size / 2**20:.1f} MB"
        )
        if n_slide != len(whole):
            print(f"MISMATCH: the tiled export has {n_slide} regions, the whole map {len(whole)}")
            return 1
        print(f"RESULT polygons_per_s={n_slide / t_slide:.0f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
