"""RADHicaL's demo cohort (the cascade fold's test images cropped for the exact engine), the cascade's
runs side by side image by image, and the table's like-for-like wall times."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pipeline import folds, nuclei
from pipeline.usecases.radhical import cascade, demo, table
from tests.test_radhical import random_level_models


def test_representative_window_by_hand():
    m = np.zeros((8, 8), dtype=bool)
    m[0:4, 0:4] = True  # a quarter of the pixels annotated
    # 4x4 windows at rows and cols 0, 2, 4: (0, 0) holds 16/16, (0, 2) and (2, 0) 8/16, (2, 2) 4/16 = the
    # whole mask's quarter
    assert demo.representative_window(m, 4, step=2) == (2, 2)
    one = np.zeros((8, 8), dtype=bool)
    one[7, 7] = True  # 1/64 annotated: the empty windows (closer to 1/64 than 1/16 is) are not taken, the one
    # holding it (1/16) is, flush with the bottom-right corner
    assert demo.representative_window(one, 4, step=3) == (4, 4)
    assert demo.representative_window(np.zeros((8, 8)), 4) == (0, 0)  # nothing annotated: the first window
    try:
        demo.representative_window(np.zeros((3, 9)), 4)
    except ValueError as exc:
        assert "a 3x9 mask has no 4x4 window" in str(exc)
    else:
        raise AssertionError("a mask smaller than the window must be refused")


def test_demo_cohort_crops_the_folds_test_images_once(tmp_path):
    folder = tmp_path / "cohort"
    nuclei.make_cohort(tmp_path / "whole", n_patients=10, size=120, seed=3)  # the same images, uncropped
    demo.make_cohort(folder, seed=3, fold=2, test_size=64, n_patients=10, size=120)
    patients = sorted(nuclei.images_by_patient(folder))
    # the folds stage's assignment (folds.assign_folds of the sorted IDs, the run's seed): fold 2's two patients
    assignment = folds.assign_folds(patients, 5, 3)
    test = [p for p in patients if assignment[p] == 2]
    assert demo.test_patients(patients, 3, 2) == test and len(test) == 2
    for p in patients:
        img = folder / f"{p}_500_f00001_original.tif"
        rgb, mask = np.asarray(Image.open(img)), Image.open(nuclei.mask_path(img))
        whole = tmp_path / "whole" / img.name
        wrgb = np.asarray(Image.open(whole))
        wmask = np.asarray(Image.open(nuclei.mask_path(whole)).convert("L")) > 0
        if p in test:  # cropped to the representative 64x64 window, image and mask alike; the mask stays 1-bit
            r, c = demo.representative_window(wmask, 64)
            assert rgb.shape == (64, 64, 3) and mask.mode == "1"
            assert np.array_equal(rgb, wrgb[r : r + 64, c : c + 64])
            assert np.array_equal(np.asarray(mask.convert("L")) > 0, wmask[r : r + 64, c : c + 64])
            assert wmask[r : r + 64, c : c + 64].any()
        else:  # training images keep their size
            assert np.array_equal(rgb, wrgb)
    # made once: a second call changes nothing; another count is refused in one line
    before = {q.name: q.stat().st_mtime_ns for q in folder.iterdir()}
    demo.make_cohort(folder, seed=3, fold=2, test_size=64, n_patients=10, size=120)
    assert {q.name: q.stat().st_mtime_ns for q in folder.iterdir()} == before
    try:
        demo.make_cohort(folder, seed=3, n_patients=25)
    except ValueError as exc:
        assert "a generated cohort of 10 images (an earlier demo); this demo makes 25" in str(exc)
    else:
        raise AssertionError("a cohort of another count must be refused")


def test_runs_side_by_side_image_by_image(tmp_path):
    made = nuclei.make_cohort(tmp_path / "data", n_patients=2, size=40, seed=4)
    (tmp_path / "small").mkdir()
    for img in made:  # 20 x 20 crops (400 windows an image): the exact engine's cost stays small
        Image.fromarray(np.asarray(Image.open(img))[10:30, 10:30]).save(tmp_path / "small" / img.name)
    images = sorted((tmp_path / "small").glob("*_original.tif"))
    random_level_models(tmp_path)
    models = cascade.level_models(tmp_path, 1, 1)

    def make(root: str) -> cascade.Cascade:
        return cascade.Cascade(models, cascade.Options(mode="exact"), tmp_path / root, tmp_path / "models", False)

    runs = [("published", cascade.PUBLISHED, (4, 3, 2, 1)), ("naive", None, (1,))]
    side = make("side").run_interleaved(images, runs)
    alone = [make("alone").run(images[:1], n, t, levels=lv) for n, t, lv in runs]
    # the same outputs as the runs made one after the other (the first image)
    for a, b in zip(side, alone):
        for stem in b.images:
            for lv in a.levels:
                pa, pb = (cascade.prob_path(r.level_dir(lv), stem, lv) for r in (a, b))
                assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)))
                assert a.images[stem][lv]["computed"] == b.images[stem][lv]["computed"]

    # image by image: every run of the first image is finished before any level of the second starts
    def written(res: cascade.RunResult, stem: str) -> list[int]:
        return [(res.level_dir(lv) / f"{stem}_{lv}.json").stat().st_mtime_ns for lv in res.levels]

    first, second = (img.name[:-4] for img in images)
    assert max(t for r in side for t in written(r, first)) <= min(t for r in side for t in written(r, second))
    # one session timed them all; the other folder's runs were another session
    assert len({st["session"] for r in side for per in r.images.values() for st in per.values()}) == 1
    assert side[0].images[first][1]["session"] != alone[0].images[first][1]["session"]
    assert json.loads((tmp_path / "side" / "naive.json").read_text())["images"][first]["1"]["computed"] == 20 * 20


def _graded(seconds: float, sessions: list[str]) -> dict:
    """A graded run as runner.grade_run makes it (only what the table reads)."""
    return {
        "scores": {"f_score": 0.5},
        "lower1": 0.5,
        "pixels": {1: 100.0} if len(sessions) == 1 else {4: 1.0, 3: 4.0, 2: 10.0, 1: 25.0},
        "level_seconds": {1: seconds},
        "tiles": None,
        "seconds": seconds,
        "images": [{"levels": {str(i): {"session": s} for i, s in enumerate(sessions)}}],
    }


def test_table_says_whether_wall_times_were_side_by_side():
    row = {**_graded(2.0, ["a", "a"]), "thresholds": "t", "chosen_on": "c", "naive": _graded(8.0, ["a"])}
    md = table.markdown({"radhical (x)": row}, 1, 1, [])
    # windows: 40 of the naive run's 100, so 60% saved; wall time 2 s of 8 s: 75% saved
    assert "| windows saved | 60.0% | 0.0% |" in md and "| wall time saved | 75.0% | 0.0% |" in md
    assert "- Wall times side by side:" in md and "Not side by side" not in md
    row["naive"] = _graded(8.0, ["b"])  # the naive run timed in another session (a resumed run)
    md = table.markdown({"radhical (x)": row}, 1, 1, [])
    assert "| wall time saved | 75.0% (not side by side) | 0.0% |" in md
    assert "- Not side by side: radhical (x), P1 > 0.5: its levels and the naive run's were timed in 2 sessions" in md
