"""Run reports: WORK/report/index.html at the end of every use-case run and from `python -m pipeline
report WORK`, on the generated demo cohorts with the real tools (few iterations). Checked: every
file the page references exists, every number of the headline table equals the run's scores JSON,
the pictures draw what was scored, and a rebuild recomputes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipeline import REPO_ROOT
from pipeline.report import Cell, Column, Table, content, mdtable, pictures, resolve_ref
from pipeline.report.page import fmt, table_report
from pipeline.usecases import REGISTRY
from pipeline.usecases.base import SOURCES

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--iter", "10", "--test-interval", "10", "--snapshot", "10", "--display", "5", "--max-positive", "20"]


def pipeline_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, capture_output=True, text=True)


class Page(HTMLParser):
    """The parts of a report page the tests check: referenced files, and the headline table's
    rows as (row class, data-published, label, [cell attributes with their text])."""

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.rows: list[dict] = []
        self._in_headline = self._in_body = False
        self._cell: dict | None = None
        self._label: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.links.append(a[key])
        if tag == "table" and a.get("id") == "headline-table":
            self._in_headline = True
        elif self._in_headline and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append({"kind": a["class"], "published": a.get("data-published"), "label": "", "cells": []})
        elif self._in_headline and self.rows and tag == "th" and a.get("scope") == "row":
            self._label = []
        elif tag == "span":
            self._end_label()
        elif self._in_headline and self.rows and tag == "td":
            self._cell = {**a, "text": ""}

    def _end_label(self):
        if self._label is not None:
            self.rows[-1]["label"] = "".join(self._label).strip()
            self._label = None

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_headline = self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(self._cell)
            self._cell = None
        elif tag == "th":
            self._end_label()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._label is not None:
            self._label.append(data)


def check_report(work: Path, scores_file: str) -> Page:
    """Every referenced file exists (PNGs are PNGs, nothing remote); every number of the headline's
    measured rows names a key of ``scores_file`` and equals it exactly, shown to its decimals."""
    index = work / "report" / "index.html"
    page = Page(index.read_text())
    assert page.links, "the page references no file"
    for link in page.links:
        assert not link.startswith(("http:", "https:", "//")), f"{link}: the report must work offline"
        target = index.parent / link
        assert target.is_file(), f"{link}: referenced by the report, missing"
        if link.endswith(".png"):
            assert target.read_bytes()[:8] == PNG
    assert page.rows, "no headline table"
    for row in page.rows:
        numbers = [c for c in row["cells"] if c.get("class") == "num"]
        if row["kind"] == "published":
            assert row["published"] in SOURCES and all("data-ref" not in c for c in numbers)
            continue
        for c in numbers:
            assert c["data-ref"].startswith(scores_file + "#/"), c
            value = resolve_ref(work, c["data-ref"])
            assert json.loads(c["data-value"]) == value, c  # exactly, None included
            digits = 0 if isinstance(value, int) else 2 if c["data-ref"].endswith("/threshold") else 4
            assert c["text"] == fmt(Cell(value), Column("x", "x", digits)), c
    return page


def rows_by_label(page: Page) -> dict[str, dict]:
    return {r["label"] or r["kind"]: r for r in page.rows}


def texts(row: dict) -> list[str]:
    return [c["text"] for c in row["cells"] if c.get("class") == "num"]


# --------------------------------------------------------------------------- runs on generated cohorts


@pytest.fixture(scope="module")
def epi_demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("report") / "demo-epi"
    out = pipeline_cmd("demo-epi", "--work", str(work), *FAST)
    assert out.returncode == 0, out.stderr[-3000:]
    return work, out


@pytest.fixture(scope="module")
def idc_demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("report") / "demo"
    out = pipeline_cmd("demo", "--work", str(work), "--iter", "10")
    assert out.returncode == 0, out.stderr[-3000:]
    return work, out


def test_epi_demo_report(epi_demo):
    work, out = epi_demo
    index = work / "report" / "index.html"
    assert out.stdout.rstrip().endswith(f"report: {index}")
    page = check_report(work, "scores.json")
    scores = json.loads((work / "scores.json").read_text())
    rows = rows_by_label(page)
    assert [r["label"] for r in page.rows] == [f"fold {k}" for k in range(1, 6)] + ["pooled", "published"]
    # 7 numbers per fold (F, precision, recall of the class map; threshold; F, precision, recall of P >= it),
    # 6 pooled (no threshold): every one of them read from scores.json
    assert sum(len([c for c in r["cells"] if "data-ref" in c]) for r in page.rows) == 5 * 7 + 6
    assert texts(rows["pooled"])[0] == f"{scores['pooled']['class_map']['f_score']:.4f}"
    assert texts(rows["fold 3"])[3] == f"{scores['folds'][2]['threshold']:.2f}"
    assert texts(rows["published"]) == ["0.84"] and rows["published"]["published"] == "recalled"
    # pictures: every fold's test images up to best, median and worst
    for f in scores["folds"]:
        drawn = list((work / "report" / "pictures").glob(f"epi_fold{f['fold']}_*.png"))
        assert len(drawn) == min(3, len(f["test_images"])) >= 1
    html = index.read_text()
    assert "Generated cohort" in html and "training_curves.png" in html
    assert "<dt>this command took</dt>" in html
    assert '<code>--infer-mode</code></th><td>fcn</td><td>exact <span class="tag">differs</span>' in html


def test_report_command_rebuilds_without_recomputing(epi_demo):
    work, _ = epi_demo
    report = work / "report"
    before = {p: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    outputs = {
        p: p.stat().st_mtime_ns
        for p in [*work.glob("output/*/*"), *work.glob("models/*.caffemodel"), work / "scores.json"]
    }
    (report / "index.html").unlink()
    out = pipeline_cmd("report", str(work))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == f"report: {report / 'index.html'}"
    after = {p: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert after == before  # the same page and pictures, byte for byte
    assert {p: p.stat().st_mtime_ns for p in outputs} == outputs  # nothing of the run rewritten


def test_fold_tasks_leave_the_report_to_the_last_step(tmp_path):
    """Cluster tasks of some folds (``--folds``, run in parallel in one WORK by ``submit``) do not
    rebuild the shared report folder; a command over all folds does. The patch stage alone: seconds."""
    out = pipeline_cmd("demo-epi", "--work", str(tmp_path), "--folds", "1", "--stages", "patches")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "report:" not in out.stdout and not (tmp_path / "report").exists()
    out = pipeline_cmd("demo-epi", "--work", str(tmp_path), "--stages", "patches")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "report" / "index.html").is_file()


def test_report_command_errors(tmp_path):
    out = pipeline_cmd("report", str(tmp_path / "nope"))
    assert out.returncode == 1 and "nope: no such work folder" in out.stderr
    out = pipeline_cmd("report", str(tmp_path))
    assert out.returncode == 1 and "no run.json saying which use case made this folder; pass --usecase" in out.stderr
    # an older folder without run.json, named by --usecase: a report saying what is missing
    out = pipeline_cmd("report", str(tmp_path), "--usecase", "epi")
    assert out.returncode == 0, out.stderr
    assert "no scores.json yet" in (tmp_path / "report" / "index.html").read_text()


def test_lymphocyte_report(lymphocyte_run):
    from pipeline.usecases import lymphocyte as ly

    data, work, out = lymphocyte_run
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.rstrip().endswith(f"report: {work / 'report' / 'index.html'}")
    page = check_report(work, "scores.json")
    assert sum(len([c for c in r["cells"] if "data-ref" in c]) for r in page.rows) == 6 * 6  # tp fp fn P R F
    scores = json.loads((work / "scores.json").read_text())
    # the pictures draw the matches the scores counted
    for f in scores["folds"]:
        for im in f["images"]:
            c = ly.image_centres(
                work / "output" / str(f["fold"]), data / im["image"], 4.0, scores["match_radius"], scores["score_from"]
            )
            assert (len(c["pred_matched"]), len(c["pred_false"]), len(c["truth_missed"])) == (
                im["tp"],
                im["fp"],
                im["fn"],
            )
            assert len(c["truth_matched"]) == im["tp"]
    assert len(list((work / "report" / "pictures").glob("lymphocyte_fold*.png"))) == 5


def test_idc_demo_report(idc_demo):
    work, out = idc_demo
    assert out.stdout.rstrip().endswith(f"report: {work / 'report' / 'index.html'}")
    page = check_report(work, "eval/metrics.json")
    rows = page.rows
    assert [r["kind"] for r in rows] == ["measured", "published", "published", "published"]
    assert sum(1 for c in rows[0]["cells"] if "data-ref" in c) == 7
    # the crop variant's figure from the code comment, the paper's and Cruz-Roa's (recalled)
    assert [(r["published"], texts(r)) for r in rows[1:]] == [
        ("code comment", ["0.7648"]),
        ("recalled", ["0.7648", "0.8468"]),
        ("recalled", ["0.718", "0.8423"]),
    ]
    html = (work / "report" / "index.html").read_text()
    assert "idc_outcomes.png" in html and "Per patient" in html
    assert "<code>--variant</code></th><td>crop</td><td>crop</td>" in html


def test_demo_epi_leaves_geojson_that_round_trips_and_is_linked(epi_demo):
    """Issue 29: every test image's class map as polygons beside its maps, exact when rasterised
    back at step 5's scale, each file linked from the report."""
    from tests.geojson_checks import iou, load_checked, raster

    work, _ = epi_demo
    files = sorted(work.glob("output/*/*.geojson"))
    assert {f.relative_to(work).with_suffix("") for f in files} == {
        p.relative_to(work).with_name(p.name[: -len("_class.png")]) for p in work.glob("output/*/*_class.png")
    }
    html = (work / "report" / "index.html").read_text()
    for f in files:
        fc = load_checked(f)
        cls = np.load(f.parent / f"{f.stem}_prob.npy").argmax(axis=2) == 1
        assert iou(raster(fc, cls.shape, fc["pipeline"]["record"]["resize"]), cls) >= 0.99
        assert np.array_equal(raster(fc, cls.shape, fc["pipeline"]["record"]["resize"]), cls)
        assert f'href="../{f.relative_to(work).as_posix()}"' in html


