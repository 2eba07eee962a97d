"""``python -m pipeline infer``: step 5, per-pixel probability maps of whole images."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline import inference
from pipeline.caffe_env import ALLOW_PYTHON_LAYERS_ENV
from pipeline.inference import ENGINES, PNG_SCALES
from pipeline.inference import images as image_inputs
from pipeline.usecases import REGISTRY, get


def add(sub) -> None:
    import argparse

    inf = sub.add_parser("infer", help="step 5: per-pixel probability maps of whole images")
    inf.add_argument("images", nargs="*", help="image files, globs or folders (.tif, .tiff, .png; *_mask excluded)")
    inf.add_argument("--model", type=Path, required=True)
    inf.add_argument("--mean", type=Path, required=True, help="binaryproto mean of the model's training DB")
    inf.add_argument("--deploy", type=Path, help="deploy prototxt (default: rendered from the template into --out)")
    inf.add_argument("--dropout", action="store_true", help="the dropout deploy net")
    inf.add_argument(
        "--allow-python-layers",
        action="store_true",
        help="load a --deploy net with Python layers (they import and run the module they name)",
    )
    inf.add_argument("--out", type=Path, required=True)
    inf.add_argument(
        "--usecase",
        choices=list(REGISTRY),
        help="preset resize factor: the use case's magnification ("
        + ", ".join(f"{n} {uc.magnification:g}" for n, uc in REGISTRY.items())
        + "); --resize wins",
    )
    inf.add_argument("--resize", type=float, help="resize factor applied to each image (default 1 or the preset)")
    inf.add_argument("--stride", type=int, default=1, help="compute every S-th row and column (default 1)")
    inf.add_argument("--mode", default="exact", choices=sorted(ENGINES))
    inf.add_argument(
        "--batch",
        type=int,
        default=2048,
        help="images per net forward (exact mode): each window and its mirror, so batch/2 windows a forward",
    )
    inf.add_argument("--gpu", action="store_true")
    inf.add_argument("--save-npy", action="store_true", help="also <stem>_prob.npy (float32, H x W x classes)")
    inf.add_argument(
        "--all-pixels",
        action="store_true",
        help="give every pixel a value (first row/column too; stride blocks filled)",
    )
    inf.add_argument(
        "--png-scale",
        default="minmax",
        choices=list(PNG_SCALES),
        help="minmax (default, the original's scipy.misc.imsave): each PNG's min..max rescaled to "
        "0..255; round: round(255 p), probabilities on an absolute scale",
    )
    inf.add_argument(
        "--minmax-scale", action="store_const", const="minmax", dest="png_scale", help=argparse.SUPPRESS
    )  # the default since issue 11; kept for old scripts
    inf.add_argument(
        "--no-wait",
        action="store_true",
        help="return after this worker's pass instead of waiting for images other workers hold "
        "(and taking over a dead worker's image)",
    )
    inf.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images with more pixels than this (read from each header before anything is "
        "loaded; also after --resize): slides go to infer-wsi (default 100000000; 0: no limit)",
    )
    inf.add_argument(
        "--force",
        action="store_true",
        help="--out holds maps made another way (other --model, --mean, --mode, --stride, --resize, "
        "--all-pixels, --png-scale, --dropout): remove them and recompute instead of refusing",
    )
    inf.add_argument("--list", type=Path, help="file listing input images, one a line")
    inf.add_argument(
        "--parents",
        type=Path,
        help="only images whose names start with '<id>_' of an ID listed here (test_w32_parent_<k>.txt)",
    )
    inf.set_defaults(func=run)


def run(a) -> int:
    if a.allow_python_layers:
        os.environ[ALLOW_PYTHON_LAYERS_ENV] = "1"
    factor = a.resize if a.resize is not None else get(a.usecase).magnification if a.usecase else 1.0
    opts = inference.Options(stride=a.stride, batch=a.batch, all_pixels=a.all_pixels)
    images = inference.expand_inputs(a.images, a.list, a.parents)
    if not images:
        raise ValueError("no input images (give files, globs or folders of .tif/.tiff/.png)")
    limit = image_inputs.MAX_PIXELS if a.max_pixels is None else a.max_pixels
    for img in images:  # from the headers, before the model or any image is loaded
        image_inputs.check_size(img, limit, factor)
    inference.runner.check_stems(images, a.out)  # before the net is loaded
    engine = inference.make_engine(
        a.mode, a.model, a.mean, deploy=a.deploy, dropout=a.dropout, gpu=a.gpu, net_dir=a.out / "nets"
    )
    res = inference.infer_images(
        images,
        engine,
        a.out,
        opts,
        resize=factor,
        save_npy=a.save_npy,
        minmax_scale=a.png_scale == "minmax",
        wait=not a.no_wait,
        usecase=a.usecase,
        force=a.force,
    )
    rate = res["pixels"] / res["seconds"] if res["seconds"] else 0
    print(
        f"\nsummary: {len(res['computed'])} image(s) computed, {len(res['skipped'])} skipped (done or claimed "
        f"by another worker), {res['pixels']} pixels computed in {res['seconds']:.1f} s ({rate:.0f} pixels/s, mode "
        f"{a.mode}, resize {factor}, stride {a.stride}, PNGs {a.png_scale}); outputs in {a.out}"
    )
    return 0
