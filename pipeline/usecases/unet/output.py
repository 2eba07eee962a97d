"""Whole-image output of the U-Net (make_output_unet_cmd.py, v2 7/11/2018).

Per image: skip it when its output exists unless ``force``; read RGB (cv2, BGR converted), resize by
``resize`` (cv2 bilinear); reflect-pad 64, zero-pad bottom/right to a multiple of 256, cut 256 tiles
at stride 128 (:mod:`pipeline.usecases.unet.tiling`), run them in batches of 10 as float /255, keep
each tile's central 128x128 and mosaic them, cropped to the image; write ``<stem>_class.png`` =
argmax x 255 (8 bit), as the original.

Beyond the original: ``<stem>_prob.png`` (R = P(class 0), G = P(class 1), B = 0, round(255 p): the
softmax of the logits, use case 2's encoding) and ``<stem>_prob.npy`` (float32 H x W x 2) so that
use case 2's pixel scoring applies; the original's placeholder (a 1x1 ``_class.png`` written before
working, so parallel runs skip the image) is a lock file here (a crash leaves no fake output), and
outputs are written under temporary names.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from pathlib import Path

import numpy as np

from pipeline import inference
from pipeline.atomic import atomic_path
from pipeline.claims import claimed
from pipeline.imageio import write_png
from pipeline.usecases.unet.checkpoint import model_from
from pipeline.usecases.unet.database import BadInput, read_image
from pipeline.usecases.unet.model import n_parameters
from pipeline.usecases.unet.tiling import Untileable, output_grid, output_tiles, stitch
from pipeline.usecases.unet.train import device_for

log = logging.getLogger(__name__)


def input_files(patterns: list[str], basepath: str = "") -> list[Path]:
    """make_output_unet_cmd.py's inputs: several names as given; one ``.tsv`` (first column,
    ``#`` lines skipped, ``basepath`` prepended); or one wildcard (``basepath`` prepended, sorted here)."""
    base = basepath + os.sep if basepath else ""
    if not patterns:
        raise ValueError("no images selected with input pattern")
    if len(patterns) > 1:
        files = [Path(f.strip()) for f in patterns]
    elif patterns[0].endswith("tsv"):
        lines = Path(patterns[0]).read_text().splitlines()
        files = [Path(base + ln.strip().split("\t")[0]) for ln in lines if ln and not ln.startswith("#")]
    else:
        files = [Path(f) for f in sorted(glob.glob(basepath + patterns[0]))]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"input image(s) do not exist: {', '.join(missing[:5])}")
    if not files:
        raise FileNotFoundError(f"no file matches {patterns[0]!r}")
    return files


def predict(model, img: np.ndarray, patch: int = 256, batch: int = 10, device: str = "cpu") -> np.ndarray:
    """Logits of an H x W x 3 uint8 image: H x W x n_classes float32, tiled as the original.

    Raises Untileable for a tile size the model cannot take or an image the padding cannot take.
    """
    import torch

    depth = len(model.down_path)
    if patch % 2 ** (depth - 1):
        raise Untileable(f"tile size {patch} is not a multiple of 2**(depth-1) = {2 ** (depth - 1)}")
    grid = output_grid(img.shape[0], img.shape[1], patch)
    tiles = output_tiles(img, grid)
    outs = []
    with torch.no_grad():
        for i in range(0, len(tiles), batch):
            x = torch.from_numpy(tiles[i : i + batch].transpose(0, 3, 1, 2) / 255).float().to(device)
            outs.append(model(x).cpu().numpy())
    logits = np.concatenate(outs).transpose(0, 2, 3, 1)
    return stitch(logits, grid)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float32)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def write(paths: dict[str, Path], logits: np.ndarray, save_npy: bool = True) -> None:
    """_prob.npy (optional), _prob.png, then _class.png (argmax of the logits x 255; the original's
    output, written last: it marks the image done), each atomically."""
    prob = softmax(logits)
    if save_npy:
        with atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, prob)
    prob_png, _ = inference.encode_outputs(prob, minmax_scale=False)  # round(255 p), not min-max
    write_png(paths["prob"], prob_png)
    n = logits.shape[-1]
    write_png(paths["class"], (logits.argmax(axis=2) * (256 / (n - 1) - 1)).astype(np.uint8))


def is_done(paths: dict[str, Path], save_npy: bool) -> bool:
    return paths["class"].is_file() and paths["prob"].is_file() and (not save_npy or paths["npy"].is_file())


def run(
    images: list[Path],
    model_path: Path,
    out_dir: Path,
    patch: int = 256,
    batch: int = 10,
    resize: float = 1.0,
    force: bool = False,
    gpu: bool = False,
    save_npy: bool = True,
    show_progress: bool = True,
) -> dict:
    """Outputs of ``images`` with the checkpoint ``model_path`` into ``out_dir``.

    Returns {"computed", "skipped", "seconds", "pixels" (input pixels of computed images), "parameters"}.
    Many workers may share ``out_dir`` (a lock file per image).
    """
    import cv2
    from tqdm import tqdm

    device = device_for(gpu)
    model, state = model_from(model_path, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, skipped, pixels = [], [], 0
    t0 = time.perf_counter()
    for img_path in tqdm(images, desc="unet output", unit="image", disable=not show_progress):
        paths = inference.output_paths(out_dir, Path(img_path).stem)
        with claimed(paths["lock"], done=not force and is_done(paths, save_npy)) as mine:
            if not mine:
                skipped.append(str(img_path))
                continue
            io = read_image(img_path)
            pixels += io.shape[0] * io.shape[1]
            if resize != 1:
                io = cv2.resize(io, (0, 0), fx=resize, fy=resize)
            try:
                logits = predict(model, io, patch, batch, device)
            except Untileable as exc:
                raise BadInput(f"{img_path}: {exc}") from None
            write(paths, logits, save_npy)
            done.append(str(img_path))
    return {
        "computed": done,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
        "pixels": pixels,
        "parameters": n_parameters(model),
        "epoch": state["epoch"],
    }
