"""Use case 1's regression against the five released models, patch and pixel level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline import atomic, classify, inference, metrics, nuclei, nuclei_grading, sampling
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.nuclei.patches import Params, class_masks, load_pair
from pipeline.usecases.nuclei.scores import segmentation


def patch_set(images: list[Path], p: Params, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Step 1's patches of ``images`` at rotation 0 (positives, edge, background as sampled for
    training): N x 32 x 32 x 3 float RGB [0, 1] and labels (1 = nucleus)."""
    wins, labels = [], []
    for i, img in enumerate(images):
        io, mask = load_pair(img)
        masks = class_masks(io, mask, p)
        rng = np.random.RandomState(seed * 100003 + i)
        npos = 0
        for key, label, cap in (("positive", 1, p.max_positive), ("edge", 0, None), ("background", 0, None)):
            cap = cap if cap is not None else npos * (p.ratio_edge if key == "edge" else p.ratio_background)
            r, c = sampling.sample_centres(masks[key], cap, rng, io.shape[:2])
            npos = len(r) if key == "positive" else npos
            wins += [sampling.cut_patch(io, int(a), int(b), 0) for a, b in zip(r, c)]
            labels += [label] * len(r)
    if not wins:
        raise ValueError("regress --usecase nuclei: no patches in the given images (empty masks?)")
    return np.stack(wins).astype(np.float32) / 255, np.array(labels)


def regress_models(
    models: list[tuple[str, Path, Path]],
    images: list[Path],
    out: Path,
    p: Params,
    mode: str,
    gpu: bool = False,
    threshold: float = 0.5,
) -> dict:
    """Each model (name, caffemodel, mean) on the same images: patch level (step 1's patches, window
    and mirror averaged) and pixel level (step-5 maps with ``mode``, P(nucleus) > threshold, holes
    filled, graded per nucleus). Writes ``regress_nuclei.{json,md}`` into ``out``."""
    out = Path(out)
    wins, labels = patch_set(images, p)
    rows = []
    for name, model, mean in models:
        for f in (model, mean):
            if not Path(f).is_file():
                raise FileNotFoundError(f"{f}: missing (python -m pipeline fetch-released --usecase nuclei)")
        prob = classify.PatchClassifier(model, mean, gpu=gpu, net_dir=out).predict(wins)
        patch = metrics.scores(metrics.confusion(labels, prob.argmax(1) == 1))
        engine = inference.make_engine(mode, model, mean, gpu=gpu, net_dir=out)
        grades = [
            nuclei_grading.grade_single_image(
                nuclei.read_mask(nuclei.mask_path(img)).values,
                segmentation(
                    engine.run(inference.load_resized(img, 1.0), inference.Options(all_pixels=True)), threshold
                ),
            )
            for img in images
        ]
        rows.append({"model": name, "patch": patch, "pixel": nuclei_grading.summarize(grades)})
    report = {"images": [i.name for i in images], "patches": int(len(labels)), "mode": mode, "rows": rows}
    atomic.write_text(out / "regress_nuclei.json", json.dumps(report, indent=1))
    atomic.write_text(out / "regress_nuclei.md", markdown(report, threshold))
    return report


def markdown(report: dict, threshold: float) -> str:
    """The regression table of ``report`` (``regress_nuclei.json``): per model, patch and per-nucleus
    scores; ``threshold``: the P(nucleus) the maps were segmented at."""
    rows = [
        [r["model"], *(fixed(r["patch"][k]) for k in ("f_score", "balanced_accuracy", "accuracy"))]
        + [fixed(r["pixel"][k]) for k in ("detection_rate", "f_score", "tpr", "ppv")]
        for r in report["rows"]
    ]
    header = "model | patch F | patch balanced acc. | patch acc. | nucleus detection rate | nucleus F | TPR | PPV"
    return document(
        f"Use case 1 (nuclei): {report['patches']} patches (step 1, rotation 0) and {len(report['images'])} "
        f"image(s), maps with the {report['mode']} engine, P(nucleus) > {threshold:g}",
        pipe_table(header.split(" | "), rows),
    )
