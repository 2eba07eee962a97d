"""The interface every step-5 engine implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline.classify import num_outputs, resolve_deploy


@dataclass
class Options:
    """Which pixels an engine computes and how (see ``python -m pipeline infer --help``)."""
    stride: int = 1                  #: compute every S-th row and column
    all_pixels: bool = False         #: also the first row and column the original never computes
    batch: int = 2048                #: windows per net forward (exact engine)
    max_rows: int | None = None      #: compute only the first N computed rows (benchmarks)
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
    #: work scales with the mask) or "bbox" (the mask's bounding box plus a margin is computed).
    mask_work: ClassVar[str] = "windows"

    def __init__(self, model: Path, mean: Path, deploy: Path | None = None, dropout: bool = False,
                 gpu: bool = False, net_dir: Path | None = None):
        self.model, self.mean_path = Path(model), Path(mean)
        self.n_out = num_outputs(self.model)
        self.deploy = resolve_deploy(self.model, deploy, net_dir, dropout)
        self.net_dir = Path(net_dir) if net_dir is not None else self.deploy.parent
        self.dropout = dropout
        self.gpu = gpu

    @abstractmethod
    def run(self, img: np.ndarray, opts: Options) -> np.ndarray:
        """Probabilities of an H x W x 3 float32 RGB [0, 1] image (already at the model's
        magnification): H x W x classes float32, 0 at pixels not computed (outside ``opts.mask``
        when one is given)."""