def test_idc_demo_leaves_a_square_per_test_patch(idc_demo):
    import csv

    from tests.geojson_checks import load_checked

    work, _ = idc_demo
    rows = list(csv.DictReader(open(work / "eval" / "metrics.csv")))
    files = sorted((work / "eval").glob("*.geojson"))
    assert {f.stem for f in files} == {r["patient"] for r in rows}
    squares = [f for p in files for f in load_checked(p)["features"]]
    assert len(squares) == len(rows)
    assert sorted(f["properties"]["classification"]["name"] for f in squares) == sorted(
        "IDC" if r["predicted"] == "1" else "Non-IDC" for r in rows
    )
    assert "eval/" + files[0].name in (work / "report" / "index.html").read_text()


# --------------------------------------------------------------------------- pieces, by hand


def test_duration_of_a_command():
    from pipeline.cli.commands.report import _duration

    assert _duration("2026-11-23 19:25:47", "2026-11-23 19:25:55") == "8 s"
    assert _duration("2026-11-23 19:25:47", "2026-11-23 19:27:52") == "2 min 05 s"  # 125 s
    assert _duration("2026-11-23 17:12:00", "2026-11-23 19:14:59") == "2 h 02 min"  # 7379 s, seconds dropped
    assert _duration("2026-11-23 17:12:00", None) == ""  # interrupted: no line


