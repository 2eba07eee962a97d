"""The side by side's table (Markdown) and report page (``WORK/report/index.html``) from ``comparison.json``.

Three tables: scores of the same test pixels (class map and validation-thresholded rows of both
sides), the paired per-image comparison, and like-for-like costs (data preparation over the same
images, training per epoch-equivalent, inference of the same images with the same threads, budgets,
sizes). The page adds both sides' maps of one test image side by side.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import atomic, inference
from pipeline.report import Cell, Column, Content, Page, Picture, Row, Section, Table, build, from_json
from pipeline.report.mdtable import MISSING, count, document, fixed, pipe_table
from pipeline.report.pictures import COLOURS, pick_examples
from pipeline.usecases import epi

log = logging.getLogger(__name__)

SIDES = (("caffe", "Caffe use case 2"), ("unet", "U-Net"))


def _interval(q: dict) -> str:
    """The bootstrap 95% interval of a paired comparison ("[-0.0123, +0.0456]")."""
    return MISSING if not q["ci95"] else f"[{fixed(q['ci95'][0], signed=True)}, {fixed(q['ci95'][1], signed=True)}]"


def model_text(r: dict, side: str) -> str:
    """Which model a side's maps come from, with its epoch or iteration."""
    p = r["protocol"]
    if side == "caffe":
        return p["caffe_model"]
    m = p["unet_model"]
    held = "held-out" if not p["validation_in_training"] else "trained-on"
    if m["choice"] == "best":
        return f"best epoch {m['epoch']} of {p['unet_epochs']} (lowest loss on the {held} validation patients)"
    return f"last epoch ({m['epoch']})"


def per_mp(t: dict | None, key: str = "seconds") -> float | None:
    return None if not t or not t.get("megapixels") else t[key] / t["megapixels"]


def cost_rows(r: dict) -> list[dict]:
    """Per side: data preparation, budgets, training per epoch-equivalent, inference, size."""
    t, out = r["timings"], []
    for side, name in SIDES:
        prep, train, infer = t.get(f"{side}_prep") or {}, t.get(f"{side}_train") or {}, t.get(f"{side}_infer") or {}
        b = r["budgets"][side]
        samples, per_epoch = train.get("samples"), train.get("train_samples")
        epochs = samples / per_epoch if samples and per_epoch else None
        out.append(
            {
                "system": name,
                "prep_images": prep.get("images"),
                "prep_s": prep.get("seconds"),
                "prep_s_per_mp": per_mp(prep),
                "budget_published": (
                    f"{b['published_iterations']:,} iterations"
                    if side == "caffe"
                    else f"{b['published_epochs']} epochs"
                ),
                "budget_run": f"{b['iterations']:,} iterations" if side == "caffe" else f"{b['epochs']} epochs",
                "samples": samples,
                "sample_px": train.get("sample_pixels"),
                "epoch_equivalents": epochs,
                "train_s": train.get("seconds"),
                "s_per_epoch": train["seconds"] / epochs if epochs else None,
                "samples_per_s": samples / train["seconds"] if samples and train.get("seconds") else None,
                "infer_images": infer.get("images"),
                "threads": infer.get("threads"),
                "infer_mp_per_s": infer["megapixels"] / infer["seconds"] if infer.get("seconds") else None,
                "parameters": r["parameters"][side],
            }
        )
    return out


SCORE_HEADER = "system | model | rule | pixels | F | precision | recall | mean F per image"
PAIRED_HEADER = (
    "rule | images | mean F Caffe | mean F U-Net | mean difference | U-Net better / worse / tied | sign test p | "
    "bootstrap 95% interval"
)
COST_HEADER = (
    "system | data prep: images | s | s per input MP | budget published | budget this run | samples seen (pixels "
    "each) | epoch-equivalents | training (s) | s per epoch-equivalent | samples/s | inference: images | threads | "
    "input MP/s | parameters | weights (MB, float32)"
)


