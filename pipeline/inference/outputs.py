"""Step 5 outputs: the original's ``_prob.png`` and ``_class.png`` (and a float ``.npy``), and
how later steps read them back.

The original saved both PNGs with ``scipy.misc.imsave`` (common/step5_create_output_images_kfold.py
lines 108-109), which rescales each image's min..max to 0..255 (scipy.misc.bytescale): that is the
default here. ``round(255 p)`` (probabilities kept on an absolute scale) is the named alternative
(``infer --png-scale round``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.imageio import write_png
from pipeline.inference.geometry import computed_coords, fill_strided

log = logging.getLogger(__name__)

#: How ``_prob.png``/``_class.png`` map values to 0..255: the original's per-image min-max
#: rescaling (default), or round(255 p).
PNG_SCALES = ("minmax", "round")
#: What scores read back: the PNGs (default, as the original's later steps did) or the float .npy.
SCORE_SOURCES = ("png", "npy")


def bytescale(a: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale as scipy.misc.imsave applied it to float images (scipy's last pilutil):
    ``((a - min) * 255 / (max - min)).clip(0, 255) + 0.5`` truncated to uint8; a constant image
    (max == min) uses a range of 1, so it becomes all 0. (Older scipy releases added 0.4999
    instead of clipping and adding 0.5: different only within 1e-4 of a half level.)"""
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / (hi - lo) if hi > lo else 255.0
    return (np.clip((a - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


def encode_outputs(prob: np.ndarray, minmax_scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(_prob RGB uint8, _class uint8) of an H x W x C probability map.

    _prob: R = P(class 0), G = P(class 1), B = 0 (P(class 2) with three classes); _class: argmax.
    ``minmax_scale`` (default, the original): scipy.misc.imsave's per-image rescaling, over all three
    channels of _prob at once (B = 0 and the never-computed first row/column hold the minimum 0, so
    _prob = round(255 p / max p)) and over the class map (0/255 for two classes). Otherwise
    _prob = round(255 p) and _class = 0/255 (two classes) or the class index (more classes).
    """
    h, w, c = prob.shape
    rgb = np.zeros((h, w, 3), dtype=np.float64)
    rgb[:, :, : min(c, 3)] = prob[:, :, :3]
    cls = prob.argmax(axis=2)
    if minmax_scale:
        if cls.size and cls.min() == cls.max() and cls.max() > 0:
            log.warning(
                "class map is constant (class %d everywhere): scipy.misc.imsave's min-max scaling, "
                "reproduced here, writes it as all 0",
                int(cls.max()),
            )
        return bytescale(rgb), bytescale(cls.astype(np.float64))
    prob_png = np.floor(rgb * 255 + 0.5).astype(np.uint8)
    cls_png = (cls * 255).astype(np.uint8) if c == 2 else cls.astype(np.uint8)
    return prob_png, cls_png


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Names of the outputs (and the worker claim) for one input image."""
    return {
        "prob": out_dir / f"{stem}_prob.png",
        "class": out_dir / f"{stem}_class.png",
        "npy": out_dir / f"{stem}_prob.npy",
        "lock": out_dir / f".{stem}.lock",
    }


def is_done(paths: dict[str, Path]) -> bool:
    """Both PNGs present: the image was finished (they are written last, atomically)."""
    return paths["prob"].is_file() and paths["class"].is_file()


def write_outputs(paths: dict[str, Path], prob: np.ndarray, minmax_scale: bool = True, save_npy: bool = False) -> None:
    """Write the .npy (float32, optional), then _class.png, then _prob.png, each atomically."""
    prob_png, cls_png = encode_outputs(prob, minmax_scale)
    if save_npy:
        with atomic.atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, prob.astype(np.float32))
    write_png(paths["class"], cls_png)
    write_png(paths["prob"], prob_png)


def read_maps(out_dir: Path, stem: str, source: str = "png") -> tuple[np.ndarray, np.ndarray]:
    """(P(class 1), class-1 map) of one image's outputs, both H x W, as a later step reads them.

    ``png`` (default): ``double(io(:,:,2))/255`` of ``_prob.png`` (4-lymphocyte/
    step5_identify_peak_in_probs.m line 4; with the default min-max PNGs these are P / max P,
    quantised to 1/255) and ``_class.png`` non-zero. ``npy``: the float map ``_prob.npy`` (float64
    P(class 1) and argmax == 1); written only with ``save_npy``. Raises FileNotFoundError naming
    the missing file.
    """
    from PIL import Image

    paths = output_paths(Path(out_dir), stem)
    if source == "npy":
        if not paths["npy"].is_file():
            raise FileNotFoundError(f"{paths['npy']}: no float map (written by infer --save-npy)")
        prob = np.load(paths["npy"])
        return prob[..., 1].astype(np.float64), prob.argmax(axis=2) == 1
    if source != "png":
        raise ValueError(f"score source {source!r} is not one of {SCORE_SOURCES}")
    for key in ("prob", "class"):
        if not paths[key].is_file():
            raise FileNotFoundError(f"{paths[key]}: step-5 output missing")
    with Image.open(paths["prob"]) as im:
        green = np.asarray(im.convert("RGB"))[:, :, 1].astype(np.float64) / 255.0
    with Image.open(paths["class"]) as im:
        cls = np.asarray(im.convert("L")) > 0
    return green, cls


# --------------------------------------------------------------------------- the record of how maps were made

RECORD = ".outputs.json"  #: per output folder: how its maps were made (:class:`OutputRecord`)

#: The record's fields that change the numbers of a map, with the ``infer`` option that sets each.
NUMERIC_FIELDS = {
    "engine": "--mode",
    "stride": "--stride",
    "all_pixels": "--all-pixels",
    "resize": "--resize",
    "png_scale": "--png-scale",
    "model_sha256": "--model",
    "mean_sha256": "--mean",
    "dropout": "--dropout",
}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class OutputRecord:
    """How the maps of one step-5 output folder were made, kept in ``OUT/.outputs.json``.

    Every field that changes a map's numbers (:data:`NUMERIC_FIELDS`), plus where the model and mean
    were read from, the number of classes and the use case when known (``infer --usecase``, or the
    use case whose outputs stage wrote the folder). A field is None in a record written before it
    was recorded (such a record held only ``png_scale``).
    """

    png_scale: str
    engine: str | None = None
    stride: int | None = None
    all_pixels: bool | None = None
    resize: float | None = None
    model_sha256: str | None = None
    mean_sha256: str | None = None
    dropout: bool | None = None
    classes: int | None = None
    model: str | None = None
    mean: str | None = None
    usecase: str | None = None
    #: The folder it was read from (for messages; not written)
    folder: str | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def of_run(
        cls,
        engine: str,
        model: Path,
        mean: Path,
        stride: int,
        all_pixels: bool,
        resize: float,
        minmax_scale: bool,
        dropout: bool = False,
        classes: int | None = None,
        usecase: str | None = None,
    ) -> "OutputRecord":
        """The record of a run with these options (the model's and mean's sha256 read now)."""
        return cls(
            png_scale="minmax" if minmax_scale else "round",
            engine=engine,
            stride=int(stride),
            all_pixels=bool(all_pixels),
            resize=float(resize),
            model_sha256=sha256_file(model),
            mean_sha256=sha256_file(mean),
            dropout=bool(dropout),
            classes=classes,
            model=str(Path(model).resolve()),
            mean=str(Path(mean).resolve()),
            usecase=usecase,
        )

    def to_json(self) -> str:
        """The record as written to ``.outputs.json`` (one JSON object, keys sorted)."""
        d = dataclasses.asdict(self)
        d.pop("folder")
        return json.dumps(d, indent=1, sort_keys=True) + "\n"

    def differences(self, other: "OutputRecord") -> list[str]:
        """The ``infer`` options (of :data:`NUMERIC_FIELDS`) whose values differ from ``other``'s."""
        return [opt for f, opt in NUMERIC_FIELDS.items() if getattr(self, f) != getattr(other, f)]

    def describe(self, option: str) -> str:
        """The value of an ``infer`` option in this record, for messages ("--stride 2")."""
        field = next(f for f, o in NUMERIC_FIELDS.items() if o == option)
        value = getattr(self, field)
        if field.endswith("_sha256"):
            return f"{option} {getattr(self, field[: -len('_sha256')])} (sha256 {str(value)[:12]})"
        return f"{option} {value}"

    def _require(self, what: str) -> None:
        if self.stride is None or self.all_pixels is None:
            raise ValueError(
                f"{self.folder or 'step-5 output folder'}: these step-5 maps were recorded before their stride was "
                f"({RECORD} holds only the PNG scale), "
                f"so {what} cannot tell which pixels were computed; recompute them (--force, make: FORCE=1)"
            )

    def computed(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of an h x w map that step 5 computed (the rest hold 0): every ``stride``-th
        from 1 (from 0 with ``all_pixels``, which also filled the rest: then every pixel)."""
        self._require("scoring")
        if self.all_pixels:
            return np.arange(h), np.arange(w)
        return computed_coords(h, self.stride), computed_coords(w, self.stride)

    def filled(self, prob: np.ndarray) -> np.ndarray:
        """An H x W (x C) map with every pixel given the value of the computed pixel at or before it
        on both axes (what ``--all-pixels`` writes), the first row and column left as written (never
        computed, 0, as at stride 1). The map itself when nothing is missing (stride 1, all pixels)."""
        self._require("scoring")
        if self.stride == 1 or self.all_pixels:
            return prob
        h, w = prob.shape[:2]
        out = fill_strided(prob, computed_coords(h, self.stride), computed_coords(w, self.stride))
        out[0], out[:, 0] = prob[0], prob[:, 0]
        return out


def read_record(out_dir: Path) -> OutputRecord:
    """The record of a step-5 output folder. FileNotFoundError (one line) when it has none; ValueError
    when it does not parse."""
    path = Path(out_dir) / RECORD
    if not path.is_file():
        raise FileNotFoundError(
            f"{out_dir}: no {RECORD}, the record of how its maps were made (engine, stride, resize, "
            "model, ...); these are not step-5 outputs of this project, or were written before the record existed"
        )
    try:
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(OutputRecord)} - {"folder"}
        return OutputRecord(**{k: v for k, v in data.items() if k in known}, folder=str(out_dir))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: damaged record of how the maps were made ({exc})") from exc


def write_record(out_dir: Path, record: OutputRecord) -> None:
    """Write ``OUT/.outputs.json`` atomically."""
    atomic.write_text(Path(out_dir) / RECORD, record.to_json())