def test_pick_examples_best_median_worst():
    assert pictures.pick_examples([]) == []
    assert pictures.pick_examples([("a", 0.5)]) == [("only", "a")]
    assert pictures.pick_examples([("a", 0.2), ("b", 0.9)]) == [("best", "b"), ("worst", "a")]
    # descending b .9, d .7, a .5, c .1 (None last): median index (5 - 1) // 2 = 2 -> a
    scored = [("a", 0.5), ("b", 0.9), ("c", 0.1), ("d", 0.7), ("e", None)]
    assert pictures.pick_examples(scored) == [("best", "b"), ("median", "a"), ("worst", "e")]


def test_refs_name_json_keys_with_escapes(tmp_path):
    doc = {"folds": [{"a/b": {"x~y": 0.25}}], "pooled": {"n": 3}}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    cell = content.from_json(doc, "s.json", "folds", 0, "a/b", "x~y")
    assert cell == Cell(0.25, "s.json#/folds/0/a~1b/x~0y")  # RFC 6901 escapes
    assert resolve_ref(tmp_path, cell.ref) == 0.25
    assert resolve_ref(tmp_path, content.from_json(doc, "s.json", "pooled", "n").ref) == 3


def test_cell_text():
    assert fmt(Cell(0.123456), Column("f", "F")) == "0.1235"
    assert fmt(Cell(12), Column("tp", "tp", 0)) == "12"
    assert fmt(Cell(None), Column("f", "F")) == "–"
    assert fmt(Cell(0.84), Column("f", "F"), as_published=True) == "0.84"
    t = Table([Column("a", "A", group="g"), Column("b", "B", group="g"), Column("c", "C")], [])
    assert t.groups() == [("g", 2), ("", 1)]
    assert Table([Column("a", "A")], []).groups() == []


