"""Markdown pipe tables (the ``*.md`` tables the commands write) as report tables.

Used for tables whose numbers the report shows as written (the regression table); every cell is
kept as its text.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.report.content import Cell, Column, Row, Table

__all__ = ["parse_tables", "read_tables"]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


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
