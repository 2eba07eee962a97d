"""The interface every step-5 engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from pipeline.caffe_env import require_gpu
from pipeline.classify import num_outputs, resolve_deploy
from pipeline.inference.geometry import computed_coords

#: Called by an engine as it goes with the number of windows (pixels) it has just computed.
Progress = Callable[[int], None]


@dataclass
class Options:
    """Which pixels an engine computes and how (see ``python -m pipeline infer --help``)."""

    stride: int = 1  #: compute every S-th row and column
    all_pixels: bool = False  #: also the first row and column the original never computes
    batch: int = 2048  #: net inputs per forward (exact engine: half windows, half their mirrors)
    max_rows: int | None = None  #: compute only the first N computed rows (benchmarks)
    #: H x W bool: compute exactly these pixels (stride, all_pixels and max_rows then do not apply),
    #: as RADHicaL's cascade does (create_output_image_vector.py); None: the rules above
    mask: np.ndarray | None = None


class Engine(ABC):
    """A trained 32x32 patch classifier applied to every computed pixel of an image.

    Set-up shared by the engines: the deploy net (given, or rendered from the template into
    ``net_dir``), the weights, the mean, CPU or GPU.
    """

    #: Name of the engine (``--mode``).
    name: ClassVar[str]
    #: Input pixels on each side that a pixel's value depends on: an image cut with this margin
    #: around a region gives the region's pixels exactly as the whole image does (whole-slide tiles).
    context: ClassVar[int]
    #: How an engine honours ``Options.mask``: "windows" (only the masked windows are computed: the
    #: work scales with the mask) or "tiles" (the fixed-size output tiles holding masked pixels, each
    #: with the net's reach around it, are computed).
    mask_work: ClassVar[str] = "windows"

    def __init__(
        self,
        model: Path,
        mean: Path,
        deploy: Path | None = None,
        dropout: bool = False,
        gpu: bool = False,
        net_dir: Path | None = None,
    ):
        if gpu:  # before any net is rendered or made: without a usable GPU Caffe ends the process
            require_gpu()
        self.model, self.mean_path = Path(model), Path(mean)
        self.n_out = num_outputs(self.model)
        self.deploy = resolve_deploy(self.model, deploy, net_dir, dropout)
        self.net_dir = Path(net_dir) if net_dir is not None else self.deploy.parent
        self.dropout = dropout
        self.gpu = gpu

    @staticmethod
    def computed(h: int, w: int, opts: Options) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) an engine computes for an h x w image under ``opts`` (``max_rows`` applied)."""
        return (
            computed_coords(h, opts.stride, opts.all_pixels)[: opts.max_rows],
            computed_coords(w, opts.stride, opts.all_pixels),
        )

    @classmethod
    def window_total(cls, h: int, w: int, opts: Options) -> int:
        """Number of windows (pixels) computed for an h x w image: progress and throughput count these
        (with ``opts.mask``, its pixels; the fcn engine computes more around them, but reports these)."""
        if opts.mask is not None:
            return int(np.count_nonzero(opts.mask))
        rows, cols = cls.computed(h, w, opts)
        return len(rows) * len(cols)

    @abstractmethod
    def run(self, img: np.ndarray, opts: Options, progress: Progress | None = None) -> np.ndarray:
        """Probabilities of an H x W x 3 float32 RGB [0, 1] image (already at the model's
        magnification): H x W x classes float32, 0 at pixels not computed (outside ``opts.mask``
        when one is given). ``progress`` is called with the number of windows computed after each
        row or chunk (they add up to :meth:`window_total`)."""
