"""Render docs/qupath-export.png: an exported GeoJSON drawn over its image, as QuPath would show it.

Run from the repository root (needs the released epithelium model, ../shared/released/uc2-epi):

    python docs/qupath_screenshot.py /tmp/qupath-shot

It generates an epithelium-like image (not real tissue), runs step 5 with the released fold-1 model
at the use case's 0.5 resize, exports the maps (``python -m pipeline export``) and draws the
polygons of the GeoJSON, read back with the ``geojson`` package, over the full-size image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT  # noqa: E402
from pipeline.usecases import epi  # noqa: E402


def polygon_path(rings: list) -> MplPath:
    """A matplotlib path of a GeoJSON polygon's rings (shell and holes, even-odd filled)."""
    verts, codes = [], []
    for ring in rings:
        verts += ring
        codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring) - 2) + [MplPath.CLOSEPOLY]
    return MplPath(np.array(verts), codes)


def main() -> int:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/qupath-shot")
    released = REPO_ROOT.parent / "shared" / "released" / "uc2-epi"
    (image,) = [p for p in epi.make_cohort(work / "data", n_patients=1, size=320, seed=7) if "_mask" not in p.name][:1]
    run = [sys.executable, "-m", "pipeline"]
    subprocess.run(
        run
        + ["infer", str(image), "--usecase", "epi", "--out", str(work / "out"), "--save-npy"]
        + ["--model", str(released / "1_caffenet_train_w32_iter_600000.caffemodel")]
        + ["--mean", str(released / "DB_train_w32_1.binaryproto"), "--force"],
        check=True,
        cwd=REPO_ROOT,
    )
    subprocess.run(run + ["export", str(work / "out"), "--mpp", "0.5"], check=True, cwd=REPO_ROOT)
    import geojson

    fc = geojson.loads((work / "out" / f"{image.stem}.geojson").read_text())
    rgb = np.asarray(Image.open(image).convert("RGB"))
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.imshow(rgb, extent=(0, rgb.shape[1], rgb.shape[0], 0))  # pixel (r, c) spans [c, c+1) x [r, r+1)
    for f in fc["features"]:
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        colour = np.array(f["properties"]["classification"]["color"]) / 255
        for rings in polys:
            ax.add_patch(PathPatch(polygon_path(rings), facecolor=(*colour, 0.25), edgecolor=colour, lw=1.2))
    ax.set_title(f"{len(fc['features'])} Epithelium annotations (GeoJSON) over the image", fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    out = REPO_ROOT / "docs" / "qupath-export.png"
    fig.savefig(out)
    Image.open(out).convert("RGB").quantize(64).save(out, optimize=True)  # a small file in the repository
    print(out, json.dumps({"features": len(fc["features"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