def markdown(r: dict) -> str:
    """The side-by-side tables."""
    p = r["protocol"]
    val_note = (
        "trained on by both sides too, as use case 2's published protocol did (`--val-in-training`; optimistic)"
        if p["validation_in_training"]
        else "held out of both sides' training (use case 2's published protocol trained on them: "
        "`--val-in-training` restores that for both)"
    )
    source = (
        "the float maps (.npy)"
        if p["score_from"] == "npy"
        else "the PNGs (Caffe's min-max scaled _prob.png, the U-Net's round(255 P))"
    )
    title = (
        f"### U-Net vs Caffe use case 2, fold {r['fold']}: {len(r['test_images'])} test images "
        f"({', '.join(r['test_images'])})"
    )
    protocol = (
        f"Validation images ({', '.join(r['validation_images'])}): {val_note}. They choose each side's "
        f"threshold (the P >= threshold rows){', and the U-Net epoch' if p['unet_model']['choice'] == 'best' else ''}. "
        f"Both sides scored from {source} on use case 2's 0.5x grid (the U-Net's maps resized as the masks are), "
        "with use case 2's pixel scoring (same masks, same pixels)."
    )
    scores = []
    for side, name in SIDES:
        s = r[side]
        for key, rule in (("class_map", "class map"), ("thresholded", f"P >= {s['threshold']:.2f} (from validation)")):
            per = [v[key] for v in s["per_image"].values() if v[key] is not None]
            c = s[key]
            scores.append(
                [name, model_text(r, side), rule, c["n"], *(fixed(c[k]) for k in ("f_score", "precision", "recall"))]
                + [fixed(float(np.mean(per)) if per else None)]
            )
    paired = []
    for key, rule in (("class_map", "class map"), ("thresholded", "P >= threshold")):
        q = r["paired"][key]
        paired.append(
            [rule, q["n"], fixed(q["mean_a"]), fixed(q["mean_b"]), fixed(q["mean_diff"], signed=True)]
            + [f"{q['wins']} / {q['losses']} / {q['ties']}", f"{q['sign_p']:.3g}", _interval(q)]
        )
    costs = [
        [x["system"], count(x["prep_images"]), fixed(x["prep_s"], 1), fixed(x["prep_s_per_mp"], 1)]
        + [x["budget_published"], x["budget_run"], f"{count(x['samples'])} ({count(x['sample_px'])})"]
        + [fixed(x["epoch_equivalents"], 2), fixed(x["train_s"], 1), fixed(x["s_per_epoch"], 1)]
        + [fixed(x["samples_per_s"], 1), count(x["infer_images"]), count(x["threads"])]
        + [fixed(x["infer_mp_per_s"], 3), count(x["parameters"]), fixed(x["parameters"] * 4 / 1e6, 2)]
        for x in cost_rows(r)
    ]
    u1 = r["unet_1x"]
    costs_text = (
        "Data preparation over the same images (every image of the cohort): Caffe's patches (one process "
        f"per core) and fold {r['fold']}'s LevelDBs and mean; the U-Net's pytables (training and validation) "
        "plus a pytable of the test images built only for this timing. An epoch-equivalent is one pass over the side's "
        "training samples (Caffe: patches of its training list; U-Net: tiles of its training pytable, one "
        "random crop each); training time includes each side's test or validation passes. Inference: "
        "the test and validation images on both sides. Training and inference with the same number of CPU "
        "threads on both sides. "
        f"The U-Net's class map on its own 1x grid: F {fixed(u1['f_score'])} over {u1['n']} pixels."
    )
    generated = (
        "GENERATED cohort and demo budgets: the figures show that both pipelines run under one protocol, "
        "nothing about epithelium."
    )
    return document(
        title,
        protocol,
        pipe_table(SCORE_HEADER.split(" | "), scores),
        "Paired over the test images (per-image F, U-Net minus Caffe; exact two-sided sign test over the "
        "images that differ; percentile bootstrap 95% interval of the mean difference, 10,000 resamples; "
        "with n images the sign test cannot go below 2/2^n and the interval only spans the n differences, "
        "so a few images say little):",
        pipe_table(PAIRED_HEADER.split(" | "), paired),
        pipe_table(COST_HEADER.split(" | "), costs),
        [costs_text] + ([generated] if p.get("demo") else []),
    )


