"""Generated epithelium-like images for the U-Net's demos and benchmark (not real tissue)."""

from __future__ import annotations

from pathlib import Path

from pipeline.usecases.epi import make_cohort


def enlarged_cohort(folder: Path, n_patients: int, size: int, seed: int, factor: int = 2) -> list[Path]:
    """Use case 2's generated cohort (:func:`pipeline.usecases.epi.make_cohort`) drawn at
    ``size // factor`` and enlarged to ``size`` (image bilinear, mask nearest): drawing it at full
    size costs time quadratic in the side per nucleus (minutes at 500 px). Returns the images."""
    from PIL import Image

    folder = Path(folder)
    small = folder.with_name(folder.name + ".small")
    make_cohort(small, n_patients=n_patients, size=size // factor, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in sorted(small.iterdir()):
        with Image.open(f) as im:
            big = im.resize((size, size), Image.NEAREST if f.name.endswith("_mask.png") else Image.BILINEAR)
            tmp = folder / f".{f.name}.partial"
            big.save(tmp, format="PNG" if f.suffix == ".png" else "TIFF")
        tmp.rename(folder / f.name)
        f.unlink()
        if not f.name.endswith("_mask.png"):
            out.append(folder / f.name)
    small.rmdir()
    return out
