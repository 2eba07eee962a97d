"""Tiles of a slide at the model's magnification, their context margins, and parts of the tile list (pure).

A tile is the unit of work (one claim, one result file). Its result is computed on the tile plus
``context`` pixels on every side (clipped at the slide's border), then cut back to the tile: every
output pixel then sees exactly the input it sees when the slide is computed in one piece. The
context is the engine's reach: 16 px for the 32x32 windows of ``reference``/``exact``, more for
``fcn`` (see :attr:`pipeline.inference.Engine.context`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """Tile ``(row, col)`` of the grid: model pixels [y0, y1) x [x0, x1)."""

    row: int
    col: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def name(self) -> str:
        """File-name stem of its result: ``r<row>_c<col>`` (zero-padded)."""
        return f"r{self.row:05d}_c{self.col:05d}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.y0, self.y1, self.x0, self.x1

    @property
    def pixels(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)


def grid(shape: tuple[int, int], size: int) -> list[Tile]:
    """Row-major tiles of ``size`` x ``size`` model pixels covering ``shape`` (rows, columns); the last
    row and column of tiles are cut at the slide's edge."""
    if size < 1:
        raise ValueError(f"tile size must be positive, got {size}")
    h, w = shape
    return [
        Tile(r, c, y, min(y + size, h), x, min(x + size, w))
        for r, y in enumerate(range(0, h, size))
        for c, x in enumerate(range(0, w, size))
    ]


def with_context(tile: Tile, context: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box (y0, y1, x0, x1) the tile is computed on: ``context`` pixels around it, clipped to the slide."""
    h, w = shape
    return max(0, tile.y0 - context), min(h, tile.y1 + context), max(0, tile.x0 - context), min(w, tile.x1 + context)


def part(items: list, index: int, count: int) -> list:
    """Part ``index`` (0-based) of ``count`` contiguous, near-equal parts of ``items`` (a job-array task's share)."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"part {index} of {count}: the index must be in 0..{count - 1}")
    n = len(items)
    return items[index * n // count : (index + 1) * n // count]


def parse_part(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N (``--part``)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--part {text!r}: write I/N, e.g. 0/4 for the first of four parts") from None
    part([], i, n)  # validates
    return i, n