# --------------------------------------------------------------------------- report page


def _tables(r: dict) -> list[Table]:
    J = "comparison.json"
    score_cols = [
        Column("model", "model"),
        Column("rule", "rule"),
        Column("n", "pixels", 0),
        Column("f", "F"),
        Column("p", "precision"),
        Column("r", "recall"),
    ]
    rows = []
    for side, name in SIDES:
        s = r[side]
        for key, rule in (("class_map", "class map"), ("thresholded", f"P ≥ {s['threshold']:.2f} (from validation)")):
            rows.append(
                Row(
                    name,
                    {
                        "model": Cell(model_text(r, side)),
                        "rule": Cell(rule),
                        "n": from_json(r, J, side, key, "n"),
                        "f": from_json(r, J, side, key, "f_score"),
                        "p": from_json(r, J, side, key, "precision"),
                        "r": from_json(r, J, side, key, "recall"),
                    },
                )
            )
    pair_cols = [
        Column("n", "images", 0),
        Column("a", "mean F Caffe"),
        Column("b", "mean F U-Net"),
        Column("d", "mean difference"),
        Column("wlt", "U-Net better / worse / tied"),
        Column("p", "sign test p", 3),
        Column("ci", "bootstrap 95% interval"),
    ]
    prow = []
    for key, rule in (("class_map", "class map"), ("thresholded", "P ≥ threshold")):
        q = r["paired"][key]
        prow.append(
            Row(
                rule,
                {
                    "n": from_json(r, J, "paired", key, "n"),
                    "a": from_json(r, J, "paired", key, "mean_a"),
                    "b": from_json(r, J, "paired", key, "mean_b"),
                    "d": from_json(r, J, "paired", key, "mean_diff"),
                    "wlt": Cell(f"{q['wins']} / {q['losses']} / {q['ties']}"),
                    "p": from_json(r, J, "paired", key, "sign_p"),
                    "ci": Cell(_interval(q)),
                },
            )
        )
    cost_cols = [
        Column("prep_images", "data prep: images", 0),
        Column("prep_s_per_mp", "data prep: s per input MP", 1),
        Column("budget_run", "budget this run (published)"),
        Column("epoch_equivalents", "epoch-equivalents", 2),
        Column("s_per_epoch", "training s per epoch-equivalent", 1),
        Column("infer_mp_per_s", "inference input MP/s", 3),
        Column("threads", "threads", 0),
        Column("parameters", "parameters", 0),
    ]
    crow = []
    for x in cost_rows(r):
        cells = {c.key: Cell(x[c.key]) for c in cost_cols}
        cells["budget_run"] = Cell(f"{x['budget_run']} ({x['budget_published']})")
        crow.append(Row(x["system"], cells))
    return [
        Table(score_cols, rows, caption="The same test pixels, masks and scoring on both sides.", corner="system"),
        Table(pair_cols, prow, caption="Per-image F over the same test images, U-Net minus Caffe.", corner="rule"),
        Table(cost_cols, crow, caption="Costs, like with like (see comparison.md for every column).", corner="system"),
    ]


