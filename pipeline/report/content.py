"""What a report shows, as plain data: tables whose numbers name where they were read, pictures, sections.

A use case's report hook (``UseCase.report`` in :mod:`pipeline.usecases.base`) returns a
:class:`Content`; :func:`pipeline.report.build` renders it with the parts every run has (run
facts, options, training curves) into ``WORK/report/index.html``.

Every measured number carries ``ref``: the JSON file it was read from (relative to the work
folder) and a JSON pointer (RFC 6901) into it, e.g. ``scores.json#/pooled/f_score``. The page
writes it beside the number (``data-ref``), so anyone (and the tests) can check each figure
against the run's scores JSON. Published figures carry their source instead ("paper", "code
comment", "recalled": :data:`pipeline.usecases.base.SOURCES`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DETECTION_COLUMNS",
    "Cell",
    "Column",
    "Content",
    "Picture",
    "Row",
    "Section",
    "Table",
    "detection_rows",
    "from_json",
    "resolve_ref",
]


@dataclass(frozen=True)
class Cell:
    """One entry of a table: a number (None shows as "–") or a text, and where it was read (see module doc)."""

    value: float | int | str | None
    ref: str | None = None


@dataclass(frozen=True)
class Column:
    """A table column: key into :attr:`Row.cells`, header text, decimals (0: an integer count), and
    the header of the group of adjacent columns it belongs to ("" for none)."""

    key: str
    label: str
    digits: int = 4
    group: str = ""


@dataclass
class Row:
    """A table row. ``kind``: "measured" (a fold, an image), "pooled", or "published" (then
    ``source`` is the figure's source and ``note`` what it was measured on)."""

    label: str
    cells: dict[str, Cell]
    kind: str = "measured"
    source: str = "this run"
    note: str = ""


@dataclass
class Table:
    """Columns and rows; ``caption`` says what the numbers are (level, counts, data); ``corner``
    heads the column of row labels."""

    columns: list[Column]
    rows: list[Row]
    caption: str = ""
    corner: str = ""

    def groups(self) -> list[tuple[str, int]]:
        """Column groups in order as (header, number of adjacent columns); empty without groups."""
        if not any(c.group for c in self.columns):
            return []
        out: list[tuple[str, int]] = []
        for c in self.columns:
            if out and out[-1][0] == c.group:
                out[-1] = (c.group, out[-1][1] + 1)
            else:
                out.append((c.group, 1))
        return out


@dataclass(frozen=True)
class Picture:
    """A PNG the hook wrote into the report's picture folder: its file name there and a caption
    saying what is drawn (colours included), for readers of the page and of the PNG alone."""

    file: str
    caption: str


@dataclass
class Section:
    """A part of the page: title, a paragraph, pictures, tables (each optional)."""

    title: str
    text: str = ""
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Content:
    """A use case's contribution to its report.

    ``headline``: measured beside published (per fold and pooled); ``sections``: pictures and
    further tables; ``training_logs``: training-log CSVs (:func:`pipeline.training.write_log_csv`)
    by label ("fold 1"), drawn as curves; ``options``: option values the outputs record (they
    override the ones of the command line where a run fixed them); ``notes``: lines shown under
    the headline (problems met, missing stages).
    """

    headline: Table | None = None
    sections: list[Section] = field(default_factory=list)
    training_logs: dict[str, Path] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _pointer(path: tuple[str | int, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def from_json(doc: Any, file: str, *path: str | int) -> Cell:
    """The cell holding ``doc[path[0]][path[1]]...`` of the JSON ``file`` (relative to WORK), with its ref."""
    value = doc
    for p in path:
        value = value[p]
    return Cell(value, f"{file}#{_pointer(path)}")


#: The headline columns of a detection use case's scores (use cases 4 and 5): counts, then rates.
DETECTION_COLUMNS = [
    Column("tp", "tp", 0),
    Column("fp", "fp", 0),
    Column("fn", "fn", 0),
    Column("precision", "precision"),
    Column("recall", "recall"),
    Column("f_score", "F-score"),
]


def detection_rows(scores: dict, unit: str) -> list[Row]:
    """Rows of a detection scores.json (``folds[i].detection`` and ``pooled``, each holding the
    :data:`DETECTION_COLUMNS`): one per fold, noting its number of test ``unit`` s ("image",
    "frame"), then the pooled row."""
    rows = [
        Row(
            f"fold {f['fold']}",
            {c.key: from_json(scores, "scores.json", "folds", i, "detection", c.key) for c in DETECTION_COLUMNS},
            note=f"{len(f['images'])} test {unit}(s)",
        )
        for i, f in enumerate(scores["folds"])
    ]
    pooled = {c.key: from_json(scores, "scores.json", "pooled", c.key) for c in DETECTION_COLUMNS}
    return rows + [Row("pooled", pooled, kind="pooled", note=f"all folds' test {unit}s")]


def resolve_ref(work: Path, ref: str) -> Any:
    """The value a ``ref`` ("file.json#/a/0/b") names, read from the file under ``work``."""
    file, _, pointer = ref.partition("#")
    value = json.loads((Path(work) / file).read_text())
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
