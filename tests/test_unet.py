"""U-Net use case with torch: pytable layout, model, loss, checkpoints, training/resume, outputs, CLI.

Real PyTorch, PyTables and albumentations on small generated images (64x64, 64-px pytable tiles,
32-px crops) so that the whole file takes well under a minute of training on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MODULES = ("torch", "tables", "albumentations", "cv2", "tensorboard")
_missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
if _missing:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI: the U-Net's dependencies are missing ({', '.join(_missing)}): make setup-unet")
    pytest.skip(f"U-Net dependencies missing ({', '.join(_missing)}): run `make setup-unet`", allow_module_level=True)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import tables  # noqa: E402
import torch  # noqa: E402

from pipeline import recipes  # noqa: E402
from pipeline.cli import main  # noqa: E402
from pipeline.usecases import epi  # noqa: E402
from pipeline.usecases.unet import checkpoint, database, output, runner  # noqa: E402
from pipeline.usecases.unet.loss import class_weights, confusion, edge_ring, weighted_loss  # noqa: E402
from pipeline.usecases.unet.model import DEFAULT_ARCH, UNet, build, n_parameters  # noqa: E402
from pipeline.usecases.unet.train import TrainParams, device_for  # noqa: E402

torch.set_num_threads(1)  # the test machine's 2 cores are shared; small tensors gain nothing from 2
SMALL_DB = database.DBParams(patch_size=64, stride_size=32, mirror_pad_size=32)
TINY = ["--db-patch", "64", "--db-stride", "32", "--mirror-pad", "32", "--patch-size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """6 generated epithelium-like patients of 64x64 (64 + 2*32 padded: 3 x 3 tiles of 64, exact)."""
    root = tmp_path_factory.mktemp("unet_cohort")
    epi.make_cohort(root, n_patients=6, size=64, seed=5)
    return root


# --------------------------------------------------------------------------- model


def test_parameter_counts_and_output_shape():
    small = UNet(in_channels=3, n_classes=2, depth=5, wf=2, padding=True, batch_norm=True, up_mode="upconv")
    assert n_parameters(small) == 122_466  # UNET.md, computed from unet.py
    assert n_parameters(build({**DEFAULT_ARCH, "wf": 6})) == 31_043_586  # the blog's figure (v1, wf 6)
    assert small(torch.zeros(2, 3, 32, 48)).shape == (2, 2, 32, 48)
    names = list(small.state_dict())
    assert names[0] == "down_path.0.block.0.weight" and "up_path.2.conv_block.block.3.weight" in names
    assert names[-1] == "last.bias"


# --------------------------------------------------------------------------- loss


def test_edge_ring_and_loss_on_a_hand_computed_4x4_case():
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1:3] = 1
    ring = edge_ring(mask)
    # two cross dilations of the 1x2 block cover rows 0-2 and (3,1), (3,2): 14 pixels; minus the mask: 12
    expected = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0]], np.uint8)
    assert (ring == expected).all()
    w = class_weights(np.array([[0, 1], [12, 4]]))  # 1 - [12, 4] / 16
    assert w.dtype == np.float32 and w.tolist() == [0.25, 0.75]
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 1, 1, 1] = math.log(3)  # P(class 1) = 3/4 at (1, 1)
    loss = weighted_loss(
        logits, torch.from_numpy(mask).long()[None], torch.from_numpy(ring).float()[None], torch.from_numpy(w), 1.1
    )
    # per pixel w[y] * -log p_y * 1.1**ring, mean over the 16 pixels:
    #   (1,1): 0.75 * ln(4/3); (1,2): 0.75 * ln 2; 12 ring pixels: 0.25 * 1.1 * ln 2; (3,0), (3,3): 0.25 * ln 2
    hand = (0.75 * math.log(4 / 3) + (0.75 + 12 * 0.275 + 2 * 0.25) * math.log(2)) / 16
    assert float(loss) == pytest.approx(hand, rel=1e-6)
    assert confusion(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])).tolist() == [[1, 1], [1, 2]]


# --------------------------------------------------------------------------- pytables


def test_pytable_layout_read_back(cohort, tmp_path):
    imgs = sorted(cohort.glob("*.tif"))[:2]
    pairs = [(i, epi.mask_path(i)) for i in imgs]
    path = tmp_path / "epistroma_train.pytable"
    rep = database.write_pytable(path, pairs, SMALL_DB, cohort, show_progress=False)
    assert rep["tiles"] == 18  # 2 images x 3 x 3 tiles
    with tables.open_file(str(path)) as h5:
        img, mask, fn, npx = h5.root.img, h5.root.mask, h5.root.filename, h5.root.numpixels
        assert isinstance(img, tables.EArray) and isinstance(mask, tables.EArray) and isinstance(fn, tables.EArray)
        assert isinstance(npx, tables.CArray)
        assert (img.dtype, img.shape, img.chunkshape) == (np.uint8, (18, 64, 64, 3), (1, 64, 64, 3))
        assert (mask.dtype, mask.shape, mask.chunkshape) == (np.uint8, (18, 64, 64), (1, 64, 64))
        for a in (img, mask):
            assert (a.filters.complib, a.filters.complevel) == ("zlib", 6)
        assert fn.atom == tables.StringAtom(itemsize=255) and fn.filters.complevel == 0 and fn.shape == (18,)
        assert fn[0] == pairs[0][1].name.encode() and fn[9] == pairs[1][1].name.encode()  # mask path per tile
        assert npx.atom == tables.Float64Atom() and npx.shape == (2, 2) and npx.filters.complevel == 0
        masks = [np.asarray(Image.open(m)) for _, m in pairs]
        counts = [sum(int((m == v).sum()) for m in masks) for v in (0, 255)]
        assert npx[:].tolist() == [[0.0, 1.0], [float(counts[0]), float(counts[1])]]  # full-size masks
        assert set(np.unique(mask[:])) <= {0, 1}
        # tile 4 of image 1 is the centre tile: padded rows/cols 32..95 = the image itself
        rgb = np.asarray(Image.open(pairs[0][0]))
        assert (img[4] == rgb).all() and (mask[4] == (masks[0] == 255)).all()
    again = tmp_path / "again.pytable"
    database.write_pytable(again, pairs, SMALL_DB, cohort, show_progress=False)
    assert again.read_bytes() == path.read_bytes()  # no timestamps: byte-identical
    assert database.check_pytable(path, 32)["tiles"] == 18


def test_bad_masks_images_and_pytables(cohort, tmp_path):
    img = sorted(cohort.glob("*.tif"))[0]
    m = np.asarray(Image.open(epi.mask_path(img))).copy()
    m[0, :5] = 128  # not binary (Q10)
    bad = tmp_path / "bad_mask.png"
    Image.fromarray(m).save(bad)
    with pytest.raises(database.BadInput, match=r"bad_mask.png: mask is not binary: 5 pixels.*truncate"):
        database.read_mask(bad)
    trunc, counts = database.read_mask(bad, "truncate")  # the original: 128/255 -> 0
    assert trunc[0, :5].tolist() == [0] * 5 and counts.sum() == m.size - 5  # 128 counted in no class
    small = tmp_path / "small.tif"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(small)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small_mask.png")
    with pytest.raises(database.BadInput, match=r"small.tif: image is 20x20.*mirror padding 32"):
        database.image_tiles(small, tmp_path / "small_mask.png", SMALL_DB)
    h5 = tmp_path / "v1.pytable"
    with tables.open_file(str(h5), "w") as f:
        f.create_earray(f.root, "img", tables.UInt8Atom(), (0, 8, 8, 3))
        f.create_earray(f.root, "fname", tables.StringAtom(itemsize=255), (0,))
    with pytest.raises(database.BadInput, match=r"v1.pytable: no array\(s\) filename, mask, numpixels"):
        database.check_pytable(h5)
    (tmp_path / "junk.pytable").write_text("not hdf5")
    with pytest.raises(database.BadInput, match="junk.pytable: not a PyTables/HDF5 file"):
        database.check_pytable(tmp_path / "junk.pytable")


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_load_as_data_and_name_problems(tmp_path):
    model = build(DEFAULT_ARCH)
    optim = torch.optim.Adam(model.parameters())
    state = checkpoint.make_state(3, model, optim, {"train": np.float32(0.5), "val": np.float32(0.25)}, DEFAULT_ARCH)
    assert tuple(state) == checkpoint.KEYS and type(state["best_loss_on_test"]["val"]) is float  # Q5
    path = tmp_path / "ck.pth"
    checkpoint.save(path, state)
    loaded = checkpoint.load(path, DEFAULT_ARCH)
    assert loaded["epoch"] == 3 and loaded["best_loss_on_test"] == {"train": 0.5, "val": 0.25}
    with pytest.raises(
        checkpoint.BadCheckpoint, match=r"ck.pth: a checkpoint of another architecture: wf 2 \(expected 6\)"
    ):
        checkpoint.load(path, {**DEFAULT_ARCH, "wf": 6})
    torch.save({**state, "wf": 3}, tmp_path / "lies.pth")
    with pytest.raises(checkpoint.BadCheckpoint, match="lies.pth: its weights do not fit"):
        checkpoint.model_from(tmp_path / "lies.pth")
    torch.save({**state, "best_loss_on_test": {"val": np.float64(0.25)}}, tmp_path / "numpy.pth")  # the original's
    with pytest.raises(checkpoint.BadCheckpoint, match=r"numpy.pth: refused by torch.load\(weights_only=True\)"):
        checkpoint.load(tmp_path / "numpy.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(checkpoint.BadCheckpoint, match="junk.pth: not a PyTorch checkpoint"):
        checkpoint.load(tmp_path / "junk.pth")


def test_gpu_flag_says_when_cuda_is_absent():
    if torch.cuda.is_available():
        assert device_for(True) == "cuda"
    else:
        with pytest.raises(RuntimeError, match="--gpu: CUDA is not available"):
            device_for(True)
    assert device_for(False) == "cpu"


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def trained(cohort, tmp_path_factory) -> Path:
    """`python -m pipeline unet` for 2 epochs on the small cohort (all stages)."""
    work = tmp_path_factory.mktemp("unet_work")
    assert main(["unet", "--data", str(cohort), "--work", str(work), "--epochs", "2", *TINY]) == 0
    return work


def test_cli_run_writes_everything(trained):
    w = trained
    for name in (
        "epistroma_train.pytable",
        "epistroma_val.pytable",
        checkpoint.BEST,
        checkpoint.LAST,
        "history.csv",
        "unet_training.png",
        "scores.md",
        "scores.json",
        "split.json",
    ):
        assert (w / name).is_file(), name
    split = json.loads((w / "split.json").read_text())
    assert (len(split["train"]), len(split["val"])) == (5, 1)  # ceil(0.1 * 6) = 1 held out
    assert checkpoint.load(w / checkpoint.LAST)["epoch"] == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(w / "runs"))
    ev.Reload()
    assert set(ev.Tags()["scalars"]) == {
        "train/loss",
        "val/loss",
        "val/acc",
        "val/TN",
        "val/TP",
        "val/FP",
        "val/FN",
        "val/TNR",
        "val/TPR",
    }
    assert [e.step for e in ev.Scalars("val/loss")] == [0, 1]
    cm = {k: ev.Scalars(f"val/{k}")[-1].value for k in ("TN", "TP", "FP", "FN")}
    assert sum(cm.values()) == 9 * 32 * 32  # 9 val tiles, one 32x32 crop each
    scores = json.loads((w / "scores.json").read_text())
    assert scores["n"] == 63 * 63 and scores["images"] == [f"{split['test'][0]}_00001.tif"]  # row/col 0 excluded


def test_training_stage_resumes_goes_on_refuses_and_forces(cohort, trained, tmp_path, caplog):
    """The train stage's recipe (the pytables' recipe and every trainer option but --epochs) decides:
    an interrupted training resumes from its last checkpoint and ends as an uninterrupted one; more
    epochs go on from the last checkpoint; other options are refused, or with --force trained again
    from scratch; the outputs of another model are refused, or recomputed."""
    w = tmp_path / "w"
    cfg = runner.Config(
        data=cohort, work=w, db=SMALL_DB, train=TrainParams(epochs=1, patch_size=32), show_progress=False
    )
    runner.run(cfg, ("dbs", "train"))
    assert checkpoint.load(w / checkpoint.LAST)["epoch"] == 1
    # what a 2-epoch run killed during epoch 2 leaves: its recipe recorded "started" (epochs are not in
    # the recipe: the record is the same), the checkpoints and history of epoch 1
    record = w / "train.recipe.json"
    rec = json.loads(record.read_text())
    assert rec["state"] == "done" and rec["inputs"]["dbs"]["stage"] == "dbs"
    record.write_text(json.dumps({**rec, "state": "started"}))
    cfg = cfg.replace(train=TrainParams(epochs=2, patch_size=32))
    caplog.set_level(logging.INFO)
    runner.run(cfg, ("dbs", "train"))  # resumes at epoch 2
    assert "train: resuming interrupted work" in caplog.text
    a = checkpoint.load(trained / checkpoint.LAST)  # 2 epochs in one go (same seed)
    b = checkpoint.load(w / checkpoint.LAST)
    assert b["epoch"] == 2 and a["best_loss_on_test"] == b["best_loss_on_test"]
    for k, v in a["model_dict"].items():
        assert torch.equal(v, b["model_dict"][k]), k
    assert len((w / "history.csv").read_text().splitlines()) == 3
    assert json.loads(record.read_text())["state"] == "done"
    caplog.clear()
    s = runner.run(cfg.replace(train=TrainParams(epochs=3, patch_size=32)), ("train",))  # done, asked for more
    assert "train: the last checkpoint is of epoch 2, this run asks 3 epochs" in caplog.text
    assert checkpoint.load(w / checkpoint.LAST)["epoch"] == 3 and s["training"]["epochs"] == 3
    assert len((w / "history.csv").read_text().splitlines()) == 4
    s = runner.run(cfg, ("train",))  # asked for fewer: done (the summary says what was trained)
    assert s["training"]["epochs"] == 3 and s["training"]["tiles"] == {"train": 45, "val": 9}
    cfg = cfg.replace(out_patch=32)
    runner.run(cfg, ("outputs", "scores"))  # outputs of the 3-epoch model
    cfg = cfg.replace(train=TrainParams(epochs=1, patch_size=32, edge_weight=2.0))
    with pytest.raises(recipes.StaleRecipe, match="train: .* edge_weight=1.1, this run asks edge_weight=2.0.*--force"):
        runner.run(cfg, ("train",))
    runner.run(cfg.replace(force=True), ("train",))  # --force: trained again from scratch
    assert checkpoint.load(w / checkpoint.LAST)["epoch"] == 1
    assert len((w / "history.csv").read_text().splitlines()) == 2
    assert len(list((w / "runs").iterdir())) == 1  # the old TensorBoard events went with the old model
    with pytest.raises(recipes.StaleRecipe, match="outputs: .* sha256=.* \\(in its input model\\)"):
        runner.run(cfg, ("outputs",))  # the old model's outputs are not reused
    cfg = cfg.replace(force=True)
    s = runner.run(cfg, ("outputs", "scores"))  # recomputed with the new model
    assert len(s["outputs"]["computed"]) == 1 and s["scores"]["n"] == 63 * 63
    assert s["model"] == {"choice": "best", "checkpoint": checkpoint.BEST, "epoch": 1}
    cfg = cfg.replace(model_choice="last")  # the last epoch's checkpoint instead: named in the scores
    s = runner.run(cfg, ("outputs", "scores"))
    assert s["scores"]["model"] == {"choice": "last", "checkpoint": checkpoint.LAST, "epoch": 1}
    with pytest.raises(ValueError, match="--val-in-training applies to --split 'uc2-fold K'"):
        runner.run(cfg.replace(val_in_training=True), ("outputs",))


def test_pytables_stage_refuses_other_parameters_and_force_rebuilds_them(cohort, trained, tmp_path):
    """The dbs stage's recipe (the data, the split's images, make_hdf5.py's parameters): pytables made
    with another --db-stride are refused, and so is training on them; --force rebuilds them and trains
    again (the pytables were rebuilt silently before the stage graph)."""
    w = tmp_path / "w"
    cfg = runner.Config(
        data=cohort, work=w, db=SMALL_DB, train=TrainParams(epochs=1, patch_size=32), show_progress=False
    )
    runner.run(cfg, ("dbs", "train"))
    before = (w / "epistroma_train.pytable").read_bytes()
    assert before == (trained / "epistroma_train.pytable").read_bytes()  # one seed: the same pytable
    cfg = cfg.replace(db=database.DBParams(patch_size=64, stride_size=64, mirror_pad_size=32))
    with pytest.raises(recipes.StaleRecipe, match="dbs: .* db_stride=32, this run asks db_stride=64.*--force"):
        runner.run(cfg, ("dbs",))
    with pytest.raises(recipes.StaleRecipe, match="add dbs to --stages and rerun with --force"):
        runner.run(cfg, ("train",))  # its input is checked
    s = runner.run(cfg.replace(force=True), ("dbs", "train"))
    assert s["training"]["tiles"] == {"train": 5 * 4, "val": 4}  # (64 + 2*32 - 64) / 64 + 1 = 2 tiles a side
    assert checkpoint.load(w / checkpoint.LAST)["epoch"] == 1
    assert json.loads((w / "train.recipe.json").read_text())["inputs"]["dbs"]["options"]["db_stride"] == 64


def test_outputs_skip_force_and_bad_input(cohort, trained, tmp_path):
    img = sorted(cohort.glob("*.tif"))[0]
    out = tmp_path / "out"
    r = output.run([img], trained / checkpoint.BEST, out, patch=32, batch=4, show_progress=False)
    assert r["computed"] == [str(img)] and r["pixels"] == 64 * 64
    cls = np.asarray(Image.open(out / f"{img.stem}_class.png"))
    prob = np.load(out / f"{img.stem}_prob.npy")
    assert cls.shape == (64, 64) and set(np.unique(cls)) <= {0, 255} and prob.shape == (64, 64, 2)
    assert np.allclose(prob.sum(2), 1, atol=1e-5) and ((prob[..., 1] > 0.5) == (cls == 255)).mean() > 0.999
    rgb = np.asarray(Image.open(out / f"{img.stem}_prob.png"))
    assert np.abs(rgb[..., 1].astype(float) - np.round(255 * prob[..., 1])).max() <= 1
    assert output.run([img], trained / checkpoint.BEST, out, patch=32, show_progress=False)["skipped"] == [str(img)]
    assert output.run([img], trained / checkpoint.BEST, out, patch=32, force=True, show_progress=False)["computed"] == [
        str(img)
    ]
    tiny = tmp_path / "tiny.tif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny)
    with pytest.raises(database.BadInput, match="tiny.tif: image is 8x8"):
        output.run([tiny], trained / checkpoint.BEST, out, patch=32, show_progress=False)
    with pytest.raises(database.BadInput, match="not a multiple of 2\\*\\*\\(depth-1\\) = 16"):
        output.run([img], trained / checkpoint.BEST, tmp_path / "o2", patch=40, show_progress=False)


def test_cli_errors_name_the_file(cohort, trained, tmp_path, caplog):
    data = tmp_path / "data"
    data.mkdir()
    for f in cohort.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    m = data / sorted(p.name for p in data.glob("*_mask.png"))[0]
    arr = np.asarray(Image.open(m)).copy()
    arr[0, 0] = 7
    Image.fromarray(arr).save(m)
    caplog.set_level(logging.ERROR)
    assert main(["unet", "--data", str(data), "--work", str(tmp_path / "w"), "--epochs", "1", *TINY]) == 1
    assert f"{m.name}: mask is not binary" in caplog.text
    other = tmp_path / "wf3.pth"
    torch.save({**checkpoint.load(trained / checkpoint.BEST), "wf": 3}, other)
    img = sorted(cohort.glob("*.tif"))[0]
    assert main(["unet-output", str(img), "-m", str(other), "-p", "32", "-o", str(tmp_path / "o")]) == 1
    assert "wf3.pth: its weights do not fit" in caplog.text


def test_maps_on_use_case_2s_grid_and_per_image_scores(tmp_path):
    """The U-Net's 1x maps resized to use case 2's 0.5x grid from the float map or from its PNG give the
    same class maps (the PNG holds round(255 P)); each side's scores are use case 2's, per image too."""
    from pipeline.usecases.unet import compare

    data, out, grid = tmp_path / "data", tmp_path / "out", {s: tmp_path / s for s in ("npy", "png")}
    data.mkdir()
    out.mkdir()
    rng = np.random.RandomState(3)
    imgs = []
    for n, pid in enumerate(("8001", "8002")):
        mask = np.zeros((16, 16), np.uint8)
        mask[2 + n : 10, 4:14] = 255
        img = data / f"{pid}_00001.tif"
        Image.fromarray(rng.randint(0, 255, (16, 16, 3)).astype(np.uint8)).save(img)
        Image.fromarray(mask).save(data / f"{pid}_00001_mask.png")
        p1 = np.clip(mask / 255 * 0.8 + rng.uniform(0, 0.3, mask.shape), 0, 1).astype(np.float32)
        np.save(out / f"{img.stem}_prob.npy", np.stack([1 - p1, p1], axis=2))
        Image.fromarray(np.stack([np.round(255 * (1 - p1)), np.round(255 * p1), 0 * p1], 2).astype(np.uint8)).save(
            out / f"{img.stem}_prob.png"
        )
        Image.fromarray(((p1 > 0.5) * 255).astype(np.uint8)).save(out / f"{img.stem}_class.png")
        imgs.append(img)
    for source, folder in grid.items():
        compare.resize_maps(out, folder, imgs, 0.5, source)
    a, b = (np.load(grid[s] / f"{imgs[0].stem}_prob.npy") for s in ("npy", "png"))
    assert a.shape == b.shape == (8, 8, 2) and np.abs(a - b).max() <= 1 / 255 + 1e-6
    s = compare.side_scores(grid["npy"], grid["npy"], imgs[:1], imgs[1:], 0.5, 1, "npy")
    one = epi.score_fold(grid["npy"], 0, imgs[:1], imgs[1:], 0.5, None, "npy", stride=1)
    assert s["class_map"] == one["class_map"] and s["threshold"] == one["threshold"]  # use case 2's scoring
    assert s["per_image"] == {
        imgs[0].name: {"class_map": one["class_map"]["f_score"], "thresholded": one["thresholded"]["f_score"]}
    }
    assert s["class_map"]["n"] == 7 * 7  # the 0.5x grid without its first row and column, as use case 2


def test_side_by_side_with_caffe_use_case_2_on_one_fold(cohort, tmp_path):
    """Caffe's use case 2 (real patches, LevelDBs, caffe train, fcn outputs) and the U-Net on fold 2 under
    one protocol: the same test and validation patients, the validation patients held out of BOTH
    sides' training, both scored from float maps on the same 0.5x pixels, per-image F paired, costs
    timed like with like, and the report page showing one test image through both systems."""
    from pipeline import folds
    from pipeline.templates import SolverParams
    from pipeline.usecases.unet import compare

    cfg = runner.Config(
        data=cohort,
        work=tmp_path,
        db=SMALL_DB,
        train=TrainParams(epochs=1, patch_size=32),
        out_patch=32,
        show_progress=False,
    )
    sp = SolverParams(max_iter=10)
    sp.test_interval, sp.snapshot, sp.display = 10, 10, 5
    opt = compare.Options(
        fold=2, caffe_iterations=10, caffe_max_positive=20, caffe_infer_mode="fcn", caffe_solver=sp, threads=1
    )
    s = compare.run(epi.Epithelium(), cfg, opt)
    patients = list(epi.images_by_patient(cohort))
    assignment = folds.assign_folds(patients, 5, 1)
    test = [p for p, f in assignment.items() if f == 2]
    val = [p for p, f in assignment.items() if f == 3]  # use case 2's validation patients of fold 2
    train = sorted(p for p, f in assignment.items() if f not in (2, 3))
    assert sorted(s["test_images"]) == sorted(f"{p}_00001.tif" for p in test)
    r = json.loads((tmp_path / "comparison.json").read_text())
    assert r["validation_images"] == [f"{p}_00001.tif" for p in val] and r["train_patients"] == train
    # neither side trained on the validation (or test) patients
    caffe_train = (tmp_path / "caffe" / "lists" / "train_w32_parent_2.txt").read_text().split()
    assert sorted(caffe_train) == train
    lines = (tmp_path / "caffe" / "lists" / "train_w32_2.txt").read_text().splitlines()
    listed = {line.split("_")[0] for line in lines}  # "<patient>_<image>_..._.png <label>"
    assert listed <= set(train) and not listed & set(val)
    assert json.loads((tmp_path / "unet" / "split.json").read_text())["train"] == train
    assert (tmp_path / "unet" / "validation" / f"{val[0]}_00001_prob.npy").is_file()  # the U-Net's validation maps
    # the same pixels, maps and scoring on both sides: each a class-map and a validation-threshold row
    for side in ("caffe", "unet"):
        assert r[side]["class_map"]["n"] == r[side]["thresholded"]["n"] == len(test) * 31 * 31  # 0.5x, row/col 0 out
        assert 0.05 <= r[side]["threshold"] <= 0.95 and set(r[side]["per_image"]) == set(s["test_images"])
    assert r["protocol"]["score_from"] == "npy" and r["unet_1x"]["n"] == len(test) * 63 * 63
    m = r["protocol"]["unet_model"]
    assert m == {"choice": "best", "checkpoint": checkpoint.BEST, "epoch": 1} and r["protocol"]["unet_epochs"] == 1
    pc = r["paired"]["class_map"]
    assert pc["n"] + len(pc["left_out"]) == len(test) and pc["wins"] + pc["losses"] + pc["ties"] == pc["n"]
    assert r["parameters"]["unet"] == 122_466 and r["parameters"]["caffe"] > 0
    t = r["timings"]
    assert t["caffe_prep"]["images"] == t["unet_prep"]["images"] == 6  # both over every image
    assert t["caffe_infer"]["images"] == t["unet_infer"]["images"] == len(test) + len(val)  # the same images
    assert t["caffe_infer"]["threads"] == t["unet_infer"]["threads"] == 1
    assert t["caffe_train"]["samples"] == 10 * t["caffe_train"]["batch"] and t["unet_train"]["epochs"] == 1
    assert t["unet_train"]["samples"] == t["unet_train"]["train_samples"] == 4 * 9  # 4 patients, 3 x 3 tiles
    md = (tmp_path / "comparison.md").read_text()
    assert "held out of both sides' training" in md and "best epoch" in md and "sign test p" in md
    assert md.count("(from validation)") == 2 and "epoch-equivalents" in md
    page = (tmp_path / "report" / "index.html").read_text()
    assert s["report"] == str(tmp_path / "report" / "index.html") and "side_by_side_" in page
    assert len(list((tmp_path / "report" / "pictures").glob("side_by_side_*.png"))) == 1
    before = json.loads((tmp_path / "timings.json").read_text())
    compare.run(epi.Epithelium(), cfg, opt)  # all done: recorded figures kept
    after = json.loads((tmp_path / "timings.json").read_text())
    assert after["caffe_train"] == before["caffe_train"] and after["unet_infer"] == before["unet_infer"]
