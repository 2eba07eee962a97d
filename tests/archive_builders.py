"""Small generated files packed as the tutorials published them (tests of the data stage)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def tgz(path: Path, files: dict[str, Path], top: str = "") -> Path:
    """A gzipped tar of ``files`` ({member name: source}), folders first as tar does."""
    with tarfile.open(path, "w:gz") as tf:
        folders = sorted({str(Path(n).parent) for n in files} - {"."})
        for d in folders:
            info = tarfile.TarInfo(top + d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        for name, src in sorted(files.items()):
            tf.add(src, arcname=top + name, recursive=False)
    return path


def rgb(path: Path, size=(24, 20), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3)).astype(np.uint8)).save(path)
    return path


def gray_mask(path: Path, size=(24, 20), values=(0, 255), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0]), values[0], np.uint8)
    arr[: size[1] // 2, : size[0] // 2] = values[-1]
    im = Image.fromarray(arr)
    (im.convert("1") if mode == "1" else im).save(path)
    return path


def epi_files(tmp: Path, n: int = 3) -> dict[str, Path]:
    """epi.tgz as published: <patient>_<n>.tif at the top, masks/<patient>_<n>_mask.png."""
    files = {}
    for i in range(n):
        stem = f"{8900 + i}_00001"
        files[f"{stem}.tif"] = rgb(tmp / "src" / f"{stem}.tif", seed=i)
        files[f"masks/{stem}_mask.png"] = gray_mask(tmp / "src" / "masks" / f"{stem}_mask.png")
    return files


def lymph_mask(path: Path, centres) -> Path:
    """<N>m.tif: RGBA, the alpha channel 255 at the centres (as the original read it)."""
    arr = np.zeros((20, 24, 4), np.uint8)
    for r, c in centres:
        arr[r, c, 3] = 255
    Image.fromarray(arr, "RGBA").save(path)
    return path


def idc_tree(root: Path, patients=("10253", "8863"), per_class=(3, 2)) -> None:
    for pid in patients:
        for label in (0, 1):
            for j in range(per_class[label]):
                rgb(root / pid / str(label) / f"{pid}_idx5_x{1 + 50 * j}_y1_class{label}.png", (50, 50), j)
