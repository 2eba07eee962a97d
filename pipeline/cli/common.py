"""Helpers shared by the command modules."""

from __future__ import annotations

import json
from pathlib import Path


def print_summary(summary: dict) -> None:
    """Print a command's summary: one line per entry, then the Markdown table it names."""
    print("\nsummary:")
    for k, v in summary.items():
        if k in ("scores", "images") and summary.get("table") or k == "report":
            continue  # shown in the table below / in summary.json; the report last
        if k == "overall":
            print(
                f"  F-score {v['f_score']}, balanced accuracy {v['balanced_accuracy']}, accuracy {v['accuracy']} "
                f"(tp {v['tp']} fp {v['fp']} fn {v['fn']} tn {v['tn']})"
            )
        else:
            print(f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    if summary.get("table") and Path(summary["table"]).is_file():
        print()
        print(Path(summary["table"]).read_text())
    if summary.get("report"):
        print(f"report: {summary['report']}")
