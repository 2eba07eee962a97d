"""The headline table: RADHicaL against the naive level-1 run on the same test images, beside the
published figures (paper abstract, seed 002: .9407/.9854 detection rate, .8218/.8489 F-score,
.8061/.8364 TPR, .8822/.8932 PPV, computation reduced by about 85%)."""

from __future__ import annotations

from pipeline.usecases.base import Figure

#: The paper's figures (abstract), RADHicaL and naive, with the computation saved.
PUBLISHED = {
    "detection_rate": (0.9407, 0.9854),
    "f_score": (0.8218, 0.8489),
    "tpr": (0.8061, 0.8364),
    "ppv": (0.8822, 0.8932),
}
SAVED_PUBLISHED = "about 85% (time, paper abstract; 75% faster on one example image, blog)"
METRICS = (("detection_rate", "detection rate"), ("f_score", "F-score"), ("tpr", "TPR"), ("ppv", "PPV"))


def figures() -> tuple[Figure, ...]:
    """The published figures in the use-case shape."""
    out = []
    for key, (rad, naive) in PUBLISHED.items():
        out.append(Figure(key, rad, "paper", "RADHicaL, 141 ER+ BCa images (abstract)", variant="radhical"))
        out.append(Figure(key, naive, "paper", "naive 40x DL (abstract)", variant="naive"))
    return tuple(out)


def _f(v, nd: int = 4) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def _pct(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{100 * a / b:.1f}%"


def markdown(rows: dict, naive: dict, n_images: int, fold: int, notes: list[str]) -> str:
    """``rows``: column name -> {"scores", "pixels" {level: mean per image}, "seconds", "thresholds"};
    ``naive``: the same for the naive run. Means per test image."""
    cols = list(rows)
    head = "| | " + " | ".join(cols) + " | naive (level 1, every pixel) | published RADHicaL | published naive |"
    lines = [
        f"### RADHicaL against the naive level-1 run (fold {fold} level models, {n_images} test image(s))",
        "",
        head,
        "|" + "---|" * (len(cols) + 4),
    ]
    for key, label in METRICS:
        rad, nv = PUBLISHED[key]
        vals = " | ".join(_f(rows[c]["scores"].get(key)) for c in cols)
        lines.append(f"| {label} | {vals} | {_f(naive['scores'].get(key))} | {rad:.4f} | {nv:.4f} |")
    naive_px = naive["pixels"][1]
    for lv, label in ((4, "level 4 (x0.1)"), (3, "level 3 (x0.25)"), (2, "level 2 (x0.5)"), (1, "level 1 (x1)")):
        vals = " | ".join(
            f"{rows[c]['pixels'].get(lv, 0):,.0f} ({_pct(rows[c]['pixels'].get(lv, 0), naive_px)})" for c in cols
        )
        nv = f"{naive['pixels'].get(lv, 0):,.0f}" if lv == 1 else "–"
        lines.append(f"| windows computed, {label} | {vals} | {nv} | | |")
    tot = {c: sum(rows[c]["pixels"].values()) for c in cols}
    lines.append(
        "| windows computed, total | "
        + " | ".join(f"{tot[c]:,.0f} ({_pct(tot[c], naive_px)})" for c in cols)
        + f" | {naive_px:,.0f} (100%) | | |"
    )
    lines.append(
        "| wall time per image (s) | "
        + " | ".join(f"{rows[c]['seconds']:.2f}" for c in cols)
        + f" | {naive['seconds']:.2f} | | |"
    )
    lines.append(
        "| computation saved (windows) | "
        + " | ".join(f"{100 * (1 - tot[c] / naive_px):.1f}%" if naive_px else "–" for c in cols)
        + " | 0% | | |"
    )
    lines.append(
        "| computation saved (time) | "
        + " | ".join(
            f"{100 * (1 - rows[c]['seconds'] / naive['seconds']):.1f}%" if naive["seconds"] else "–" for c in cols
        )
        + f" | 0% | {SAVED_PUBLISHED} | |"
    )
    lines += [
        "",
        "Thresholds (lower L1,L2,L3,L4 / upper U2,U3,U4): "
        + "; ".join(f"{c}: {rows[c]['thresholds']}" for c in cols)
        + ".",
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
