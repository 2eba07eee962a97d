"""The per-level two-threshold search (DLLevelTutorial/find_per_level_2thresh.m, get_masks_2thresh_3class.m).

On validation images whose every level was computed in full (``-b``), get_masks simulates the
cascade with MATLAB's rule (:mod:`.rules`, ``matlab``), the final mask's holes are filled and it is
graded per nucleus (:mod:`pipeline.nuclei_grading`). One threshold is varied at a time over
``linspace(0, 1, 32)`` with the ones already chosen fixed, in the blog's order: L1 (with lower
[t 0 0 0], upper [-1 1 1 1]: the naive score), then U2, L2, U3, L3, U4, L4. The score of a
threshold is ``nanmean`` over images of the mean per-nucleus F-score; its cost is the pixels
computed at all levels (get_masks' nnz_comp) as a fraction of the pixels of level 1.

The original picked each value by eye from a plot of F against the threshold. Here every step is
plotted (F against the computed fraction) and picked automatically: the least computation among
the thresholds whose F is within ``tolerance`` of the best F that fits the compute ``budget``
(the best F overall when none fits); an upper threshold of 0 is never picked (it would accept
every pixel in the default cascade, whose rule is ``>=``: quirk Q6). The published thresholds are
evaluated at each step too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic, nuclei_grading
from pipeline.usecases.radhical import rules
from pipeline.usecases.radhical.cascade import PUBLISHED, Thresholds

log = logging.getLogger(__name__)

#: The search's steps in the blog's order: (which threshold, level).
STEPS = (("lower", 1), ("upper", 2), ("lower", 2), ("upper", 3), ("lower", 3), ("upper", 4), ("lower", 4))
#: The starting point of the first step (find_per_level_2thresh.m line 44).
START = Thresholds((0.0, 0.0, 0.0, 0.0), (-1.0, 1.0, 1.0, 1.0))


@dataclass
class Validation:
    """One validation image: its full outputs per level (H_l x W_l x 3 float, as im2double of the
    _prob.png) and its annotation (H x W, non-zero = nucleus)."""

    name: str
    probs: dict[int, np.ndarray]
    truth: np.ndarray


def get_masks(
    probs: dict[int, np.ndarray], t: Thresholds, memo: dict | None = None
) -> tuple[np.ndarray, dict[int, int], int]:
    """get_masks_2thresh_3class on full outputs: (final mask before hole filling, nnz_comp per
    level, numel of level 1). ``memo`` caches the coarser levels' masks between calls."""
    memo = {} if memo is None else memo
    computed = accepted = None
    nnz: dict[int, int] = {}
    for lv in (4, 3, 2, 1):
        io = probs[lv]
        key = (lv, t.lower[lv:], t.upper[lv:])
        if key not in memo:
            if lv == 4:
                memo[key] = (np.ones(io.shape[:2], bool), np.zeros(io.shape[:2], bool))
            else:
                prev_key = (lv + 1, t.lower[lv + 1 :], t.upper[lv + 1 :])
                pc, pa = memo[prev_key]
                comp_out, fixed_out = rules.matlab_out(probs[lv + 1], pc, pa, t.lower[lv], t.upper[lv])
                memo[key] = rules.matlab_pixels(comp_out, fixed_out, io.shape[:2])
        computed, accepted = memo[key]
        nnz[lv] = int(computed.sum())
    final = rules.final_mask(probs[1][:, :, 1], computed, accepted, t.lower[0], fill=False)
    return final, nnz, int(np.prod(probs[1].shape[:2]))


def evaluate(images: list[Validation], t: Thresholds, memos: list[dict]) -> dict:
    """Mean F (nanmean over images of the per-image mean per-nucleus F) and the computed fraction."""
    fs, comp, numel = [], 0, 0
    for im, memo in zip(images, memos):
        final, nnz, n1 = get_masks(im.probs, t, memo)
        g = nuclei_grading.grade_single_image(im.truth, rules.imfill_holes(final))
        fs.append(nuclei_grading.image_scores(g)["f_score"])
        comp += sum(nnz.values())
        numel += n1
    f = np.array(fs, dtype=np.float64)
    ok = ~np.isnan(f)
    return {"f_score": float(f[ok].mean()) if ok.any() else None, "computed_fraction": comp / numel if numel else None}


def _with(t: Thresholds, which: str, level: int, value: float) -> Thresholds:
    lo, up = list(t.lower), list(t.upper)
    (lo if which == "lower" else up)[level - 1] = float(value)
    return Thresholds(tuple(lo), tuple(up))  # type: ignore[arg-type]


def pick(points: list[dict], budget: float | None, tolerance: float, eligible=lambda p: True) -> tuple[int, bool]:
    """Index of the automatic pick among ``points`` ({"t", "f_score", "computed_fraction"}) and
    whether it fits the budget: the least computation within ``tolerance`` of the best F among the
    ``eligible`` points within ``budget`` (all eligible points when none is)."""
    ok = [i for i, p in enumerate(points) if p["f_score"] is not None and eligible(p)]
    if not ok:
        return 0, False
    fits = [i for i in ok if budget is None or points[i]["computed_fraction"] <= budget]
    pool = fits or ok
    best = max(points[i]["f_score"] for i in pool)
    near = [i for i in pool if points[i]["f_score"] >= best - tolerance]
    return min(near, key=lambda i: (points[i]["computed_fraction"], -points[i]["f_score"])), bool(fits)


