"""A slide's plan: its scale at the model's magnification, its tissue mask and the tiles to compute.

Written once per slide as ``OUT/<slide>/plan.json`` (atomically) with the options that change
numbers; every worker and job-array task reads the same plan, and a rerun with other options is
refused instead of mixing results (nothing already finished is touched), unless ``force``: then the
slide's folder is emptied and planned again (as ``--force`` recomputes a stale stage,
:mod:`pipeline.recipes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.claims import Claim
from pipeline.classify import num_outputs
from pipeline.imageio import write_png
from pipeline.inference import ENGINES
from pipeline.wsi import tiling, tissue
from pipeline.wsi.magnification import Scale, plan_scale, slide_objective
from pipeline.wsi.slide import Slide
from pipeline.wsi.tissue import GREY_THRESHOLD

log = logging.getLogger(__name__)

PLAN_VERSION = 1


@dataclass(frozen=True)
class Settings:
    """The options of ``infer-wsi`` that change its numbers (see ``python -m pipeline infer-wsi --help``)."""

    model_objective: float  #: magnification the model was trained at (use case: 10 for epi)
    mode: str = "fcn"  #: step-5 engine
    mpp: float | None = None  #: the slide's level-0 um per pixel, overriding its properties
    tile: int = 1024  #: tile side, model pixels
    tissue: str = "otsu"  #: tissue mask method (pipeline.wsi.tissue.METHODS)
    threshold: float = GREY_THRESHOLD  #: grey level of the "grey" method
    min_tissue: float = 0.0  #: a tile is computed when its tissue share is above this
    all_pixels: bool = False  #: also the slide's first row and column (the original never computed them)
    mask_pixels: int = 32  #: tissue-mask pixels along a tile's side


@dataclass
class Plan:
    """What a slide's workers share. ``tiles``: the tiles to compute (tissue), row-major."""

    slide: Path
    folder: Path
    settings: Settings
    identity: dict
    scale: Scale
    context: int
    n_classes: int
    grid_tiles: int
    tiles: list[tiling.Tile]
    mask_downsample: float  #: level-0 pixels per tissue-mask / thumbnail pixel
    tissue_share: float  #: share of mask pixels that are tissue

    @property
    def stem(self) -> str:
        return self.slide.stem

    @property
    def tiles_dir(self) -> Path:
        return self.folder / "tiles"

    @property
    def thumbnail(self) -> Path:
        return self.folder / "thumbnail.png"

    def to_json(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "slide": str(self.slide),
            "identity": self.identity,
            "settings": dataclasses.asdict(self.settings),
            "scale": dataclasses.asdict(self.scale),
            "context": self.context,
            "n_classes": self.n_classes,
            "grid_tiles": self.grid_tiles,
            "mask_downsample": self.mask_downsample,
            "tissue_share": self.tissue_share,
            "tiles": [[t.row, t.col] for t in self.tiles],
        }

    @classmethod
    def from_json(cls, d: dict, folder: Path) -> "Plan":
        settings = Settings(**d["settings"])
        sc = d["scale"]
        scale = Scale(**{**sc, "shape": tuple(sc["shape"])})
        by_rc = {(t.row, t.col): t for t in tiling.grid(scale.shape, settings.tile)}
        return cls(
            slide=Path(d["slide"]),
            folder=Path(folder),
            settings=settings,
            identity=d["identity"],
            scale=scale,
            context=d["context"],
            n_classes=d["n_classes"],
            grid_tiles=d["grid_tiles"],
            tiles=[by_rc[tuple(rc)] for rc in d["tiles"]],
            mask_downsample=d["mask_downsample"],
            tissue_share=d["tissue_share"],
        )


def sha256(path: Path | None) -> str | None:
    """sha256 of a file (model, mean, deploy net), or None."""
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def identity(slide: Slide, settings: Settings, model: Path, mean: Path, deploy: Path | None, dropout: bool) -> dict:
    """Everything a slide's numbers depend on: the slide's contents, the model files, the settings."""
    return {
        "slide_quickhash": slide.quickhash or sha256(slide.path),
        "model_sha256": sha256(model),
        "mean_sha256": sha256(mean),
        "deploy_sha256": sha256(deploy),
        "dropout": dropout,
        **dataclasses.asdict(settings),
    }


