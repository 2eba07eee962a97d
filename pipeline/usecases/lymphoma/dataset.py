"""Use case 7 data: the CLL/ FL/ MCL/*.tif layout, its checks (each bad input in one line before
any work), and the generated three-class cohort of the demo and the tests.

The published lymphoma.tar.gz (IICBU 2008) extracts to CLL/ FL/ MCL/, 374 RGB TIFFs of 1388 x 1040
(113/139/122) and a stray ``.DS_Store``; hidden files are ignored.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.synth import EOSIN, HEMATOXYLIN
from pipeline.usecases.lymphoma import foldlists
from pipeline.usecases.lymphoma.tiles import CLASSES

log = logging.getLogger(__name__)

#: The published images' size (width, height).
PUBLISHED_SIZE = (1388, 1040)


def images_by_name(root: Path) -> dict[str, Path]:
    """``CLASS/<stem>.tif`` -> path of every image of ``root`` (classes in label order, names sorted)."""
    out: dict[str, Path] = {}
    for cls in CLASSES:
        for p in sorted((Path(root) / cls).glob("*.tif")):
            if not p.name.startswith("."):
                out[f"{cls}/{p.name}"] = p
    return out


def check_data(root: Path, size: tuple[int, int] | None = None) -> dict[str, Path]:
    """The images of ``root`` after the checks that stop a run before any work, each a ValueError of
    one line naming the file: an unknown class folder, an empty class, an unreadable or non-RGB
    image, an image of another size than most (or than ``size``, width x height), two images of one
    name in different classes (their patches would collide)."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue  # the published archive's stray .DS_Store
        if entry.is_dir() and entry.name not in CLASSES:
            raise ValueError(f"{entry}: unknown class folder (expected {', '.join(CLASSES)})")
    for cls in CLASSES:
        folder = root / cls
        if not folder.is_dir() or not any(p for p in folder.glob("*.tif") if not p.name.startswith(".")):
            raise ValueError(f"{folder}: class {cls} has no .tif images (expected CLL/ FL/ MCL/*.tif)")
    images = images_by_name(root)
    sizes: dict[str, tuple[int, int]] = {}
    stems: dict[str, str] = {}
    for name, path in images.items():
        try:
            with Image.open(path) as im:
                mode, sizes[name] = im.mode, im.size
        except Exception as exc:  # noqa: BLE001  any decoder error is one line
            raise ValueError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None
        if mode != "RGB":
            raise ValueError(f"{path}: image mode {mode}, expected RGB (3 channels, 8 bits)")
        if path.stem in stems:
            raise ValueError(f"{path}: same name as {stems[path.stem]}; their patches would collide")
        stems[path.stem] = name
    want = tuple(size) if size else Counter(sizes.values()).most_common(1)[0][0]
    for name, got in sizes.items():
        if got != want:
            raise ValueError(
                f"{images[name]}: image of {got[0]}x{got[1]}, the others are {want[0]}x{want[1]} (width x height)"
            )
    return images


# --------------------------------------------------------------------------- generated cohort


def texture(rng: np.random.RandomState, cls: int, h: int, w: int) -> np.ndarray:
    """An H x W x 3 float image of class ``cls`` (not tissue): CLL many small dark dots, FL a few large
    soft blobs, MCL medium dots in short rows; the same pink-purple palette, so texture tells them apart."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:h, 0:w]
    dark = np.zeros((h, w))
    if cls == 0:  # CLL: dense small round nuclei
        for _ in range(h * w // 30):
            cy, cx = rng.randint(0, h), rng.randint(0, w)
            dark[(yy - cy) ** 2 + (xx - cx) ** 2 <= 2.2**2] = 1
    elif cls == 1:  # FL: large soft follicle-like blobs
        dark = gaussian_filter(rng.rand(h, w), sigma=6)
        dark = (dark - dark.min()) / (np.ptp(dark) or 1)
    else:  # MCL: medium nuclei in horizontal runs
        for _ in range(h * w // 160):
            cy, cx = rng.randint(0, h), rng.randint(0, w)
            for dx in (-8, 0, 8):
                dark[(yy - cy) ** 2 + (xx - cx - dx) ** 2 <= 3.2**2] = 1
    img = EOSIN[None, None] * (1 - dark[..., None]) + HEMATOXYLIN[None, None] * dark[..., None]
    return img + rng.normal(0, 5, img.shape)


def write_images(
    root: Path, seed: int = 0, slides_per_class: int = 5, images_per_slide: int = 2, size: tuple[int, int] = (132, 100)
) -> list[str]:
    """Generated images ``CLASS/sj-9<c>-<slide>_<n>.tif`` (``size`` width x height, :func:`texture`);
    returns their names. Deterministic for a seed."""
    from PIL import Image

    root = Path(root)
    rng = np.random.RandomState(seed)
    names = []
    for ci, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for s in range(slides_per_class):
            for n in range(1, images_per_slide + 1):
                name = f"{cls}/sj-9{ci}-{1000 + s}_{n:03d}.tif"
                arr = np.clip(np.round(texture(rng, ci, size[1], size[0])), 0, 255).astype(np.uint8)
                with atomic.atomic_path(root / name) as tmp:
                    Image.fromarray(arr).save(tmp, format="TIFF")
                names.append(name)
    return names


def make_cohort(
    root: Path, seed: int = 0, slides_per_class: int = 5, images_per_slide: int = 2, size: tuple[int, int] = (132, 100)
) -> list[str]:
    """The demo cohort: :func:`write_images` plus published-style fold lists
    ``{train,test}_w32_parent_<k>.txt`` beside the class folders (drawn per class over images, so a
    slide's images spread over folds as in the published lists) and a stray ``.DS_Store``."""
    root = Path(root)
    names = write_images(root, seed, slides_per_class, images_per_slide, size)
    assignment = foldlists.fresh_assignment(names, seed)
    foldlists.write_parent_lists(root, assignment, names)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    log.info("generated lymphoma cohort: %d images of %dx%d in %s (not real tissue)", len(names), *size, root)
    return names
