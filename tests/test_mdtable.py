"""The one Markdown table writer (pipeline/report/mdtable.py) and its number formatters: exact strings.

The use-case tables at the end are spelled as the .md files of the real runs were before the writer
existed (byte-identical), so a change of the writer's spelling shows here.
"""

import math

from pipeline.report import Cell, Column, Row, Table
from pipeline.report.mdtable import (
    MISSING,
    cell_text,
    count,
    document,
    fixed,
    parse_tables,
    percent,
    pipe_table,
    table_to_markdown,
)


def test_fixed_decimals_missing_and_sign():
    assert MISSING == "–"  # an en dash, every table's missing number
    assert fixed(0.821849) == "0.8218"
    assert fixed(0.84, 2) == "0.84"
    assert fixed(1) == "1.0000"  # a count given where a ratio is expected still gets the ratio's decimals
    assert fixed(0.000012345, 5) == "0.00001"
    assert fixed(None) == "–" and fixed(math.nan) == "–"  # NaN as missing, as the HTML report shows it
    assert fixed(0.0123, signed=True) == "+0.0123" and fixed(-0.5, signed=True) == "-0.5000"
    assert fixed("given") == "given"  # a text is written as it is


def test_count_thousands_and_percent():
    assert count(12345) == "12,345" and count(7) == "7"
    assert count(19044.0) == "19,044"  # a mean count: no decimals unless asked
    assert count(1234.56, 1) == "1,234.6"
    assert count(None) == "–" and count(math.nan) == "–"
    assert count(10**17 + 1) == "100,000,000,000,000,001"  # an int stays exact (no float on the way)
    assert percent(0.85) == "85.0%" and percent(1, 4) == "25.0%" and percent(19044, 14400) == "132.2%"
    assert percent(3, 8, 2) == "37.50%"
    assert percent(None, 4) == "–" and percent(1, 0) == "–" and percent(1, None) == "–"


def test_pipe_table_cells():
    # empty text: an empty cell "| |"; None: missing; numbers with str; "|" escaped
    assert pipe_table(["fold", "F", "note"], [[1, "0.8218", None], ["published", "", "a|b"]]) == [
        "| fold | F | note |",
        "|---|---|---|",
        "| 1 | 0.8218 | – |",
        "| published | | a\\|b |",
    ]
    assert pipe_table(["", "x"], []) == ["| | x |", "|---|---|"]  # an empty corner
    assert pipe_table(["a", "b", "c", "d"], [], align=["left", "right", "center"]) == [
        "| a | b | c | d |",
        "|:---|---:|:---:|---|",
    ]


def test_document_blocks():
    table = pipe_table(["a"], [["1"]])
    assert document("### T", "Some text.", table) == "### T\n\nSome text.\n\n| a |\n|---|\n| 1 |\n"
    assert document("### T", "", table, ["note 1", "- note 2"]) == "### T\n\n| a |\n|---|\n| 1 |\n\nnote 1\n- note 2\n"


def _table():
    cols = [
        Column("f", "F-score", group="class map"),
        Column("tp", "tp", 0, group="class map"),
        Column("th", "threshold", 2),
    ]
    rows = [
        Row("fold 1", {"f": Cell(0.821849, "scores.json#/folds/0/f"), "tp": Cell(12), "th": Cell(0.3)}),
        Row("pooled", {"f": Cell(None), "tp": Cell(30.0)}, kind="pooled"),
        Row("published", {"f": Cell(0.84)}, kind="published", source="recalled", note="paper, level not stated"),
    ]
    return Table(cols, rows, caption="Pixel level, 5 folds.", corner="fold")


def test_table_to_markdown():
    # groups head their columns ("group: label"); published figures as published; a cell the row lacks: empty
    assert table_to_markdown(_table()) == (
        "Pixel level, 5 folds.\n"
        "\n"
        "| fold | class map: F-score | class map: tp | threshold |\n"
        "|---|---|---|---|\n"
        "| fold 1 | 0.8218 | 12 | 0.30 |\n"
        "| pooled | – | 30 | |\n"
        "| published (paper, level not stated) | 0.84 | | |\n"
    )
    with_source = table_to_markdown(_table(), source=True).splitlines()
    assert with_source[2] == "| fold | class map: F-score | class map: tp | threshold | source |"
    assert with_source[-1] == "| published (paper, level not stated) | 0.84 | | | recalled |"
    # the same cell texts as the HTML report's
    assert (
        cell_text(Cell(0.821849), Column("f", "F")) == "0.8218" and cell_text(Cell(30.0), Column("n", "n", 0)) == "30"
    )


def test_written_tables_read_back():
    (t,) = parse_tables(table_to_markdown(_table()))
    assert t.caption == "Pixel level, 5 folds." and t.corner == "fold"
    assert [c.label for c in t.columns] == ["class map: F-score", "class map: tp", "threshold"]
    assert [r.label for r in t.rows] == ["fold 1", "pooled", "published (paper, level not stated)"]
    assert [r.cells["c1"].value for r in t.rows] == ["0.8218", "–", "0.84"]
    assert t.rows[1].cells["c3"].value == ""
    (t,) = parse_tables(document(pipe_table(["model", "F"], [["a|b", "0.5"]])))
    assert t.rows[0].label == "a|b" and t.rows[0].cells["c1"].value == "0.5"  # an escaped pipe is text


def test_detection_scores_table_as_before():
    from pipeline.usecases.mitosis import detection

    det = {"tp": 3, "fp": 1, "fn": 2, "precision": 0.75, "recall": 0.6, "f_score": 2 / 3}
    s = {
        "folds": [{"fold": 1, "detection": det}, {"fold": 2, "detection": {**det, "precision": None}}],
        "pooled": {"tp": 6, "fp": 2, "fn": 4, "precision": 0.75, "recall": 0.6, "f_score": 2 / 3},
        "peak_disk": 3,
        "peak_threshold": 0.5,
        "peak_clear_radius": 15.0,
        "match_radius": 30.0,
        "published_f": 0.611,
    }
    assert detection.scores_markdown(s).split("\n\n", 2)[2] == (
        "| fold | tp | fp | fn | precision | recall | F-score |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 1 | 3 | 1 | 2 | 0.7500 | 0.6000 | 0.6667 |\n"
        "| 2 | 3 | 1 | 2 | – | 0.6000 | 0.6667 |\n"
        "| pooled | 6 | 2 | 4 | 0.7500 | 0.6000 | 0.6667 |\n"
        "| published (paper, 550 mitoses, its own matching rule) | | | | | | 0.61 |\n"
    )


def test_idc_regression_table_as_before():
    from pipeline.usecases.idc import regression

    row = {
        "model": "released w32",
        "variant": "resize",
        "tp": 96,
        "fp": 33,
        "fn": 51,
        "tn": 1219,
        "f_score": 0.695652,
        "balanced_accuracy": 0.8134,
        "accuracy": 0.94,
        "agreement_with": "released w32",
        "same_class": 1.0,
        "mean_abs_dp": 0.0000123,
        "published_f_score": None,
    }
    assert regression.markdown({"data": "/d", "patients": ["8863", "10253"], "rows": [row]}) == (
        "Patients: 8863, 10253 (/d)\n"
        "\n"
        "| model | variant | tp | fp | fn | tn | F-score | balanced acc. | accuracy | agreement with | same class | "
        "mean abs dP | published F |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| released w32 | resize | 96 | 33 | 51 | 1219 | 0.6957 | 0.8134 | 0.9400 | released w32 | 1.0000 | "
        "0.00001 | – |\n"
    )
