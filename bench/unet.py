"""Benchmark: the U-Net's training and output throughput beside Caffe's fcn output of use case 2.

On one generated epithelium-like image (use case 2's generator, drawn at a quarter and enlarged to
--size x --size, default 1000: the tutorial's image size) it times, in one run:

- U-Net training: tiles per second of the whole train phase (pytable read, edge ring,
  augmentation, forward, weighted loss, backward, Adam) at the tutorial's settings (wf 2, batch 3,
  256 crops of 500 tiles), untrained weights (the speed does not depend on them);
- U-Net output: make_output_unet_cmd.py's tiling (256 tiles, stride 128, batch 10) of the image,
  input megapixels per second;
- Caffe use case 2, ``fcn`` step-5 mode (the fast one) with the released fold-1 weights, at use
  case 2's magnification (the image resized to 0.5, as `usecase2` does), input megapixels per second.

Each for torch's CPU threads 1 and the machine's cores; ratios against Caffe fcn. Prints a table.

    python bench/unet.py [--size 1000] [--batches 6] [--released ../shared/released/uc2-epi]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT, inference, released  # noqa: E402
from pipeline.report.mdtable import MISSING, pipe_table  # noqa: E402
from pipeline.usecases import epi  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000, help="image side (the tutorial's images are 1000x1000)")
    ap.add_argument("--batches", type=int, default=6, help="training batches timed (after one warm-up batch)")
    ap.add_argument(
        "--released",
        type=Path,
        default=REPO_ROOT / "data" / "released" / "uc2-epi",
        help="released uc2-epi weights (`make bench-unet` passes ../shared/released/uc2-epi when present)",
    )
    a = ap.parse_args()
    model, mean = released.epi_fold(a.released)
    if not model.is_file():
        print(f"released weights not found in {a.released} (python -m pipeline fetch-released --usecase epi)")
        return 1
    import torch
    from torch.utils.data import DataLoader

    from pipeline.usecases.unet import augment, database, output
    from pipeline.usecases.unet.cohort import enlarged_cohort
    from pipeline.usecases.unet.loss import class_weights, weighted_loss
    from pipeline.usecases.unet.model import DEFAULT_ARCH, build
    from pipeline.usecases.unet.train import TileDataset

    tmp = Path(tempfile.mkdtemp(prefix="bench_unet_"))
    imgs = enlarged_cohort(tmp / "data", 1, a.size, seed=0, factor=4)
    pairs = [(imgs[0], epi.mask_path(imgs[0]))]
    db = tmp / "epistroma_train.pytable"
    database.write_pytable(db, pairs, database.DBParams(), tmp / "data", show_progress=False)
    rgb = database.read_image(imgs[0])
    mp = rgb.shape[0] * rgb.shape[1] / 1e6
    cores = os.cpu_count() or 1
    rows = []

    # Caffe fcn, use case 2's magnification
    eng = inference.make_engine("fcn", model, mean, net_dir=tmp / "nets")
    img = inference.load_resized(imgs[0], epi.Params().resize)
    eng.run(img[:40, :40], inference.Options())
    t = time.perf_counter()
    eng.run(img, inference.Options())
    caffe_s = time.perf_counter() - t
    caffe_mps = mp / caffe_s
    rows.append(("Caffe uc2 fcn output (0.5x, released fold 1)", "-", f"{caffe_mps:.3f} input MP/s", 1.0))

    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        net = build(DEFAULT_ARCH)
        optim = torch.optim.Adam(net.parameters())
        ds = TileDataset(db, augment.train_transforms(256, seed=0))
        w = torch.from_numpy(class_weights(ds.numpixels))
        loader = iter(DataLoader(ds, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0)))
        net.train()

        def step() -> None:
            x, y, ring = next(loader)
            loss = weighted_loss(net(x), y.long(), ring.float(), w, 1.1)
            optim.zero_grad()
            loss.backward()
            optim.step()

        step()  # warm-up
        n = min(a.batches, len(ds) // 3 - 1)
        t = time.perf_counter()
        for _ in range(n):
            step()
        train_tps = 3 * n / (time.perf_counter() - t)
        ds.close()
        net.eval()
        output.predict(net, rgb[:256, :256], 256, 10)  # warm-up
        t = time.perf_counter()
        output.predict(net, rgb, 256, 10)
        unet_mps = mp / (time.perf_counter() - t)
        rows.append(
            ("U-Net wf 2 training (batch 3, 256 crops, augmentation)", threads, f"{train_tps:.2f} tiles/s", None)
        )
        rows.append(
            (
                "U-Net wf 2 output (256 tiles, stride 128, batch 10)",
                threads,
                f"{unet_mps:.3f} input MP/s",
                unet_mps / caffe_mps,
            )
        )
    print(
        f"\nU-Net vs Caffe fcn, {platform.machine()} {cores} cores, torch {torch.__version__}, one generated "
        f"{rgb.shape[0]}x{rgb.shape[1]} image ({mp:.2f} MP); Caffe {caffe_s:.2f} s\n"
    )
    cells = [[what, th, val, MISSING if ratio is None else f"{ratio:.2f}x"] for what, th, val, ratio in rows]
    print("\n".join(pipe_table(["what", "torch threads", "throughput", "output speed vs Caffe fcn"], cells)))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