def make_plan(
    slide_path: Path,
    folder: Path,
    settings: Settings,
    model: Path,
    mean: Path,
    deploy: Path | None = None,
    dropout: bool = False,
    wait: float = 600.0,
    force: bool = False,
) -> Plan:
    """Plan ``slide_path`` into ``folder``: scale, tissue mask (``<stem>_tissue.png``, ``thumbnail.png``),
    tiles; reuse ``folder/plan.json`` when it was made with the same identity, refuse when not (with
    ``force``: remove the folder's plan, tiles and outputs and plan again).

    One worker plans (claim ``.plan.lock``); the others wait up to ``wait`` seconds for its plan.
    """
    folder = Path(folder)
    if settings.mode not in ENGINES:
        raise ValueError(f"unknown mode {settings.mode!r}; choose from {', '.join(ENGINES)}")
    if settings.tissue not in tissue.METHODS:
        raise ValueError(f"unknown tissue method {settings.tissue!r}; choose from {', '.join(tissue.METHODS)}")
    with Slide(slide_path) as slide:
        ident = identity(slide, settings, model, mean, deploy, dropout)
        plan_file = folder / "plan.json"
        claim = Claim(folder / ".plan.lock")
        deadline = time.monotonic() + wait
        while not plan_file.is_file() and not claim.acquire():  # another worker is planning: wait for it
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{folder}: another worker has been planning this slide for {wait:.0f} s; "
                    f"remove {claim.lock}.* if it died"
                )
            time.sleep(0.5)
        try:
            if plan_file.is_file():
                old = json.loads(plan_file.read_text())
                if not (force and _differs(old, ident)):
                    return _reuse(old, ident, folder, slide_path)
                log.warning(
                    "%s: made with other options or inputs (%s differ): --force, removing its plan, tiles and outputs",
                    folder,
                    ", ".join(_differs(old, ident)),
                )
                _empty(folder, keep=claim.path)
            return _new_plan(slide, folder, settings, ident, model)
        finally:
            claim.release()


def _differs(old: dict, ident: dict) -> list[str]:
    """What differs between a recorded plan and ``ident``: the identity keys, or ["plan version"]; [] when none."""
    if old.get("version") != PLAN_VERSION:
        return ["plan version"]
    was = old.get("identity", {})
    return sorted(k for k in set(ident) | set(was) if ident.get(k) != was.get(k))


def _empty(folder: Path, keep: Path | None) -> None:
    """Remove everything in ``folder`` but ``keep`` (the plan's claim, held by this worker)."""
    for p in folder.iterdir():
        if p == keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _reuse(old: dict, ident: dict, folder: Path, slide_path: Path) -> Plan:
    diff = _differs(old, ident)
    if not diff:
        plan = Plan.from_json(old, folder)
        plan.slide = Path(slide_path).resolve()  # the same contents (quickhash), wherever it is now
        return plan
    raise ValueError(
        f"{folder} holds results of {slide_path} made with other options or inputs "
        f"({', '.join(diff)} differ); rerun with --force to recompute it, or give another --out"
    )


def _new_plan(slide: Slide, folder: Path, settings: Settings, ident: dict, model: Path) -> Plan:
    try:
        objective = slide_objective(slide.properties, settings.mpp)
    except ValueError as exc:
        raise ValueError(f"{slide.path}: {exc}") from None
    scale = plan_scale(slide.level_shapes, slide.level_downsamples, objective, settings.model_objective)
    step = max(1, settings.tile // max(1, settings.mask_pixels))  # model pixels per mask pixel
    thumb, mask_ds = slide.read_downsampled(step * scale.downsample)
    mask = tissue.tissue_mask(thumb, settings.tissue, settings.threshold)
    per_model = scale.downsample / mask_ds  # mask pixels per model pixel
    grid = tiling.grid(scale.shape, settings.tile)
    tiles = [t for t in grid if tissue.tissue_fraction(mask, t.box, per_model) > settings.min_tissue]
    plan = Plan(
        slide=slide.path.resolve(),
        folder=folder,
        settings=settings,
        identity=ident,
        scale=scale,
        context=ENGINES[settings.mode].context,
        n_classes=num_outputs(model),
        grid_tiles=len(grid),
        tiles=tiles,
        mask_downsample=mask_ds,
        tissue_share=float(mask.mean()),
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_png(plan.thumbnail, thumb)
    write_png(folder / f"{plan.stem}_tissue.png", (mask * np.uint8(255)).astype(np.uint8))
    atomic.write_text(folder / "plan.json", json.dumps(plan.to_json(), indent=1) + "\n")
    log.info(
        "%s: level 0 at %gx (from %s); model at %gx: level %d (downsample %g) x %g, %dx%d pixels; "
        "%d of %d tiles with tissue (%s)",
        slide.path.name,
        scale.slide_objective,
        scale.source,
        scale.model_objective,
        scale.level,
        scale.level_downsample,
        scale.factor,
        scale.shape[1],
        scale.shape[0],
        len(tiles),
        len(grid),
        settings.tissue,
    )
    return plan
