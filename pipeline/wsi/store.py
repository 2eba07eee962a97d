"""Finished tiles on disk: one float32 ``.npy`` per tile, written atomically, claimed by one worker at a time.

``OUT/<slide>/tiles/r<row>_c<col>.npy`` holds the tile's probabilities (rows x columns x classes,
float32, model magnification); a file under that name is a finished tile (it is renamed into place
when complete), so an interrupted slide resumes from the tiles present. ``.r<row>_c<col>.lock`` is
the claim of the worker computing it (:class:`pipeline.claims.Claim`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.claims import Claim
from pipeline.wsi.tiling import Tile


class TileStore:
    """The tile results of one slide under ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, tile: Tile) -> Path:
        return self.folder / f"{tile.name}.npy"

    def claim(self, tile: Tile) -> Claim:
        return Claim(self.folder / f".{tile.name}.lock")

    def is_done(self, tile: Tile) -> bool:
        return self.path(tile).is_file()

    def done(self, tiles: list[Tile]) -> list[Tile]:
        """The finished ones of ``tiles`` (one directory listing)."""
        if not self.folder.is_dir():
            return []
        present = {p.name for p in self.folder.glob("r*_c*.npy")}
        return [t for t in tiles if f"{t.name}.npy" in present]

    def save(self, tile: Tile, prob: np.ndarray) -> None:
        """Write the tile's probabilities (h x w x classes float32) under a temporary name, then rename."""
        expected = (tile.y1 - tile.y0, tile.x1 - tile.x0)
        if prob.shape[:2] != expected:
            raise ValueError(f"tile {tile.name}: result is {prob.shape[:2]}, expected {expected}")
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(self.path(tile)) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(prob, dtype=np.float32))

    def load(self, tile: Tile) -> np.ndarray:
        """The tile's probabilities, memory-mapped read-only."""
        return np.load(self.path(tile), mmap_mode="r")