def test_regression_table_report(tmp_path):
    from pipeline.usecases.idc import regression

    row = {
        "model": "released w32",
        "variant": "resize",
        "tp": 96,
        "fp": 33,
        "fn": 51,
        "tn": 1219,
        "n": 1399,
        "f_score": 0.695652,
        "balanced_accuracy": 0.8134,
        "accuracy": 0.94,
        "agreement_with": "released w32",
        "same_class": 1.0,
        "mean_abs_dp": 0.0,
        "published_f_score": None,
    }
    md = regression.markdown({"data": "/d", "patients": ["8863", "10253"], "rows": [row]})
    tables = mdtable.parse_tables(md)
    assert len(tables) == 1 and tables[0].caption == "Patients: 8863, 10253 (/d)" and tables[0].corner == "model"
    assert [c.label for c in tables[0].columns][:3] == ["variant", "tp", "fp"]
    assert tables[0].rows[0].label == "released w32" and tables[0].rows[0].cells["c6"].value == "0.6957"
    index = table_report(tmp_path, "Regression", tables)
    html = index.read_text()
    assert '<td class="text numlike">0.6957</td>' in html and '<td class="text">resize</td>' in html
    assert "Results: measured beside published" not in html  # a table report has no headline
    assert all((index.parent / link).is_file() for link in Page(html).links)


def test_pictures_of_a_full_size_image_stay_small(tmp_path):
    """A 500x500 image (an epithelium image of the data set at x0.5) draws into well under 1 MB, so
    a 5-fold run's 15 outline pictures stay far below the report's 20 MB."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    from pipeline.usecases import epi

    epi.make_cohort(tmp_path, n_patients=1, size=100, seed=1)  # tiled to 500x500: as textured, faster
    img = np.tile(np.asarray(Image.open(tmp_path / "8001_00001.tif")), (5, 5, 1))
    mask = np.tile(np.asarray(Image.open(tmp_path / "8001_00001_mask.png")) > 0, (5, 5))
    prob = gaussian_filter(mask.astype(float), 8)  # maps of a 32x32-window classifier are smooth
    out = pictures.outlines(img, mask, prob > 0.5, prob, "title", tmp_path / "o.png")
    assert out.read_bytes()[:8] == PNG and out.stat().st_size < 1_000_000
    labels = (mask.astype(int) + (prob > 0.5)).astype(int)
    over = pictures.label_overlay(
        img, labels, {1: ("accepted", "#00CC66"), 2: ("rejected", "#D55E00")}, "t", tmp_path / "l.png"
    )
    assert over.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match="labels are"):
        pictures.label_overlay(img, labels[:10], {1: ("a", "#000000")}, "t", tmp_path / "x.png")


def test_every_registered_use_case_has_a_report_hook_and_known_options():
    import argparse

    for uc in REGISTRY.values():
        p = argparse.ArgumentParser()
        uc.add_arguments(p, demo=False)
        dests = {a.dest for a in p._actions}
        assert set(uc.numeric_options) <= dests, (uc.name, set(uc.numeric_options) - dests)
        assert callable(uc.report)
