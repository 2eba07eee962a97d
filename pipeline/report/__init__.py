"""One report per run: ``WORK/report/index.html`` with the headline table (measured beside
published), the options that change numbers, training curves and the use case's pictures, the
same pictures as PNGs under ``WORK/report/pictures/``; viewable offline.

Modules: ``content`` (what a report shows, as data: tables whose numbers name the JSON they were
read from, pictures, sections), ``pictures`` (matplotlib / scikit-image drawings), ``page`` (the
Jinja2 page and the report folder), ``mdtable`` (the Markdown tables every command writes, their
number formatters, and reading them back as report tables).

Shared code: it knows no use case by name. Each use case fills a :class:`Content` in its
``report`` hook (:mod:`pipeline.usecases.base`); the command line (``python -m pipeline report
WORK``, and every use-case run) puts the two together with :func:`build`.
"""

from pipeline.report.content import (
    DETECTION_COLUMNS,
    Cell,
    Column,
    Content,
    Picture,
    Row,
    Section,
    Table,
    detection_rows,
    from_json,
    resolve_ref,
)
from pipeline.report.page import Option, Page, build, table_report

__all__ = [
    "DETECTION_COLUMNS",
    "Cell",
    "Column",
    "Content",
    "Option",
    "Page",
    "Picture",
    "Row",
    "Section",
    "Table",
    "build",
    "detection_rows",
    "from_json",
    "resolve_ref",
    "table_report",
]
