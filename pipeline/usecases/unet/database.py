"""The PyTables databases of the U-Net tutorial (segmentation_epistroma_unet/make_hdf5.py, "v2 7/11/2018").

``<name>_{train,val}.pytable``, arrays at the root, exactly as the original wrote them:

=========== ======================================= ======================== =========================
array       type                                    shape                    chunkshape, filters
=========== ======================================= ======================== =========================
filename    EArray StringAtom(itemsize=255)         (N,)                     PyTables default, none
img         EArray UInt8Atom                        (N, patch, patch, 3)     (1, patch, patch, 3), zlib 6
mask        EArray UInt8Atom, values 0/1            (N, patch, patch)        (1, patch, patch), zlib 6
numpixels   CArray Float64                          (2, 2)                   PyTables default
=========== ======================================= ======================== =========================

``filename`` holds each tile's mask path (relative to the data folder here), once per tile;
``numpixels`` row 0 = class ids (0, 1), row 1 = pixels per class counted on the full-size mask
before resizing and padding. Images are read with cv2 (BGR converted to RGB), masks with cv2 (channel
0 of the 3-channel read). Written without HDF5 timestamps, so one seed gives byte-identical files.

Masks (quirk Q10): the original stored ``cv2.imread(mask) / 255`` into a uint8 array, which truncates:
any value below 255 became 0 (stroma), and pixels neither 0 nor 255 were counted in no class of
``numpixels``. Here a mask with other values than 0 and 255 is an error naming the file, unless
``mask_values="truncate"`` reproduces the original.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.usecases.unet.tiling import Untileable, db_remainder, db_tiles

log = logging.getLogger(__name__)

#: The original's dataname: files epistroma_train.pytable, epistroma_val.pytable.
DATANAME = "epistroma"
CLASSES = (0, 1)
FILENAME_BYTES = 255
ARRAYS = ("filename", "img", "mask", "numpixels")
MASK_VALUES = ("error", "truncate")


class BadInput(ValueError):
    """An image, mask or pytable the U-Net cannot use; the message names the file."""


@dataclass(frozen=True)
class DBParams:
    """make_hdf5.py's parameters; defaults are the original's."""

    patch_size: int = 500
    stride_size: int = 250
    mirror_pad_size: int = 250
    resize: float = 1.0
    mask_values: str = "error"  # Q10: "truncate" = the original's silent truncation

    def __post_init__(self) -> None:
        if self.mask_values not in MASK_VALUES:
            raise ValueError(f"mask_values {self.mask_values!r} is not one of {MASK_VALUES}")

    def options(self) -> dict:
        """The parameters as the dbs stage's recipe names them (the command line's options)."""
        return {
            "db_patch": self.patch_size,
            "db_stride": self.stride_size,
            "mirror_pad": self.mirror_pad_size,
            "resize": self.resize,
            "mask_values": self.mask_values,
        }


def read_image(path: Path) -> np.ndarray:
    """``cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)``: H x W x 3 uint8 RGB (grey repeated,
    alpha dropped, as cv2's default colour read). Raises BadInput naming the file."""
    import cv2

    arr = cv2.imread(str(path))
    if arr is None:
        raise BadInput(f"{path}: cannot read the image (missing, or not an image cv2 can read)")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path, mask_values: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """(mask H x W uint8 in {0, 1}, pixel counts of classes 0 and 1) as make_hdf5.py read it.

    The original: ``cv2.imread(mask) / 255`` (channel 0 of the BGR read), counts of ``== 0`` and
    ``== 1`` before resizing, stored as uint8 (truncation). ``mask_values="error"`` raises
    BadInput naming the file and its values when any pixel is neither 0 nor 255 (Q10).
    """
    import cv2

    arr = cv2.imread(str(path))
    if arr is None:
        raise BadInput(f"{path}: cannot read the mask (missing, or not an image cv2 can read)")
    m = arr[:, :, 0]
    counts = np.array([np.count_nonzero(m == 0), np.count_nonzero(m == 255)], dtype=np.float64)
    other = m.size - int(counts.sum())
    if other and mask_values == "error":
        values = np.unique(m)
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise BadInput(
            f"{path}: mask is not binary: {other} pixels are neither 0 nor 255 (values {shown}). "
            f"The original stored mask/255 as uint8, so every value below 255 became stroma; "
            f"pass --mask-values truncate to do the same, or fix the mask"
        )
    return (m == 255).astype(np.uint8), counts


def _resize(arr: np.ndarray, factor: float, interpolation: int) -> np.ndarray:
    """cv2.resize(fx=fy=factor) with the original's interpolation constants (Q2)."""
    if factor == 1:
        return arr
    import cv2

    return cv2.resize(arr, (0, 0), fx=factor, fy=factor, interpolation=interpolation)


# Q2: the original passed PIL.Image.BICUBIC (3) and PIL.Image.NEAREST (0) to cv2.resize, where
# 3 is cv2.INTER_AREA and 0 cv2.INTER_NEAREST. Harmless at resize 1.
INTERP_IMAGE = 3
INTERP_MASK = 0


def image_tiles(image: Path, mask: Path, p: DBParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(img tiles N x P x P x 3, mask tiles N x P x P, counts of classes 0/1) of one pair.

    Raises BadInput naming the file for unreadable files, sizes that differ, non-binary masks
    (unless truncated) and sizes the tiling cannot take.
    """
    io = read_image(image)
    m, counts = read_mask(mask, p.mask_values)
    if io.shape[:2] != m.shape:
        raise BadInput(f"{mask}: mask is {m.shape[0]}x{m.shape[1]}, image {image.name} is {io.shape[0]}x{io.shape[1]}")
    io = _resize(io, p.resize, INTERP_IMAGE)
    m = _resize(m, p.resize, INTERP_MASK)
    try:
        img_t = db_tiles(io, p.patch_size, p.stride_size, p.mirror_pad_size)
        mask_t = db_tiles(m, p.patch_size, p.stride_size, p.mirror_pad_size)
    except Untileable as exc:
        raise BadInput(f"{image}: {exc}") from None
    lost = [db_remainder(s, p.patch_size, p.stride_size, p.mirror_pad_size) for s in io.shape[:2]]
    if any(lost):
        log.warning(
            "%s: %s rows and %s columns of the padded image are in no tile (Q9: (size + 2*%d - %d) "
            "is not a multiple of %d)",
            image.name,
            lost[0],
            lost[1],
            p.mirror_pad_size,
            p.patch_size,
            p.stride_size,
        )
    return img_t, mask_t, counts


def write_pytable(
    path: Path, pairs: list[tuple[Path, Path]], p: DBParams, root: Path, show_progress: bool = True
) -> dict:
    """Write one pytable (atomically) from (image, mask) pairs in the given order.

    ``root`` is the data folder: ``filename`` stores each mask's path relative to it. Returns
    {"tiles": N, "images": n, "numpixels": [[0, 1], [n0, n1]]}.
    """
    import tables
    from tqdm import tqdm

    path = Path(path)
    totals = np.zeros((2, len(CLASSES)))
    totals[0, :] = CLASSES
    filters = tables.Filters(complevel=6, complib="zlib")
    ntiles = 0
    with atomic.atomic_path(path) as tmp:
        with tables.open_file(str(tmp), mode="w") as h5:
            fn = h5.create_earray(
                h5.root, "filename", tables.StringAtom(itemsize=FILENAME_BYTES), (0,), track_times=False
            )
            arrays = {
                "img": h5.create_earray(
                    h5.root,
                    "img",
                    tables.UInt8Atom(),
                    shape=(0, p.patch_size, p.patch_size, 3),
                    chunkshape=(1, p.patch_size, p.patch_size, 3),
                    filters=filters,
                    track_times=False,
                ),
                "mask": h5.create_earray(
                    h5.root,
                    "mask",
                    tables.UInt8Atom(),
                    shape=(0, p.patch_size, p.patch_size),
                    chunkshape=(1, p.patch_size, p.patch_size),
                    filters=filters,
                    track_times=False,
                ),
            }
            for image, mask in tqdm(pairs, desc=f"pytable {path.name}", unit="image", disable=not show_progress):
                img_t, mask_t, counts = image_tiles(image, mask, p)
                totals[1, :] += counts
                arrays["img"].append(img_t)
                arrays["mask"].append(mask_t)
                name = str(Path(mask).relative_to(root) if Path(mask).is_relative_to(root) else Path(mask).name)
                encoded = name.encode("utf-8")
                if len(encoded) > FILENAME_BYTES:
                    raise BadInput(
                        f"{mask}: its path {name!r} is longer than {FILENAME_BYTES} bytes "
                        f"(the filename array's StringAtom)"
                    )
                fn.append([encoded] * len(img_t))
                ntiles += len(img_t)
            npx = h5.create_carray(
                h5.root, "numpixels", tables.Atom.from_dtype(totals.dtype), totals.shape, track_times=False
            )
            npx[:] = totals
    return {"tiles": ntiles, "images": len(pairs), "numpixels": totals.tolist()}


def check_pytable(path: Path, patch_min: int | None = None) -> dict:
    """Open a pytable and check the original's layout; returns {"tiles", "patch", "numpixels"}.

    Raises BadInput naming the file and what is wrong: not HDF5, an array missing, another dtype
    or shape, img and mask of different lengths, tiles smaller than ``patch_min`` (the training crop).
    """
    import tables

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: pytable does not exist")
    try:
        h5 = tables.open_file(str(path), mode="r")
    except Exception as exc:  # tables raises HDF5ExtError / OSError variants
        raise BadInput(f"{path}: not a PyTables/HDF5 file ({exc.__class__.__name__})") from None
    with h5:
        missing = [a for a in ARRAYS if a not in h5.root]
        if missing:
            raise BadInput(
                f"{path}: no array(s) {', '.join(missing)} at the root; make_hdf5.py's layout has "
                f"{', '.join(ARRAYS)} (v1 databases named the file array 'fname')"
            )
        img, mask, npx = h5.root.img, h5.root.mask, h5.root.numpixels
        problems = []
        if img.dtype != np.uint8 or img.ndim != 4 or img.shape[3] != 3 or img.shape[1] != img.shape[2]:
            problems.append(f"img is {img.dtype} {img.shape}, expected uint8 (N, P, P, 3)")
        if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[1:] != img.shape[1:3]:
            problems.append(
                f"mask is {mask.dtype} {mask.shape}, expected uint8 {(img.shape[0],) + tuple(img.shape[1:3])}"
            )
        if mask.shape[0] != img.shape[0]:
            problems.append(f"img has {img.shape[0]} tiles, mask {mask.shape[0]}")
        if npx.shape != (2, 2):
            problems.append(f"numpixels is {npx.shape}, expected (2, 2)")
        if problems:
            raise BadInput(f"{path}: not the layout of make_hdf5.py: " + "; ".join(problems))
        if img.shape[0] == 0:
            raise BadInput(f"{path}: holds no tiles")
        if patch_min and img.shape[1] < patch_min:
            raise BadInput(
                f"{path}: tiles are {img.shape[1]}x{img.shape[2]}, smaller than the training crop "
                f"{patch_min}x{patch_min}"
            )
        return {"tiles": int(img.shape[0]), "patch": int(img.shape[1]), "numpixels": npx[:].tolist()}


def pytable_paths(work: Path) -> dict[str, Path]:
    """``WORK/epistroma_{train,val}.pytable`` by phase."""
    return {ph: Path(work) / f"{DATANAME}_{ph}.pytable" for ph in ("train", "val")}


def build(
    paths: dict[str, Path],
    split: dict[str, list[tuple[Path, Path]]],
    p: DBParams,
    root: Path,
    show_progress: bool = True,
) -> dict[str, dict]:
    """Write the pytable ``paths[phase]`` of each phase of ``split`` (its (image, mask) pairs, in
    order); returns each one's :func:`write_pytable` report. Whether they must be made is the dbs
    stage's recipe (:func:`pipeline.usecases.unet.runner.graph`)."""
    reports = {}
    for ph, pairs in split.items():
        if not pairs:
            raise BadInput(f"the {ph} side of the split has no images")
        reports[ph] = write_pytable(paths[ph], pairs, p, root, show_progress)
        log.info("%s: %d tiles of %d images", paths[ph].name, reports[ph]["tiles"], reports[ph]["images"])
    return reports