def search(
    images: list[Validation],
    grid: int = 32,
    budget: float | None = None,
    tolerance: float = 0.005,
    show_progress: bool = True,
) -> dict:
    """The seven steps; returns {"steps": [...], "thresholds": chosen, "published": evaluation}."""
    from tqdm import tqdm

    if not images:
        raise ValueError("the threshold search needs at least one validation image")
    ts = np.linspace(0, 1, grid)
    t = START
    steps = []
    bar = tqdm(total=len(STEPS) * (grid + 1), desc="threshold search", unit="eval", disable=not show_progress)
    for which, level in STEPS:
        memos: list[dict] = [{} for _ in images]
        points = []
        for v in ts:
            points.append({"t": float(v), **evaluate(images, _with(t, which, level, v), memos)})
            bar.update(1)
        pub_v = (PUBLISHED.lower if which == "lower" else PUBLISHED.upper)[level - 1]
        published = {"t": pub_v, **evaluate(images, _with(t, which, level, pub_v), memos)}
        bar.update(1)
        # an upper threshold of 0 is never picked: the search's rule (P2 > 0) spares pixels whose P2
        # rounds to 0 in the PNG, but the default cascade (P2 >= 0) would accept every pixel
        i, fits = pick(points, budget, tolerance, (lambda p: p["t"] > 0) if which == "upper" else (lambda p: True))
        if budget is not None and not fits:
            log.warning(
                "threshold search, %s of level %d: no threshold computes at most %.1f%% of the pixels; took the best F",
                which,
                level,
                100 * budget,
            )
        t = _with(t, which, level, points[i]["t"])
        steps.append(
            {
                "which": which,
                "level": level,
                "points": points,
                "pick": i,
                "fits_budget": fits,
                "published": published,
                "thresholds_after": {"lower": list(t.lower), "upper": list(t.upper)},
            }
        )
        log.info(
            "search %s(%d) = %.4f: F %.4f, %.1f%% of pixels computed",
            which,
            level,
            points[i]["t"],
            points[i]["f_score"] or float("nan"),
            100 * (points[i]["computed_fraction"] or 0),
        )
    bar.close()
    return {
        "grid": grid,
        "budget": budget,
        "tolerance": tolerance,
        "images": [im.name for im in images],
        "steps": steps,
        "thresholds": {"lower": list(t.lower), "upper": list(t.upper)},
        "final": evaluate(images, t, [{} for _ in images]),
        "published_final": evaluate(images, PUBLISHED, [{} for _ in images]),
    }


def chosen(result: dict) -> Thresholds:
    """The thresholds a search picked."""
    return Thresholds(tuple(result["thresholds"]["lower"]), tuple(result["thresholds"]["upper"]))  # type: ignore[arg-type]


def write(result: dict, out_dir: Path) -> dict[str, Path]:
    """search.json, search.csv (every evaluated point) and search.png (a panel per step)."""
    out_dir = Path(out_dir)
    atomic.write_text(out_dir / "search.json", json.dumps(result, indent=1))
    rows = ["step,which,level,t,f_score,computed_fraction,picked"]
    for n, s in enumerate(result["steps"], start=1):
        for i, p in enumerate(s["points"]):
            rows.append(
                f"{n},{s['which']},{s['level']},{p['t']:.6f},{p['f_score']},{p['computed_fraction']},"
                f"{int(i == s['pick'])}"
            )
    atomic.write_text(out_dir / "search.csv", "\n".join(rows) + "\n")
    plot(result, out_dir / "search.png")
    return {"json": out_dir / "search.json", "csv": out_dir / "search.csv", "png": out_dir / "search.png"}


def plot(result: dict, path: Path) -> None:
    """F against the percentage of pixels computed, one panel per step; the pick and the published
    value marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    for ax, s in zip(axes.ravel(), steps):
        pts = [p for p in s["points"] if p["f_score"] is not None]
        fr = [p["computed_fraction"] for p in pts]
        # when the computation does not vary (the first step), F is drawn against the threshold
        by_t = bool(pts) and max(fr) - min(fr) < 0.005
        xof = (lambda p: p["t"]) if by_t else (lambda p: 100 * p["computed_fraction"])  # noqa: E731
        ax.plot(
            [xof(p) for p in pts],
            [p["f_score"] for p in pts],
            ".-",
            color="0.4",
            label="linspace(0, 1, %d)" % result["grid"],
        )
        for p in pts[:: max(1, len(pts) // 6)]:
            ax.annotate(f"{p['t']:.2f}", (xof(p), p["f_score"]), fontsize=7)
        c = s["points"][s["pick"]]
        if c["f_score"] is not None:
            ax.plot(xof(c), c["f_score"], "r*", ms=12, label=f"pick {c['t']:.3f}")
        pub = s["published"]
        if pub["f_score"] is not None:
            ax.plot(xof(pub), pub["f_score"], "bs", ms=7, label=f"published {pub['t']:g}")
        ax.set_title(f"level {s['level']}: {s['which']} threshold")
        ax.set_xlabel(
            f"threshold ({100 * fr[0]:.0f}% of level 1's pixels computed)" if by_t else "pixels computed, % of level 1"
        )
        ax.set_ylabel("mean per-nucleus F")
        ax.legend(fontsize=7)
    axes.ravel()[-1].axis("off")
    fig.suptitle("RADHicaL threshold search (validation images)")
    fig.tight_layout()
    with atomic.atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
