"""Whole-slide inference through OpenSlide on small pyramidal TIFFs of real tissue built here (no download).

The seam tests compute a slide tile by tile (tiles with their engine's context margin) and in one
piece, and require the same numbers (1e-6); with too small a margin they differ by about 0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import REPO_ROOT, inference, wsi
from pipeline.inference import Options
from pipeline.wsi import writer
from pipeline.wsi.store import TileStore
from tests.conftest import RELEASED, need
from tests.wsi_slides import tissue_canvas, write_slide


@pytest.fixture(scope="module")
def weights():
    d = need(RELEASED / "uc2-epi")
    return d / "1_caffenet_train_w32_iter_600000.caffemodel", d / "DB_train_w32_1.binaryproto"


@pytest.fixture(scope="module")
def engines(weights, caffe, tmp_path_factory):
    nets = tmp_path_factory.mktemp("nets")
    return {m: inference.make_engine(m, *weights, net_dir=nets) for m in ("exact", "fcn")}


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """Three slides of the same tissue: Aperio-like 20x (objective power and mpp); generic TIFF with mpp
    0.25 (40x) and levels 1 and 2 only; generic TIFF without any magnification."""
    d = tmp_path_factory.mktemp("slides")
    rgb = tissue_canvas((256, 224), fill=0.75)
    big = tissue_canvas((512, 448), fill=0.75)
    return {
        "aperio20": write_slide(d / "a20.svs", rgb, objective=20, mpp=0.5, downsamples=(1, 2, 4)),
        "small20": write_slide(d / "s20.svs", tissue_canvas((64, 56), fill=0.6), objective=20, downsamples=(1, 2)),
        "generic40": write_slide(d / "g40.tif", big, mpp=0.25, downsamples=(1, 2), layout="generic"),
        "bare": write_slide(d / "bare.tif", rgb, downsamples=(1, 2), layout="generic"),
    }


def tiled_and_whole(slide: Path, out: Path, engine, settings: wsi.Settings, weights, context: int | None = None):
    """(tiled, whole, plan): the slide computed tile by tile (through the store) and in one piece."""
    plan = wsi.make_plan(slide, out, settings, *weights)
    if context is not None:
        plan.context = context
    stats = wsi.process_tiles(plan, engine)
    assert stats["computed"] == len(plan.tiles) > 0
    h, w = plan.scale.shape
    store = TileStore(plan.tiles_dir)
    tiled = writer.gather(
        {(t.row, t.col): t for t in plan.tiles}, store, settings.tile, np.arange(h), np.arange(w), plan.n_classes
    )
    with wsi.Slide(slide) as s:
        img = wsi.read_model_pixels(s, plan, (0, h, 0, w))
    whole = engine.run(img, Options(all_pixels=True))
    whole[0], whole[:, 0] = 0, 0  # never computed, as the original
    return tiled, whole, plan


def computed(plan) -> np.ndarray:
    m = np.zeros(plan.scale.shape, bool)
    for t in plan.tiles:
        m[t.y0 : t.y1, t.x0 : t.x1] = True
    return m


@pytest.mark.parametrize(
    "case",
    [
        ("aperio20", "epi 10x: level 1 as it is", 10.0, 48, (1, 1.0, (128, 112))),
        ("generic40", "epi 10x from mpp 0.25: level 1 shrunk by 0.5", 10.0, 48, (1, 0.5, (128, 112))),
        ("small20", "lymphocytes 80x: level 0 enlarged 4x", 80.0, 80, (0, 4.0, (256, 224))),
    ],
    ids=lambda c: c[1],
)
def test_fcn_tiles_join_without_seams(case, slides, engines, weights, tmp_path):
    name, _, objective, tile, scale = case
    settings = wsi.Settings(model_objective=objective, mode="fcn", tile=tile)
    tiled, whole, plan = tiled_and_whole(slides[name], tmp_path, engines["fcn"], settings, weights)
    assert (plan.scale.level, plan.scale.factor, plan.scale.shape) == scale
    m = computed(plan)
    assert 0 < len(plan.tiles) < plan.grid_tiles  # the tissue mask skipped some tiles
    assert np.abs(tiled[m] - whole[m]).max() <= 1e-6
    assert (tiled[~m] == 0).all()
    np.testing.assert_allclose(tiled[1:, 1:][m[1:, 1:]].sum(axis=1), 1, atol=1e-5)


def test_fcn_tiles_with_the_window_margin_only_show_seams(slides, engines, weights, tmp_path):
    """The 16 px of the 32x32 window are not enough for fcn (it sees 37 px): the check above can fail."""
    settings = wsi.Settings(model_objective=10.0, mode="fcn", tile=40, tissue="none")
    tiled, whole, _ = tiled_and_whole(slides["aperio20"], tmp_path, engines["fcn"], settings, weights, context=16)
    assert np.abs(tiled - whole).max() > 1e-2


def test_exact_tiles_join_without_seams(slides, engines, weights, tmp_path):
    """The exact engine (the original's numbers) needs the window's 16 px: a 4x4 tile inside a 64x56
    slide (5x at level 2) against a larger region around it computed in one piece (exact is slow)."""
    settings = wsi.Settings(model_objective=5.0, mode="exact", tile=4, tissue="none")
    plan = wsi.make_plan(slides["aperio20"], tmp_path, settings, *weights)
    assert plan.scale.shape == (64, 56) and plan.scale.level == 2 and plan.context == 16
    tile = next(t for t in plan.tiles if (t.row, t.col) == (7, 6))  # rows 28..31, columns 24..27
    with wsi.Slide(slides["aperio20"]) as s:
        out = wsi.compute_tile(s, plan, engines["exact"], tile)
        region = wsi.read_model_pixels(s, plan, (10, 50, 6, 46))  # 18 px around the tile
    whole = engines["exact"].run(region, Options(all_pixels=True))[18:22, 18:22]
    assert np.abs(out - whole).max() <= 1e-6
    assert not np.allclose(out[0], out[1])  # not a constant patch


def test_pyramid_tiff_read_back_through_openslide(tmp_path):
    """write_pyramid: tiled levels 1, 2, 4 (nearest) read back by OpenSlide with the mpp set."""
    import openslide

    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, (70, 50, 3)).astype(np.uint8)
    levels = writer.write_pyramid(tmp_path / "p.tif", (70, 50), 3, lambda r, c: rgb[np.ix_(r, c)], mpp=2.0, tile=16)
    assert levels == [(70, 50), (35, 25), (18, 13), (9, 7)]
    s = openslide.OpenSlide(str(tmp_path / "p.tif"))
    assert s.level_dimensions == ((50, 70), (25, 35), (13, 18), (7, 9))
    assert float(s.properties["openslide.mpp-x"]) == pytest.approx(2.0)
    assert np.array_equal(np.asarray(s.read_region((0, 0), 0, (50, 70)))[:, :, :3], rgb)
    assert np.array_equal(np.asarray(s.read_region((0, 0), 2, (13, 18)))[:, :, :3], rgb[::4, ::4])


# ---------------------------------------------------------------- the command


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "pipeline", "infer-wsi", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and r.returncode:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}")
    return r


def model_args(weights, out: Path, *extra) -> list:
    return ["--model", weights[0], "--mean", weights[1], "--out", out, *extra]


def read_tiff(path: Path) -> np.ndarray:
    import openslide

    s = openslide.OpenSlide(str(path))
    w, h = s.level_dimensions[0]
    return np.asarray(s.read_region((0, 0), 0, (w, h)))[:, :, :3]


def test_cli_end_to_end_resume_after_kill_and_two_workers(slides, weights, engines, tmp_path):
    slide, epi = slides["aperio20"], ["--usecase", "epi", "--tile", "40"]
    # a run killed (SIGKILL: no clean-up) once its first tile is finished
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "infer-wsi", slide, *model_args(weights, out, *epi)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tiles = out / "a20" / "tiles"
    deadline = time.monotonic() + 300
    while not list(tiles.glob("*.npy")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    plan = json.loads((out / "a20" / "plan.json").read_text())
    before = len(list(tiles.glob("*.npy")))
    assert 1 <= before < len(plan["tiles"]) and not (out / "a20" / "summary.json").exists()
    # rerun with two workers: the finished tiles are kept, the dead worker's claim is taken over
    r = run_cli(slide, *model_args(weights, out, *epi, "--workers", "2"))
    s = json.loads((out / "a20" / "summary.json").read_text())
    assert len(list(tiles.glob("*.npy"))) == s["tiles"] == len(plan["tiles"])
    assert not list(tiles.glob(".*.lock*")) and not list(tiles.glob("*.partial*"))
    assert "a20.svs: done" in r.stdout and f"{s['tiles']} of {s['grid_tiles']} tiles" in r.stdout
    assert s["model_objective"] == 10.0 and s["level"] == 1 and s["factor"] == 1.0 and s["model_mpp"] == 1.0
    assert s["shape"] == [128, 112] and 0 < s["skipped_share"] < 1
    # the outputs: step 5's encoding of the one-piece result, where tiles were computed
    engine = engines["fcn"]
    with wsi.Slide(slide) as sl:
        p = wsi.make_plan(slide, out / "a20", wsi.Settings(model_objective=10.0, tile=40), *weights)
        whole = engine.run(wsi.read_model_pixels(sl, p, (0, 128, 0, 112)), Options(all_pixels=True))
    whole[0], whole[:, 0] = 0, 0
    m = computed(p)
    whole[~m] = 0
    prob_png, cls_png = inference.encode_outputs(whole)
    prob, cls = read_tiff(out / "a20" / "a20_prob.tif"), read_tiff(out / "a20" / "a20_class.tif")[:, :, 0]
    assert prob.shape == (128, 112, 3)
    assert np.abs(prob.astype(int) - prob_png).max() <= 1  # rounding of values within 1e-6
    assert (cls == cls_png).mean() > 0.999 and (prob[~m] == 0).all()
    from PIL import Image

    ov = np.asarray(Image.open(out / "a20" / "a20_overlay.png")).astype(int)
    assert ov.shape == (128, 112, 3)  # the model's magnification: under 2048 px a side
    assert (ov[~m][:, 0] == ov[~m][:, 1]).all()  # greyed where nothing was computed
    red = whole[:, :, 1] > 0.5
    assert red.any() and (ov[red & m][:, 0] > ov[red & m][:, 1]).all()  # tinted red where P(class 1) is high
    # a second rerun has nothing left to do; other options on the same folder are refused
    r = run_cli(slide, *model_args(weights, out, *epi))
    assert "0 tiles computed now" in r.stdout
    r = run_cli(slide, *model_args(weights, out, *epi, "--tissue", "grey"), check=False)
    assert r.returncode == 1 and "made with other options" in r.stderr and "tissue" in r.stderr
    assert "Traceback" not in r.stderr and "--force" in r.stderr
    assert (out / "a20" / "summary.json").is_file()  # refused: nothing touched
    # --force empties the folder and plans again with the new options
    run_cli(slide, *model_args(weights, out, *epi, "--tissue", "grey", "--force", "--plan-only"))
    assert json.loads((out / "a20" / "plan.json").read_text())["settings"]["tissue"] == "grey"
    assert not (out / "a20" / "summary.json").exists() and not (out / "a20" / "a20_prob.tif").exists()
    assert not tiles.exists() and not list((out / "a20").glob(".*.lock*"))


def test_cli_parts_of_a_job_array(slides, weights, tmp_path):
    """Part 0/2 leaves the slide incomplete (no outputs); part 1/2 finishes it and writes them."""
    slide, args = slides["aperio20"], ["--usecase", "epi", "--tile", "64"]
    r = run_cli(slide, *model_args(weights, tmp_path, *args, "--part", "0/2"))
    assert "tiles finished" in r.stdout and not (tmp_path / "a20" / "a20_prob.tif").exists()
    n = len(json.loads((tmp_path / "a20" / "plan.json").read_text())["tiles"])
    assert len(list((tmp_path / "a20" / "tiles").glob("*.npy"))) == n // 2
    r = run_cli(slide, *model_args(weights, tmp_path, *args, "--part", "1/2"))
    assert "a20.svs: done" in r.stdout and f"{n - n // 2} tiles computed now" in r.stdout
    assert (tmp_path / "a20" / "a20_prob.tif").is_file()


def test_cli_refuses_a_slide_without_magnification_unless_mpp(slides, weights, tmp_path):
    r = run_cli(slides["bare"], *model_args(weights, tmp_path, "--usecase", "epi", "--plan-only"), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "bare.tif" in r.stderr and "neither an objective power" in r.stderr and "--mpp" in r.stderr
    r = run_cli(slides["bare"], *model_args(weights, tmp_path, "--usecase", "epi", "--plan-only", "--mpp", "0.5"))
    assert "planned" in r.stdout and "112x128 model pixels, level 1, factor 1" in r.stdout


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "no such slide file"),
        (lambda p: (p.write_text("not a slide"), p)[1], "not a slide format OpenSlide reads"),
    ],
)
def test_cli_bad_slides_get_one_clear_line(make, message, weights, tmp_path):
    slide = make(tmp_path / "broken.svs")
    r = run_cli(slide, *model_args(weights, tmp_path / "out", "--usecase", "epi"), check=False)
    assert r.returncode == 1 and message in r.stderr and str(slide) in r.stderr and "Traceback" not in r.stderr
