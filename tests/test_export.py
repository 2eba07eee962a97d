"""GeoJSON for QuPath (issue 29): exact polygons and points, mapped back through step 5's resize as
the scores map them, merged across whole-slide tiles; checked with the ``geojson`` package and
shapely, rasterised back; bad folders named in one line."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely

from pipeline import detection, export, inference
from pipeline.cli import main
from pipeline.inference import OutputRecord
from pipeline.usecases import lymphocyte as ly
from pipeline.wsi.magnification import Scale
from pipeline.wsi.plan import Plan, Settings
from pipeline.wsi.store import TileStore
from pipeline.wsi.tiling import grid
from tests.conftest import run_tiny_usecase
from tests.geojson_checks import iou, load_checked, points, raster


def record(resize: float, usecase: str | None, stride: int = 1) -> OutputRecord:
    return OutputRecord(
        png_scale="minmax",
        engine="exact",
        stride=stride,
        all_pixels=False,
        resize=resize,
        model_sha256="0" * 64,
        mean_sha256="1" * 64,
        dropout=False,
        classes=2,
        usecase=usecase,
    )


def write_maps(folder: Path, stem: str, p1: np.ndarray, rec: OutputRecord) -> None:
    prob = np.stack([1 - p1, p1], axis=2).astype(np.float32)
    prob[0, :] = prob[:, 0] = 0  # never computed
    inference.write_outputs(inference.output_paths(folder, stem), prob, save_npy=True)
    inference.write_record(folder, rec)


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# a hand-made class map: a 5x5 square (rows, cols 1..5) with a one-pixel hole at (3, 3) and a pixel
# at (6, 6) touching it at a corner (8-connected: the same region), and a pixel at (1, 8) alone;
# row 0 and column 0 empty (step 5 never computes them)
HAND = np.zeros((8, 9), bool)
HAND[1:6, 1:6] = True
HAND[3, 3] = False
HAND[6, 6] = True
HAND[1, 8] = True


def test_regions_are_exact_pixel_edge_polygons_with_holes():
    regs = export.regions(HAND, HAND * 0.5)
    # labels in row-major order of their first pixel: the square (1, 1), then the pixel (1, 8)
    assert [r.pixels for r in regs] == [25, 1] and [r.on_border for r in regs] == [False, True]
    square = shapely.Polygon([(1, 1), (6, 1), (6, 6), (1, 6)], [[(3, 3), (4, 3), (4, 4), (3, 4)]])
    assert regs[0].geometry.equals(shapely.MultiPolygon([square, shapely.box(6, 6, 7, 7)]))
    assert regs[1].geometry.equals(shapely.box(8, 1, 9, 2))
    assert regs[0].mean_value == 0.5 and all(r.geometry.is_valid for r in regs)
    # step 5 at resize 0.5 (epithelium): source pixels = map pixel edges x 2
    assert export.to_source(regs[1].geometry, 2.0).equals(shapely.box(16, 2, 18, 4))
    back = export.rasterise([export.to_source(r.geometry, 2.0) for r in regs], HAND.shape, 2.0)
    assert np.array_equal(back, HAND)


def test_a_segmentation_folder_exports_polygons_in_the_original_frame(tmp_path, caplog):
    out = tmp_path / "out"
    p1 = np.where(HAND, 0.75, 0.25)
    write_maps(out, "img", p1, record(0.5, "epi"))
    assert main(["export", str(out), "--mpp", "0.5"]) == 0
    fc = load_checked(out / "img.geojson")
    assert [f["properties"]["classification"]["name"] for f in fc["features"]] == ["Epithelium"] * 2
    m = fc["features"][0]["properties"]["measurements"]
    # 25 map pixels at resize 0.5: 25 x 4 = 100 source pixels^2; at 0.5 um/px 25 um^2; P 0.75 over it
    assert m["Area px^2"] == 100 and m["Area um^2"] == 25 and m["Map pixels"] == 25
    assert m["Mean probability"] == pytest.approx(0.75)
    assert np.array_equal(raster(fc, HAND.shape, 0.5), HAND)  # exact round trip
    assert fc["pipeline"]["record"]["resize"] == 0.5
    # --min-area drops the 1-pixel region (4 source px^2); --threshold 0.8: nothing reaches it
    assert main(["export", str(out), "--min-area", "5"]) == 0
    assert len(load_checked(out / "img.geojson")["features"]) == 1
    assert main(["export", str(out), "--threshold", "0.8"]) == 0
    assert load_checked(out / "img.geojson")["features"] == []


def test_detections_map_back_as_the_scores_map_them(tmp_path):
    # the cone of test_lymphocyte: one peak at (41, 21) of the 4x map. The scores map it to the
    # original's (41.5 / 4 - 0.5, 21.5 / 4 - 0.5) = (9.875, 4.875) (row, col, 0-based pixel centres);
    # QuPath's frame puts pixel centres at +0.5: x = 5.375, y = 10.375. Its value on the min-max
    # PNG the peaks are found on: 0.75 / 0.75 = 255 / 255 = 1.
    out = tmp_path / "out"
    yy, xx = np.mgrid[0:80, 0:80]
    write_maps(out, "im1", 0.25 + 0.5 * np.clip(1 - np.hypot(yy - 41, xx - 21) / 30, 0, None), record(4.0, None))
    assert main(["export", str(out), "--usecase", "lymphocyte"]) == 0
    fc = load_checked(out / "im1.geojson")
    assert points(fc).tolist() == [[5.375, 10.375]]
    f = fc["features"][0]["properties"]
    assert f["objectType"] == "detection" and f["classification"]["name"] == "Lymphocyte"
    assert f["measurements"] == {"Peak probability": 1.0}
    scored = detection.to_original_scale(ly.map_peaks(out, Path("im1.tif")), 4.0)
    assert np.array_equal(points(fc)[:, ::-1] - 0.5, scored)


def test_patches_are_squares_where_their_names_say(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "name,patient,label,p0,p1,predicted\n"
        "8863_idx5_x51_y101_class1.png,8863,1,0.2,0.8,1\n"
        "8863_idx5_x1_y1_class0.png,8863,0,0.9,0.1,0\n"
        "8863_idx5_x1_y1_class03.png,8863,0,0.9,0.1,0\n"  # a rotated copy: no place of its own
    )
    (path,) = export.export_patches(csv, export.Spec("patches", "IDC", (1, 2, 3), "tile", "Non-IDC"))
    fc = load_checked(path)
    assert path.name == "8863.geojson" and len(fc["features"]) == 2
    # x51_y101: top-left pixel (51, 101) 1-based -> the square [50, 100) x [100, 150)
    assert shapely.geometry.shape(fc["features"][0]["geometry"]).equals(shapely.box(50, 100, 100, 150))
    assert [f["properties"]["classification"]["name"] for f in fc["features"]] == ["IDC", "Non-IDC"]
    assert fc["features"][0]["properties"]["measurements"] == {"P(class 0)": 0.2, "P(class 1)": 0.8, "True class": 1}


def test_bad_folders_are_named_in_one_line(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty)]) == 1
    assert errors(caplog) == [
        f"{empty}: nothing to export: no step-5 maps (*_class.png), no slide folders (plan.json) and no run.json of a use case's work folder"
    ]
    norec = tmp_path / "norec"
    write_maps(norec, "a", np.full((4, 4), 0.7), record(1.0, "epi"))
    (norec / ".outputs.json").unlink()
    caplog.clear()
    assert main(["export", str(norec)]) == 1
    assert errors(caplog)[0].startswith(f"{norec}: maps without .outputs.json")
    anon = tmp_path / "anon"
    write_maps(anon, "a", np.full((4, 4), 0.7), record(1.0, None))
    caplog.clear()
    assert main(["export", str(anon)]) == 1
    assert errors(caplog)[0].startswith(f"{anon}: unknown use case (neither the maps' record nor a run.json names one)")
    other = tmp_path / "other"
    write_maps(other, "a", np.full((4, 4), 0.7), record(1.0, "glands"))
    caplog.clear()
    assert main(["export", str(other)]) == 1
    assert errors(caplog)[0].startswith(f"{other}: unknown use case 'glands'")
    (other / "a_class.png").unlink()
    (other / "a_prob.png").unlink()
    caplog.clear()
    assert main(["export", str(other), "--usecase", "epi"]) == 1
    assert errors(caplog) == [f"{other}: no step-5 maps (no *_class.png) to export"]


def fake_slide(folder: Path, p1: np.ndarray, tile: int, downsample: float) -> Plan:
    """A finished infer-wsi slide folder of a given P(class 1) map (model pixels): plan, tiles, summary."""
    h, w = p1.shape
    scale = Scale(20.0, "objective-power", 0.25, 20.0 / downsample, downsample, 0, 1.0, 1 / downsample, (h, w))
    tiles = grid((h, w), tile)
    plan = Plan(
        Path("slide.svs"),
        folder,
        Settings(model_objective=10.0, tile=tile),
        {},
        scale,
        16,
        2,
        len(tiles),
        tiles,
        1.0,
        1.0,
    )
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(plan.to_json()))
    store = TileStore(plan.tiles_dir)
    prob = np.stack([1 - p1, p1], axis=2).astype(np.float32)
    for t in tiles:
        store.save(t, prob[t.y0 : t.y1, t.x0 : t.x1])
    (folder / "summary.json").write_text("{}")
    return plan


def test_a_whole_slide_region_across_tiles_is_one_polygon(tmp_path):
    # on a 40x40 map of 16-pixel tiles: a ring around the four tiles' shared corner (16, 16); a pixel
    # (26, 15) touching the ring's (25, 16) only at a corner, across the tiles' border at column 16
    # (8-connected: the ring's region); a blob across the border at column 32; a blob inside one tile
    yy, xx = np.mgrid[0:40, 0:40]
    d = np.hypot(yy - 16, xx - 16)
    mask = (d <= 9) & (d >= 4)
    mask[26, 15] = True
    mask[20:24, 30:34] = True
    mask[3:6, 36:39] = True
    p1 = np.where(mask, 0.9, 0.1)
    folder = tmp_path / "slide"
    fake_slide(folder, p1, tile=16, downsample=2.0)
    assert main(["export", str(tmp_path)]) == 0  # an infer-wsi --out folder of slide folders
    fc = load_checked(folder / "slide.geojson")
    whole = export.regions(mask, p1)  # the same map in one piece
    assert len(fc["features"]) == len(whole) == 3
    got = sorted(fc["features"], key=lambda f: -f["properties"]["measurements"]["Map pixels"])
    ring = max(whole, key=lambda r: r.pixels)
    g = shapely.geometry.shape(got[0]["geometry"])
    # one feature: the ring (one polygon, its hole) and the corner pixel, a MultiPolygon
    assert g.equals(export.to_source(ring.geometry, 2.0)) and [len(p.interiors) for p in g.geoms] == [1, 0]
    assert got[0]["properties"]["measurements"]["Map pixels"] == ring.pixels
    assert got[0]["properties"]["measurements"]["Mean probability"] == pytest.approx(0.9)
    # level-0 micrometres: the slide's 0.25 um/px
    assert got[0]["properties"]["measurements"]["Area um^2"] == pytest.approx(ring.pixels * 4 * 0.0625)
    assert np.array_equal(raster(fc, mask.shape, 0.5), mask)
    assert iou(raster(fc, mask.shape, 0.5), mask) == 1.0


def test_simplified_polygons_stay_valid_and_close(tmp_path):
    rng = np.random.RandomState(0)
    from scipy import ndimage

    mask = ndimage.gaussian_filter(rng.rand(300, 300), 6) > 0.5
    out = tmp_path / "out"
    write_maps(out, "img", np.where(mask, 0.8, 0.2), record(0.5, "epi"))
    assert main(["export", str(out), "--simplify", "1"]) == 0
    fc = load_checked(out / "img.geojson")
    cls = np.zeros_like(mask)
    cls[1:, 1:] = mask[1:, 1:]  # the first row and column were never computed
    assert iou(raster(fc, mask.shape, 0.5), cls) >= 0.99


def test_lymphocyte_run_leaves_points_of_the_scored_peaks(lymphocyte_run):
    data, work, out = lymphocyte_run
    assert out.returncode == 0, out.stderr[-3000:]
    files = sorted(work.glob("output/*/*.geojson"))
    assert len(files) == 5  # one per image, beside its maps
    for f in files:
        fc = load_checked(f)
        scored = detection.to_original_scale(ly.map_peaks(f.parent, Path(f.stem + ".tif")), ly.Params.scale)
        assert np.allclose(points(fc)[:, ::-1] - 0.5, scored, atol=1e-6, rtol=0)
    # export again: the work folder (use case from its run.json), one fold's folder (its record names
    # no use case: the run.json two levels up does)
    before = {f: f.read_text() for f in files}
    assert main(["export", str(work)]) == 0
    assert main(["export", str(files[0].parent)]) == 0
    assert {f: f.read_text() for f in files} == before


def test_lymphocyte_points_follow_the_scores_map_source(lymphocyte_run, tmp_path):
    """Rescored from the float maps (--score-from npy), the points are the detections the scores
    counted on the float maps. The copy's float maps are set to P(lymphocyte) = 0, so those are
    none, while the PNGs (unchanged) still have peaks: points from the PNGs (the maps the outputs
    stage's export read) would not be the scored detections."""
    data, work, out = lymphocyte_run
    assert out.returncode == 0, out.stderr[-3000:]
    copy = tmp_path / "w"
    shutil.copytree(work, copy)
    for f in copy.glob("output/*/*_prob.npy"):
        prob = np.load(f)
        prob[..., 0], prob[..., 1] = 1.0, 0.0
        np.save(f, prob)
    files = sorted(copy.glob("output/*/*.geojson"))
    assert len(files) == 5 and sum(len(points(load_checked(f))) for f in files) > 0  # the PNGs' peaks
    run_tiny_usecase("usecase4", data, copy, 15, "--stages", "scores", "--score-from", "npy", "--force")
    scores = json.loads((copy / "scores.json").read_text())
    assert scores["pooled"]["tp"] + scores["pooled"]["fp"] == 0
    assert [len(points(load_checked(f))) for f in files] == [0] * 5
    # ``export WORK`` reads the source from scores.json: the same files
    before = {f: f.read_text() for f in files}
    assert main(["export", str(copy)]) == 0
    assert {f: f.read_text() for f in files} == before


def test_infer_wsi_leaves_the_slide_geojson(tmp_path, caffe):
    """The real command on a generated 20x slide at the epithelium model's 10x (downsample 2), 40-pixel
    tiles: the slide's GeoJSON, rasterised back at 10x, is the class map of its tiles exactly."""
    import subprocess
    import sys

    from pipeline import REPO_ROOT
    from tests.conftest import RELEASED, need
    from tests.wsi_slides import tissue_canvas, write_slide

    d = need(RELEASED / "uc2-epi")
    slide = write_slide(tmp_path / "a20.svs", tissue_canvas((256, 224), fill=0.75), objective=20, mpp=0.5)
    out = tmp_path / "out"
    args = ["infer-wsi", slide, "--usecase", "epi", "--tile", "40", "--out", out]
    args += ["--model", d / "1_caffenet_train_w32_iter_600000.caffemodel", "--mean", d / "DB_train_w32_1.binaryproto"]
    r = subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-3000:]
    folder = out / "a20"
    assert str(folder / "a20.geojson") in r.stdout
    fc = load_checked(folder / "a20.geojson")
    plan = Plan.from_json(json.loads((folder / "plan.json").read_text()), folder)
    cls = np.zeros(plan.scale.shape, bool)
    for t in plan.tiles:
        cls[t.y0 : t.y1, t.x0 : t.x1] = np.load(folder / "tiles" / f"{t.name}.npy").argmax(axis=2) == 1
    assert cls.any() and len(plan.tiles) > 1
    assert {f["properties"]["classification"]["name"] for f in fc["features"]} == {"Epithelium"}
    assert np.array_equal(raster(fc, cls.shape, 1 / plan.scale.downsample), cls)


def test_the_automatic_export_redoes_only_files_older_than_their_maps(tmp_path):
    import os

    out = tmp_path / "out"
    write_maps(out, "a", np.where(HAND, 0.75, 0.25), record(0.5, "epi"))
    write_maps(out, "b", np.where(HAND, 0.75, 0.25), record(0.5, "epi"))
    spec = export.Spec("segmentation", "Epithelium", (200, 0, 0))
    assert [p.name for p in export.export_folder(out, spec, only_missing=True)] == ["a.geojson", "b.geojson"]
    assert export.export_folder(out, spec, only_missing=True) == []  # both current
    write_maps(out, "b", np.full(HAND.shape, 0.25), record(0.5, "epi"))  # b's maps made again
    t = (out / "b.geojson").stat().st_mtime_ns
    os.utime(out / "b_class.png", ns=(t + 10**9, t + 10**9))
    assert [p.name for p in export.export_folder(out, spec, only_missing=True)] == ["b.geojson"]
    assert load_checked(out / "b.geojson")["features"] == []
