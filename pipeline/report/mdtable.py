"""Markdown pipe tables (the ``*.md`` tables the commands write): written from cells, and read back
as report tables.

Writing: :func:`pipe_table` renders a header and rows of cells as the lines of a pipe table,
:func:`document` joins headings, paragraphs and tables into the text of a ``.md`` file, and
:func:`table_to_markdown` renders a report :class:`~pipeline.report.content.Table` (cells formatted
as the HTML report formats them, :func:`cell_text`). The number formatters every table shares:
:func:`fixed` (decimals), :func:`count` (thousands separators) and :func:`percent`; a missing number
(None or NaN) is always written :data:`MISSING`.

Reading (used for tables whose numbers the report shows as written, the regression table):
:func:`parse_tables`; every cell is kept as its text.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Sequence

from pipeline.report.content import Cell, Column, Row, Table

__all__ = [
    "MISSING",
    "cell_text",
    "count",
    "document",
    "fixed",
    "parse_tables",
    "percent",
    "pipe_table",
    "read_tables",
    "table_to_markdown",
]

#: How every table writes a number that is not there (None or NaN): an en dash.
MISSING = "–"

# --------------------------------------------------------------------------- numbers


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fixed(v: float | int | str | None, digits: int = 4, signed: bool = False) -> str:
    """``v`` with ``digits`` decimals ("0.8218"; "+0.0123" when ``signed``); :data:`MISSING` for
    None or NaN; a text as it is."""
    if _missing(v):
        return MISSING
    if isinstance(v, str):
        return v
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def count(v: float | int | str | None, digits: int = 0) -> str:
    """``v`` with thousands separators ("12,345"; a mean count with ``digits`` decimals: "1,234.5");
    :data:`MISSING` for None or NaN; a text as it is."""
    if _missing(v):
        return MISSING
    if isinstance(v, str):
        return v
    if isinstance(v, int) and digits == 0:
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def percent(part: float | None, whole: float | None = 1.0, digits: int = 1) -> str:
    """100 ``part`` / ``whole`` with ``digits`` decimals and "%" ("85.0%"); :data:`MISSING` when
    ``part`` is None or NaN or ``whole`` is None or 0."""
    if _missing(part) or _missing(whole) or not whole:
        return MISSING
    return f"{100 * part / whole:.{digits}f}%"


def cell_text(cell: Cell, column: Column, as_published: bool = False) -> str:
    """The text of a report cell (the HTML report's and :func:`table_to_markdown`'s): :data:`MISSING`
    for None or NaN, integers for 0 decimals, else ``column.digits`` decimals; published figures as
    they were published (0.84, 0.7648)."""
    v = cell.value
    if _missing(v):
        return MISSING
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or as_published:
        return str(v)
    if column.digits == 0:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"
    return fixed(v, column.digits)


# --------------------------------------------------------------------------- writing

_ALIGN = {"": "---", "left": ":---", "right": "---:", "center": ":---:"}


def _cell(v: object) -> str:
    """A cell's text in a pipe table: None as :data:`MISSING`, "|" escaped, an empty cell as one space."""
    text = MISSING if v is None else str(v).replace("|", "\\|")
    return f" {text} " if text else " "


def _line(cells: Sequence[object]) -> str:
    return "|" + "|".join(_cell(c) for c in cells) + "|"


def pipe_table(header: Sequence[object], rows: Iterable[Sequence[object]], align: Sequence[str] = ()) -> list[str]:
    """The lines of a pipe table: ``header``, the ``|---|`` line, one line per row.

    Cells are texts (numbers formatted by the caller, e.g. with :func:`fixed`); other values are
    written with ``str``, None as :data:`MISSING`, an empty text as an empty cell ("| |"). ``align``:
    per column "", "left", "right" or "center" (default: none given, ``---``).

    >>> pipe_table(["fold", "F"], [[1, "0.8218"], ["published", ""]])
    ['| fold | F |', '|---|---|', '| 1 | 0.8218 |', '| published | |']
    """
    marks = [_ALIGN[a] for a in align] + ["---"] * (len(header) - len(align))
    return [_line(header), "|" + "|".join(marks) + "|", *(_line(r) for r in rows)]


def document(*blocks: str | Sequence[str]) -> str:
    """The text of a ``.md`` file: ``blocks`` (a line, e.g. "### Title" or a paragraph, or a list of
    lines, e.g. :func:`pipe_table`'s) separated by an empty line, ending with a newline. Empty
    blocks are left out."""
    parts = [b if isinstance(b, str) else "\n".join(b) for b in blocks]
    return "\n\n".join(p for p in parts if p) + "\n"


def table_to_markdown(table: Table, source: bool = False) -> str:
    """A report table as Markdown: its caption as the paragraph before the table (what
    :func:`parse_tables` reads back as the caption), ``corner`` heading the row labels, a column of a
    group headed "group: label", a row's note after its label in parentheses, cells as
    :func:`cell_text` writes them (a cell the row lacks: empty); ``source``: a last column with each
    row's source (the headline's)."""
    header = [table.corner] + [f"{c.group}: {c.label}" if c.group else c.label for c in table.columns]
    rows = []
    for r in table.rows:
        line = [f"{r.label} ({r.note})" if r.note else r.label]
        line += [cell_text(r.cells[c.key], c, r.kind == "published") if c.key in r.cells else "" for c in table.columns]
        rows.append(line + ([r.source] if source else []))
    return document(table.caption, pipe_table(header + (["source"] if source else []), rows))


# --------------------------------------------------------------------------- reading

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|")
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in _UNESCAPED_PIPE.split(inner)]


def parse_tables(text: str) -> list[Table]:
    """Every pipe table of ``text`` (a header line, a ``|---|`` line, rows); the paragraph just
    before a table becomes its caption. The first column labels the rows."""
    lines = text.splitlines()
    tables: list[Table] = []
    caption: list[str] = []  # the non-empty lines since the previous table
    i = 0
    while i < len(lines):
        line = lines[i]
        if (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and set(lines[i + 1].replace("|", "").replace(":", "").strip()) == {"-"}
        ):
            head = _cells(line)
            columns = [Column(f"c{j}", h) for j, h in enumerate(head[1:], start=1)]
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = _cells(lines[i]) + [""] * len(head)
                rows.append(Row(cells[0], {f"c{j}": Cell(cells[j]) for j in range(1, len(head))}))
                i += 1
            tables.append(Table(columns, rows, " ".join(caption).lstrip("# "), corner=head[0]))
            caption = []
            continue
        if line.strip():
            caption.append(line.strip())
        i += 1
    return tables


def read_tables(path: Path) -> list[Table]:
    """:func:`parse_tables` of a Markdown file."""
    return parse_tables(Path(path).read_text())
