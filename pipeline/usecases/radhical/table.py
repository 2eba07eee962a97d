"""The headline table: RADHicaL against the naive level-1 run on the same test images, beside the
published figures (paper abstract, seed 002: .9407/.9854 detection rate, .8218/.8489 F-score,
.8061/.8364 TPR, .8822/.8932 PPV, computation reduced by about 85%)."""

from __future__ import annotations

from pipeline.report.mdtable import MISSING, count, document, fixed, percent, pipe_table
from pipeline.usecases.base import Figure

#: The paper's figures (abstract), RADHicaL and naive, with the computation saved.
PUBLISHED = {
    "detection_rate": (0.9407, 0.9854),
    "f_score": (0.8218, 0.8489),
    "tpr": (0.8061, 0.8364),
    "ppv": (0.8822, 0.8932),
}
METRICS = (("detection_rate", "detection rate"), ("f_score", "F-score"), ("tpr", "TPR"), ("ppv", "PPV"))


def figures() -> tuple[Figure, ...]:
    """The published figures in the use-case shape."""
    out = []
    for key, (rad, naive) in PUBLISHED.items():
        out.append(Figure(key, rad, "paper", "RADHicaL, 141 ER+ BCa images (abstract)", variant="radhical"))
        out.append(Figure(key, naive, "paper", "naive 40x DL (abstract)", variant="naive"))
    return tuple(out)


LEVEL_LABELS = ((4, "level 4 (x0.1)"), (3, "level 3 (x0.25)"), (2, "level 2 (x0.5)"), (1, "level 1 (x1)"))


def _saved(part: float | None, whole: float | None) -> str:
    """ "85.0%": the share of ``whole`` not spent (1 - part / whole)."""
    return percent(None if part is None or not whole else 1 - part / whole)


def sessions(d: dict) -> set:
    """The sessions (processes) that timed the levels of a graded run ``d`` (its per-image level stats;
    None for stats written before sessions were recorded)."""
    return {st.get("session") for im in d.get("images", []) for st in im.get("levels", {}).values()}


def markdown(rows: dict, n_images: int, fold: int, notes: list[str]) -> str:
    """The headline table: per RADHicaL run (``rows``: label -> {"scores", "pixels" {level: mean
    windows per image}, "level_seconds" {level: mean s per image}, "tiles" {level: mean fcn tiles
    per image} or None, "seconds", "lower1",
    "thresholds", "chosen_on", "naive": the naive run graded at the same ``lower1``, same keys})
    a column, then the naive run's column at the same final threshold (in its header); then the
    published figures. Windows and wall time per level, totals, and what the cascade saved."""
    cols: list[tuple[str, dict, bool]] = []  # (header, data, is_naive)
    for label, r in rows.items():
        cols.append((f"{label}, P1 > {r['lower1']:g}", r, False))
        cols.append((f"naive (level 1, every pixel), P1 > {r['lower1']:g}", r["naive"], True))
    table: list[list[str]] = []

    def row(label: str, cells: list[str], pub: tuple[str, str] = ("", "")) -> None:
        table.append([label, *cells, *pub])

    row(
        "thresholds chosen on",
        [(MISSING if nv else d.get("chosen_on", "")) for _, d, nv in cols],
        ("10 patients", MISSING),
    )
    row("final threshold (P1 >)", [f"{d['lower1']:g}" for _, d, _ in cols], ("0.5267", "0.5267 (inferred)"))
    for key, label in METRICS:
        rad, nv = PUBLISHED[key]
        row(label, [fixed(d["scores"].get(key)) for _, d, _ in cols], (fixed(rad), fixed(nv)))

    def naive_of(d: dict, nv: bool) -> dict:
        return d if nv else d["naive"]

    for lv, label in LEVEL_LABELS:
        cells = []
        for _, d, nv in cols:
            px = d["pixels"].get(lv)
            cells.append(MISSING if px is None else f"{count(px)} ({percent(px, naive_of(d, nv)['pixels'][1])})")
        row(f"windows, {label}", cells)
    tot = [sum(d["pixels"].values()) for _, d, _ in cols]
    row(
        "windows, total (share of naive)",
        [f"{count(t)} ({percent(t, naive_of(d, nv)['pixels'][1])})" for t, (_, d, nv) in zip(tot, cols)],
    )
    if all(d.get("tiles") for _, d, _ in cols):  # fcn: its work is tiles, not windows
        for lv, label in LEVEL_LABELS:
            row(
                f"fcn tiles, {label}",
                [
                    MISSING
                    if lv not in d["tiles"]
                    else f"{count(d['tiles'][lv], 1)} ({percent(d['tiles'][lv], naive_of(d, nv)['tiles'][1])})"
                    for _, d, nv in cols
                ],
            )
        tt = [sum(d["tiles"].values()) for _, d, _ in cols]
        row(
            "fcn tiles, total (share of naive)",
            [f"{count(t, 1)} ({percent(t, naive_of(d, nv)['tiles'][1])})" for t, (_, d, nv) in zip(tt, cols)],
        )
    for lv, label in LEVEL_LABELS:
        row(
            f"wall s per image, {label}",
            [fixed(d["level_seconds"].get(lv), 2) for _, d, _ in cols],
        )
    row("wall s per image, total", [fixed(d["seconds"], 2) for _, d, _ in cols])
    row(
        "windows saved",
        [_saved(t, naive_of(d, nv)["pixels"][1]) for t, (_, d, nv) in zip(tot, cols)],
        ("about 85% (abstract)", MISSING),
    )
    if all(d.get("tiles") for _, d, _ in cols):
        row("fcn tiles saved", [_saved(t, naive_of(d, nv)["tiles"][1]) for t, (_, d, nv) in zip(tt, cols)])
    mixed = {h: n for (h, d, nv) in cols if not nv and (n := len(sessions(d) | sessions(d["naive"]))) != 1}
    row(
        "wall time saved",
        [
            _saved(d["seconds"], naive_of(d, nv)["seconds"]) + (" (not side by side)" if h in mixed else "")
            for h, d, nv in cols
        ],
        ("75% on one image (blog)", MISSING),
    )
    head = ["", *(h for h, _, _ in cols), "published RADHicaL", "published naive"]
    if mixed:
        timing = (
            "- Not side by side: "
            + "; ".join(f"{h}: its levels and the naive run's were timed in {n} sessions" for h, n in mixed.items())
            + " (a resumed run, or levels reused from an earlier one); their wall times are not like for like."
        )
    else:
        timing = (
            "- Wall times side by side: every run of an image (each RADHicaL run, then the naive run) before the "
            "next image, in one process, the level nets set up before timing (cascade.Cascade.run_interleaved)."
        )
    return document(
        f"### RADHicaL against the naive level-1 run (fold {fold} level models, {n_images} test image(s))",
        pipe_table(head, table),
        [
            "Thresholds (lower L1,L2,L3,L4 / upper U2,U3,U4): "
            + "; ".join(f"{c}: {rows[c]['thresholds']}" for c in rows)
            + ".",
            *(f"- {n}" for n in notes),
            timing,
        ],
    )
