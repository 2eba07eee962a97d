"""``python -m pipeline regress --usecase mitosis``: the five released second-stage models (and
``--ours``) on the same frames, as detections.

Each model's step-5 map of each frame (``--mode``, default fcn; frames resized by 0.5 as step 5
did) is encoded as the original's min-max scaled ``_prob.png`` and searched for peaks
(:mod:`pipeline.usecases.mitosis.detection`); frames with a ``_pc.png`` are also scored. The table
gives, per model: detections, tp, fp, fn, F and the mean P(mitosis). The stage-1 models were
never released, so only the second stage can be regressed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline import artefacts, atomic, inference
from pipeline.detection import match_detections, to_original_scale
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.mitosis import detection
from pipeline.usecases.mitosis.sampling import SCALE

NOT_FRAMES = ("_pc", "_cmask", "_prob", "_class", "_mask")


def released_models(folder: Path) -> list[tuple[str, Path, Path]]:
    """(label, model, mean) of the five released folds in ``folder`` (uc5-mitosis); FileNotFoundError naming a missing one."""
    out = []
    for k in range(1, 6):
        m = artefacts.released_model(folder, k, artefacts.SNAPSHOT_2ND)
        mean = artefacts.released_mean(folder, artefacts.second_stage(k))
        for f in (m, mean):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: released file missing (mount ../shared/released or pass --released DIR)")
        out.append((f"released fold {k}", m, mean))
    return out


def frames_of(items: list[str]) -> list[Path]:
    """The frames among files, globs and folders (annotations and maps left out)."""
    return [p for p in inference.expand_inputs(items) if not p.stem.endswith(NOT_FRAMES)]


def detect_all(
    models: list[tuple[str, Path, Path]], frames: list[Path], out: Path, mode: str = "fcn", gpu: bool = False
) -> list[dict]:
    """One row per model: detections over ``frames``, tp/fp/fn against the frames' _pc.png, mean P(mitosis)."""
    opts = inference.Options()
    images = {f: inference.load_resized(f, SCALE) for f in frames}
    rows = []
    for label, model, mean in models:
        engine = inference.make_engine(mode, model, mean, gpu=gpu, net_dir=out / "nets")
        row = {"model": label, "file": model.name, "frames": len(frames), "detections": 0, "tp": 0, "fp": 0, "fn": 0}
        psum = 0.0
        for f, img in images.items():
            prob = engine.run(img, opts)
            green = inference.encode_outputs(prob)[0][..., 1].astype(np.float64) / 255.0
            found = detection.peaks(green)
            row["detections"] += len(found)
            psum += float(prob[..., 1].mean())
            s = match_detections(to_original_scale(found, SCALE), detection.true_centres(f), detection.MATCH_RADIUS)
            for k in ("tp", "fp", "fn"):
                row[k] += s[k]
        d = 2 * row["tp"] + row["fp"] + row["fn"]
        row["f_score"] = 2 * row["tp"] / d if d else None
        row["mean_p"] = psum / max(1, len(frames))
        rows.append(row)
    return rows


def run(args: argparse.Namespace, released_dir: Path, folder: str) -> dict:
    """The regression of ``regress --usecase mitosis``; writes regress.json and regress.md into ``--out``."""
    rd = released_dir / folder if (released_dir / folder).is_dir() else released_dir
    frames = frames_of(args.images)
    if not frames:
        raise ValueError(
            "regress --usecase mitosis needs --images (frames <pp>_<ff>.tif, _pc.png beside them to score)"
        )
    if len(args.ours_mean) != len(args.ours):
        raise ValueError("give one --ours-mean per --ours model (WORK/DB_train_w32_<k>_2nd.binaryproto)")
    models = released_models(rd) + [
        (f"ours {Path(m).name}", Path(m), Path(mm)) for m, mm in zip(args.ours, args.ours_mean)
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = detect_all(models, frames, out, args.mode, args.gpu)
    atomic.write_text(
        out / "regress.json", json.dumps({"usecase": "mitosis", "mode": args.mode, "rows": rows}, indent=1)
    )
    atomic.write_text(out / "regress.md", markdown({"mode": args.mode, "rows": rows}, len(frames)))
    return {"table": str(out / "regress.md"), "rows": rows}


def markdown(report: dict, n_frames: int) -> str:
    """The regression table of ``report`` (``regress.json``: ``mode``, ``rows``) over ``n_frames`` frames:
    per model, detections, matches and mean P(mitosis)."""
    rows = [
        [r["model"], r["detections"], r["tp"], r["fp"], r["fn"], fixed(r["f_score"]), fixed(r["mean_p"])]
        for r in report["rows"]
    ]
    return document(
        f"Use case 5, mode {report['mode']}: {n_frames} frame(s); detections by the invented peak rule "
        f"(disk {detection.PEAK_DISK}, threshold {detection.PEAK_THRESHOLD}, clearing {detection.PEAK_CLEAR_RADIUS:g} px "
        f"at 0.5x), matched within {detection.MATCH_RADIUS:g} px at 40x",
        pipe_table(["model", "detections", "tp", "fp", "fn", "F-score", "mean P(mitosis)"], rows),
    )
