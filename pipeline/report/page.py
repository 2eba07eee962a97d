"""Render a report folder: ``index.html`` (Jinja2, ``report_templates/index.html.j2``), ``static/``
(the style sheet) and ``pictures/`` (PNGs). Nothing is fetched when viewing it: no scripts, no
fonts, no network.

The folder is written under a temporary name and renamed when complete (:mod:`pipeline.atomic`),
so a report is never half old, half new.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import REPO_ROOT, atomic
from pipeline.report import mdtable, pictures
from pipeline.report.content import Cell, Column, Content, Picture, Section, Table

log = logging.getLogger(__name__)

#: Jinja template and static files of the report.
REPORT_TEMPLATE_DIR = REPO_ROOT / "report_templates"
PICTURES = "pictures"
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|–")
STATIC = "static"


@dataclass(frozen=True)
class Option:
    """An option of the run: its name (argparse ``dest``), flag, value in this run, and the value of
    the published (faithful) run; ``numeric``: whether it changes numbers."""

    key: str
    flag: str
    value: object
    faithful: object = None
    numeric: bool = True
    negated: bool = False  # a "--no-x" flag of option x: shown as the flag's own on/off

    def shown(self, value: object) -> str:
        """``value`` (of the option) as the flag reads: on/off, "default" for None."""
        if self.negated and isinstance(value, bool):
            value = not value
        return "default" if value is None else _show(value)


@dataclass
class Page:
    """What every report shows besides the use case's :class:`Content`."""

    title: str
    command: str = ""
    generated: str = ""  # non-empty: the cohort is generated; says what that means
    facts: list[tuple[str, str]] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    rebuild: str = ""  # the command rebuilding the report
    results: bool = True  # show the "measured beside published" section (a run's report)


def fmt(cell: Cell, column: Column, as_published: bool = False) -> str:
    """The text of a cell: "–" for None, integers for 0 decimals, else ``column.digits`` decimals;
    published figures as they were published (0.84, 0.7648). The Markdown tables' too
    (:func:`pipeline.report.mdtable.cell_text`)."""
    return mdtable.cell_text(cell, column, as_published)


def _show(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "–"
    return str(v)


def environment():
    """The Jinja environment of the report template (HTML autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPORT_TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["exact"] = lambda v: json.dumps(v)
    env.tests["numeric_text"] = lambda v: isinstance(v, str) and bool(_NUMBER.fullmatch(v.strip()))
    return env


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(p.name, f"{p.stat().st_size / 1024:.0f} KB") for p in sorted(folder.glob("*.png"))]


#: Where a work folder's GeoJSON exports lie (``python -m pipeline export``): step-5 output folders'
#: images, use case 6's patients.
GEOJSON_GLOBS = ("output/*/*.geojson", "eval/*.geojson")


def geojson_links(work: Path) -> list[tuple[str, str, str]]:
    """(link from ``report/index.html``, label, size) of every GeoJSON export of ``work``."""
    files = [p for g in GEOJSON_GLOBS for p in sorted(Path(work).glob(g))]
    return [
        (f"../{p.relative_to(work).as_posix()}", p.relative_to(work).as_posix(), f"{p.stat().st_size / 1024:.0f} KB")
        for p in files
    ]


def build(work: Path, page: Page, make_content: Callable[[Path], Content]) -> Path:
    """Write ``work/report/`` and return the path of its ``index.html``.

    ``make_content(pictures_dir)`` is the use case's hook: it writes its PNGs into
    ``pictures_dir`` and returns the :class:`Content` naming them. Training curves are drawn here
    from ``Content.training_logs``.
    """
    work = Path(work)
    final = work / "report"
    with atomic.atomic_path(final, is_dir=True) as tmp:
        pics = tmp / PICTURES
        pics.mkdir(parents=True)
        content = make_content(pics)
        curves = pictures.training_curves(
            content.training_logs,
            pics / "training_curves.png",
            "Training curves per fold" if len(content.training_logs) > 1 else "Training curves",
        )
        (tmp / STATIC).mkdir()
        shutil.copy2(REPORT_TEMPLATE_DIR / "report.css", tmp / STATIC / "report.css")
        options = [
            Option(o.key, o.flag, content.options.get(o.key, o.value), o.faithful, o.numeric, o.negated)
            for o in page.options
        ]
        html = (
            environment()
            .get_template("index.html.j2")
            .render(
                page=page,
                content=content,
                options=options,
                curves=Picture(curves.name, _curves_caption(content)) if curves else None,
                files=_files(pics),
                geojson=geojson_links(work),
                pictures_dir=PICTURES,
                static_dir=STATIC,
            )
        )
        (tmp / "index.html").write_text(html)
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    log.info(
        "report: %s (%d pictures, %.1f MB)",
        final / "index.html",
        len(list((final / PICTURES).glob("*.png"))),
        size / 2**20,
    )
    return final / "index.html"


def _curves_caption(content: Content) -> str:
    n = len(content.training_logs)
    return (
        "Loss of the training batches (solid) and of the test phase (dashed, dots), and the test phase's "
        "accuracy, against iteration"
        + (f"; one colour per fold ({n} folds)." if n > 1 else ".")
        + " The test phase runs the net on the held-out DB every test_interval iterations."
    )


def table_report(
    out: Path,
    title: str,
    tables: list[Table],
    text: str = "",
    facts: list[tuple[str, str]] = (),
    section: str = "Tables",
) -> Path:
    """A report of tables only (``regress``): ``out/report/index.html``."""
    page = Page(title=title, facts=list(facts), results=False)
    return build(out, page, lambda _pics: Content(sections=[Section(section, text=text, tables=tables)]))
