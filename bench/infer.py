"""Benchmark: step-5 inference modes on one generated H&E-like image, released use-case-2 fold-1 weights.

Times `reference` (the original loop through caffe.Classifier, 10 inputs per window), `exact` (each
window and its mirror once, large batches) and `fcn` (fully convolutional, layer-wise
shift-and-stitch) and prints pixels/s, speed-up over reference (same command, same image), max
|dP| against reference, and GFLOP/s counted at 24.9 MFLOP per window forward (reference: 10
forwards per pixel; exact and fcn: 2 -- for fcn an effective figure, since it shares work between
windows). The reference is slow (tens of ms per pixel), so it computes only the first --ref-rows rows
of the image (with the whole image's padding); the others the whole image; max |dP| is taken on those rows.

    python bench/infer.py [--size 96] [--ref-rows 6] [--gpu]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT, inference, released, synth  # noqa: E402
from pipeline.inference import WINDOW_FLOP, Options  # noqa: E402


def he_image(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    n = -(-size // 24)
    full = np.concatenate(
        [np.concatenate([synth.he_patch(rng, (i + j) % 2, (24, 24)) for j in range(n)], 1) for i in range(n)], 0
    )
    return (full[:size, :size] / 255).astype(np.float32)


def real_mosaic(size: int, root: Path) -> np.ndarray:
    """Real H&E tissue: the 50x50 IDC patches of one patient folder (both classes) tiled row by row."""
    from pipeline.imageio import load_image

    files = sorted((root / "1").glob("*.png"))[:8] + sorted((root / "0").glob("*.png"))
    n = -(-size // 50)
    tiles = [load_image(f) for f in files if load_image(f).shape[:2] == (50, 50)][: n * n]
    full = np.concatenate([np.concatenate(tiles[i * n : (i + 1) * n], 1) for i in range(n)], 0)
    return full[:size, :size]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--ref-rows", type=int, default=6)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument(
        "--real-idc",
        type=Path,
        metavar="PATIENT_DIR",
        help="use a mosaic of the real 50x50 IDC patches of this patient folder (e.g. "
        "../shared/realdata/idc/10254) instead of a generated image",
    )
    ap.add_argument(
        "--released",
        type=Path,
        default=REPO_ROOT / "data" / "released" / "uc2-epi",
        help="folder of the released uc2-epi weights (`make bench-infer` passes ../shared/released/uc2-epi "
        "when it exists)",
    )
    a = ap.parse_args()
    model, mean = released.epi_fold(a.released)
    if not model.is_file():
        print(f"released weights not found in {a.released} (python -m pipeline fetch-released --usecase epi)")
        return 1
    img = real_mosaic(a.size, a.real_idc) if a.real_idc else he_image(a.size)
    nets = Path(tempfile.mkdtemp(prefix="bench_infer_nets_"))
    rows = []
    results = {}
    for mode, max_rows, per_pixel_forwards in (("reference", a.ref_rows, 10), ("exact", None, 2), ("fcn", None, 2)):
        eng = inference.make_engine(mode, model, mean, gpu=a.gpu, net_dir=nets)
        eng.run(img[:2, :2], Options())  # warm-up (net set-up, allocations)
        t = time.perf_counter()
        out = eng.run(img, Options(max_rows=max_rows))
        dt = time.perf_counter() - t
        n = inference.window_count(*img.shape[:2])
        if max_rows:
            n = n * max_rows // (img.shape[0] - 1)
        results[mode] = out
        rows.append((mode, n, dt, n / dt, per_pixel_forwards * n * WINDOW_FLOP / dt / 1e9))
    ref_rate = rows[0][3]
    k = a.ref_rows + 1
    diff = {m: float(np.abs(results[m][1:k, 1:] - results["reference"][1:k, 1:]).max()) for m in results}
    same = {
        m: float((results[m][1:k, 1:].argmax(2) == results["reference"][1:k, 1:].argmax(2)).mean()) for m in results
    }
    dev = np.abs(results["fcn"][1:, 1:, 1] - results["exact"][1:, 1:, 1])
    device = "GPU" if a.gpu else f"CPU ({platform.processor() or platform.machine()})"
    kind = f"mosaic of real IDC patches ({a.real_idc})" if a.real_idc else "generated H&E-like"
    print(f"\nimage {a.size}x{a.size} {kind}, uc2-epi fold-1 weights, {device}")
    print(
        f"{'mode':<10} {'pixels':>7} {'seconds':>8} {'pixels/s':>9} {'speed-up':>9} {'max|dP| vs ref':>15} "
        f"{'same class':>10} {'GFLOP/s':>8}"
    )
    for mode, n, dt, rate, gf in rows:
        print(
            f"{mode:<10} {n:>7} {dt:>8.2f} {rate:>9.1f} {rate / ref_rate:>8.1f}x {diff[mode]:>15.2e} "
            f"{same[mode]:>10.4f} {gf:>8.1f}"
        )
    print(
        f"fcn vs exact on the whole image: mean |dP| {dev.mean():.4f}, max {dev.max():.4f}, "
        f"same class {float((results['fcn'][1:, 1:].argmax(2) == results['exact'][1:, 1:].argmax(2)).mean()):.4f}"
    )
    print(
        f"RESULT exact_vs_reference={rows[1][3] / ref_rate:.2f} fcn_vs_reference={rows[2][3] / ref_rate:.2f} "
        f"exact_maxdiff={diff['exact']:.2e}"
    )
    shutil.rmtree(nets, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
