"""Which slide level, and which resampling, gives the magnification a model was trained at (pure).

The tutorials fix the magnification the 32x32 network sees ("we trained the classifier at 10x, so
we need to test it at 10x", use case 2; "80x" for lymphocytes, use case 4): step 5 resized each
image by the use case's factor. A whole slide says its scale in its properties: the objective
power (``openslide.objective-power``, e.g. Aperio's AppMag) and/or microns per pixel
(``openslide.mpp-x``). Objective power and mpp are linked here by the usual convention
``mpp = 10 / objective`` (40x = 0.25 um/px, 20x = 0.5 um/px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: um per pixel times objective power: the convention linking the two (40x = 0.25 um/px).
MPP_TIMES_OBJECTIVE = 10.0
#: Relative tolerance within which a level's downsample counts as the wanted one (no resampling).
TOLERANCE = 1e-3
#: Objective powers of a slide's level 0 taken as plausible (scanners: 1.25x .. 100x); outside,
#: the slide's property (or --mpp) is wrong and would plan a thumbnail or a canvas of terabytes.
SLIDE_OBJECTIVE_RANGE = (0.5, 150.0)
#: Magnifications of a model taken as plausible (the use cases: 2.5x .. "80x").
MODEL_OBJECTIVE_RANGE = (0.1, 200.0)
#: At most this enlargement of the slide's pixels (lymphocytes' "80x" on a 10x scan: 8).
MAX_ENLARGEMENT = 16.0


class MissingMagnification(ValueError):
    """The slide says neither its objective power nor its microns per pixel, and none was given."""


@dataclass(frozen=True)
class Scale:
    """How model-magnification pixels come from the slide.

    ``downsample``: level-0 pixels per model pixel (2 for a 20x slide and a 10x model; 0.25 for
    20x and 80x). ``level``: the level read; ``level_downsample`` its downsample; ``factor``: model
    pixels per pixel of that level (1 when the level is exactly right, < 1 when it is shrunk, > 1
    when enlarged). ``shape``: the slide's (rows, columns) at the model's magnification.
    """

    slide_objective: float
    source: str  # where slide_objective came from: "--mpp", "objective-power", "mpp"
    slide_mpp: float | None  # level-0 um per pixel when known (given or a property)
    model_objective: float
    downsample: float
    level: int
    level_downsample: float
    factor: float
    shape: tuple[int, int]

    @property
    def model_mpp(self) -> float:
        """um per pixel of the model-magnification image (from the slide's mpp when known)."""
        if self.slide_mpp is not None:
            return self.slide_mpp * self.downsample
        return MPP_TIMES_OBJECTIVE / self.model_objective


def slide_objective(properties: dict[str, str], mpp: float | None = None) -> tuple[float, str, float | None]:
    """(objective power of level 0, where it came from, level-0 mpp or None).

    Order: ``mpp`` given by the user (``--mpp``) wins; then the slide's objective power (the notion
    the tutorials used: "scanned at 20x"); then its mpp (``openslide.mpp-x``). Raises
    :class:`MissingMagnification` when none is there.
    """

    def number(key: str) -> float | None:
        try:
            v = float(properties.get(key, ""))
        except ValueError:
            return None
        return v if math.isfinite(v) and v > 0 else None

    def plausible(power: float, what: str) -> float:
        lo, hi = SLIDE_OBJECTIVE_RANGE
        if not lo <= power <= hi:
            raise ValueError(
                f"{what} gives an objective power {power:g}x, which is not plausible ({lo:g}x..{hi:g}x); "
                f"give the slide's level-0 resolution with --mpp (um per pixel, e.g. 0.25 for 40x)"
            )
        return power

    prop_mpp = number("openslide.mpp-x")
    if mpp is not None:
        if not mpp > 0:
            raise ValueError(f"--mpp must be positive, got {mpp}")
        return plausible(MPP_TIMES_OBJECTIVE / mpp, f"--mpp {mpp:g}"), "--mpp", mpp
    power = number("openslide.objective-power")
    if power is not None:
        return plausible(power, f"objective power {power:g} (openslide.objective-power)"), "objective-power", prop_mpp
    if prop_mpp is not None:
        return plausible(MPP_TIMES_OBJECTIVE / prop_mpp, f"mpp {prop_mpp:g} (openslide.mpp-x)"), "mpp", prop_mpp
    raise MissingMagnification(
        "the slide has neither an objective power (openslide.objective-power) nor microns "
        "per pixel (openslide.mpp-x); give its level-0 resolution with --mpp (um per pixel, "
        "e.g. 0.25 for 40x, 0.5 for 20x)"
    )


def choose_level(downsamples: list[float] | tuple[float, ...], wanted: float) -> int:
    """The coarsest level whose downsample is at most ``wanted`` (within :data:`TOLERANCE`): the
    smallest image that still has every pixel the model needs; level 0 when all are coarser."""
    best = 0
    for i, d in enumerate(downsamples):
        if d <= wanted * (1 + TOLERANCE) and d >= downsamples[best]:
            best = i
    return best


def plan_scale(
    level_shapes: list[tuple[int, int]],
    downsamples: list[float],
    objective: tuple[float, str, float | None],
    model_objective: float,
) -> Scale:
    """The level and resampling factor giving ``model_objective`` on a slide of ``objective``
    (from :func:`slide_objective`). ``level_shapes``: (rows, columns) of each level."""
    if not model_objective > 0:
        raise ValueError(f"the model's magnification must be positive, got {model_objective}")
    lo, hi = MODEL_OBJECTIVE_RANGE
    if not lo <= model_objective <= hi:
        raise ValueError(f"the model's magnification {model_objective:g}x is not plausible ({lo:g}x..{hi:g}x)")
    power, source, mpp = objective
    if model_objective / power > MAX_ENLARGEMENT:
        raise ValueError(
            f"a model at {model_objective:g}x on a slide at {power:g}x would enlarge the slide "
            f"{model_objective / power:g}-fold (at most {MAX_ENLARGEMENT:g}); check the slide's magnification "
            f"(--mpp) and the model's"
        )
    wanted = power / model_objective
    level = choose_level(downsamples, wanted)
    ld = float(downsamples[level])
    factor = ld / wanted
    if abs(factor - 1) <= TOLERANCE:
        factor = 1.0
    rows, cols = level_shapes[level]
    shape = (int(rows * factor), int(cols * factor))  # int(n * f), as caffe.io.resize_image's callers did
    if min(shape) < 1:
        raise ValueError(f"at {model_objective:g}x the slide is {shape[1]}x{shape[0]} pixels: nothing to compute")
    return Scale(
        slide_objective=power,
        source=source,
        slide_mpp=mpp,
        model_objective=model_objective,
        downsample=wanted,
        level=level,
        level_downsample=ld,
        factor=factor,
        shape=shape,
    )