def side_by_side(
    image: np.ndarray,
    truth: np.ndarray,
    probs: dict[str, np.ndarray],
    f: dict[str, float | None],
    title: str,
    path: Path,
) -> Path:
    """The image with the true epithelium outlined, then each side's P(epithelium) with its class map
    (P >= 0.5 of the map shown, dashed) and the truth (solid) outlined; one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from skimage.measure import find_contours

    def outline(ax, mask, key, style):
        for c in find_contours(np.pad(mask.astype(np.float32), 1), 0.5):
            ax.plot(c[:, 1] - 1, c[:, 0] - 1, style, color=COLOURS[key], linewidth=1.4)

    fig = Figure(figsize=(12, 4.6), dpi=100)
    *axes, cax = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 0.05]})
    axes[0].imshow(image)
    outline(axes[0], truth, "truth", "-")
    axes[0].set_title("H&E (0.5x) and the true epithelium", fontsize=10)
    for ax, (side, name) in zip(axes[1:], SIDES):
        im = ax.imshow(probs[side], vmin=0, vmax=1, cmap="viridis")
        outline(ax, truth, "truth", "-")
        outline(ax, probs[side] >= 0.5, "prediction", "--")
        ax.set_title(f"{name}: P(epithelium), F {fixed(f.get(side), 3)}", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, cax=cax)
    fig.legend(
        handles=[
            Line2D([], [], color=COLOURS["truth"], linestyle="-", label="ground truth"),
            Line2D([], [], color=COLOURS["prediction"], linestyle="--", label="class map (P ≥ 0.5)"),
        ],
        loc="lower center",
        ncol=2,
        frameon=False,
    )
    fig.suptitle(title, fontsize=11)
    with atomic.atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def write_report(work: Path, r: dict, maps: dict[str, Path], images: dict[str, Path]) -> Path:
    """``WORK/report/index.html``: the tables and both sides' maps of one test image (the median of
    Caffe's class-map F) side by side. ``maps``: the folders of each side's ``<stem>_prob.npy`` on
    use case 2's grid; ``images``: the test images by name."""
    factor = epi.Params().resize
    scored = [(n, v["class_map"]) for n, v in r["caffe"]["per_image"].items()]
    picks = dict((label, n) for label, n in pick_examples(scored))
    name = picks.get("median") or next(iter(picks.values()), None) or r["test_images"][0]

    def content(pictures: Path) -> Content:
        pics = []
        img = images[name]
        if img.is_file():
            probs = {side: np.load(Path(maps[side]) / f"{img.stem}_prob.npy")[..., 1] for side, _ in SIDES}
            image = inference.load_resized(img, factor)
            truth = epi.truth_mask(img, factor)
            h = min(a.shape[0] for a in (image, truth, *probs.values()))
            w = min(a.shape[1] for a in (image, truth, *probs.values()))
            f = {side: r[side]["per_image"][name]["class_map"] for side, _ in SIDES}
            file = f"side_by_side_{img.stem}.png"
            title = f"Fold {r['fold']}, test image {name}: the same pixels through both systems"
            side_by_side(
                image[:h, :w], truth[:h, :w], {k: v[:h, :w] for k, v in probs.items()}, f, title, pictures / file
            )
            pics.append(
                Picture(
                    file,
                    title + ". Left: the image at use case 2's 0.5x and the true epithelium (solid green). Middle "
                    "and right: each system's P(epithelium) on that grid (viridis, 0 to 1) with its class map "
                    "(dashed yellow) and the truth (solid green); F of each class map in the titles.",
                )
            )
        text = markdown(r).split("\n\n")[1]  # the protocol paragraph
        return Content(
            sections=[
                Section("U-Net beside Caffe use case 2", text=text, tables=_tables(r)),
                Section("One test image, both systems", pictures=pics),
            ]
        )

    page = Page(
        title=f"The U-Net beside Caffe use case 2, fold {r['fold']}",
        generated="The data are GENERATED images: the numbers show the pipelines work, nothing about epithelium."
        if r["protocol"].get("demo")
        else "",
        facts=[
            ("test images", ", ".join(r["test_images"])),
            ("validation images", ", ".join(r["validation_images"])),
            ("table", "comparison.md (comparison.json)"),
        ],
        results=False,
    )
    return build(work, page, content)
