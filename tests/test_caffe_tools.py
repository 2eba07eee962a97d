"""The real Caffe tools on generated data: convert_imageset, compute_image_mean, caffe train, pycaffe."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import caffe_env, databases, lists, templates, training
from tests.conftest import RELEASED, gpu_usable, need, write_pngs


@pytest.fixture(scope="module")
def patch_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("pngs")
    imgs = write_pngs(root / "subs", 12)
    lst = root / "list.txt"
    lists.write_list(lst, [lists.Entry(n, lab) for n, _, lab in imgs], sep=" ")
    return root, imgs, lst


def test_convert_imageset_records_keys_and_bgr_pixels(patch_set, tmp_path):
    root, imgs, lst = patch_set
    db = tmp_path / "DB_train_1"
    n = databases.build_db(root / "subs", lst, db, seed=None)
    assert n == 12
    recs = list(databases.iter_records(db))
    assert len(recs) == 12
    by_name = {name: (arr, lab) for name, arr, lab in imgs}
    for i, (key, label, chw) in enumerate(recs):
        idx, name = key.decode().split("_", 1)
        assert idx == f"{i:08d}"  # "%08d_<file name>", list order
        arr, lab = by_name[name]
        assert label == lab
        assert np.array_equal(chw, arr[:, :, ::-1].transpose(2, 0, 1))  # BGR, C x H x W


def test_compute_image_mean_equals_numpy(patch_set, tmp_path):
    root, imgs, lst = patch_set
    db = tmp_path / "DB"
    databases.build_db(root / "subs", lst, db)
    mean = databases.compute_mean(db, tmp_path / "mean.binaryproto")
    expect = np.mean([a[:, :, ::-1].transpose(2, 0, 1).astype(np.float64) for _, a, _ in imgs], axis=0)
    assert mean.shape == (3, 32, 32)
    np.testing.assert_allclose(mean, expect, atol=1e-4)


def test_same_seed_gives_identical_dbs(patch_set, tmp_path):
    root, _, lst = patch_set
    a, b, c = tmp_path / "A", tmp_path / "B", tmp_path / "C"
    databases.build_db(root / "subs", lst, a, seed=7)
    databases.build_db(root / "subs", lst, b, seed=7)
    databases.build_db(root / "subs", lst, c, seed=8)
    assert databases.db_items(a) == databases.db_items(b)
    assert databases.db_items(a) != databases.db_items(c)
    assert (tmp_path / "A.order.txt").read_bytes() == (tmp_path / "B.order.txt").read_bytes()


def test_tab_list_is_refused_not_turned_into_empty_db(patch_set, tmp_path):
    root, imgs, _ = patch_set
    tab = tmp_path / "tab.txt"
    lists.write_list(tab, [lists.Entry(n, lab) for n, _, lab in imgs], sep="\t")
    with pytest.raises(lists.BadList, match="TAB-separated"):
        databases.build_db(root / "subs", tab, tmp_path / "DB_tab")
    assert not (tmp_path / "DB_tab").exists()
    space = tmp_path / "space.txt"
    assert lists.space_copy(tab, space) == 12
    assert databases.build_db(root / "subs", space, tmp_path / "DB_ok") == 12


def test_bad_lists_are_caught_before_caffe(patch_set, tmp_path):
    root, _, _ = patch_set
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(lists.BadList, match="empty"):
        databases.build_db(root / "subs", empty, tmp_path / "DB1")
    ghost = tmp_path / "ghost.txt"
    ghost.write_text("nope.png 0\n")
    with pytest.raises(lists.BadList, match="do not exist"):
        databases.build_db(root / "subs", ghost, tmp_path / "DB2")
    assert not list(tmp_path.glob("DB*"))


def test_a_record_count_short_of_the_list_is_reported_and_no_db_is_left(patch_set, tmp_path):
    root, imgs, lst = patch_set
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, _, _ in imgs:
        (subs / name).write_bytes((root / "subs" / name).read_bytes())
    (subs / imgs[3][0]).write_bytes(b"not a PNG")  # convert_imageset skips what it cannot decode
    with pytest.raises(
        databases.BadDatabase,
        match=r"DB_short: convert_imageset wrote 11 records for 12 "
        r"list lines \(.*list.txt\); see .*DB_short.log",
    ):
        databases.build_db(subs, lst, tmp_path / "DB_short")
    assert not (tmp_path / "DB_short").exists()


def test_mean_of_wrong_shape_is_refused(patch_set, tmp_path):
    root, _, lst = patch_set
    big = write_pngs(tmp_path / "big", 2, size=40)
    biglist = tmp_path / "big.txt"
    lists.write_list(biglist, [lists.Entry(n, 0) for n, _, _ in big], sep=" ")
    databases.build_db(tmp_path / "big", biglist, tmp_path / "DBbig")
    databases.compute_mean(tmp_path / "DBbig", tmp_path / "big.binaryproto")
    with pytest.raises(databases.BadDatabase, match=r"expected \(3, 32, 32\)"):
        databases.read_mean(tmp_path / "big.binaryproto", shape=(3, 32, 32))


def test_twenty_iterations_of_caffe_train_give_a_loadable_model(patch_set, tmp_path, caffe):
    root, _, lst = patch_set
    databases.build_db(root / "subs", lst, tmp_path / "DB_train_1")
    databases.build_db(root / "subs", lst, tmp_path / "DB_test_1")
    databases.compute_mean(tmp_path / "DB_train_1", tmp_path / "DB_train_w32_1.binaryproto")
    sp = templates.SolverParams(max_iter=20, test_interval=10, snapshot=10, display=5, random_seed=1)
    ff = templates.render_fold(
        tmp_path / "models",
        "1",
        tmp_path / "DB_train_1",
        tmp_path / "DB_test_1",
        tmp_path / "DB_train_w32_1.binaryproto",
        12,
        solver=sp,
        batch_size=4,
    )
    res = training.train(ff.solver, show_progress=False)
    assert res.model.name == "1_caffenet_train_w32_iter_20.caffemodel" and res.model.is_file()
    rows = training.parse_log(res.log.read_text())
    assert [r["iteration"] for r in rows if r["train_loss"] is not None] == [0, 5, 10, 15, 20]
    assert [r["iteration"] for r in rows if r["test_accuracy"] is not None] == [0, 10, 20]
    net = caffe.Net(str(ff.deploy), str(res.model), caffe.TEST)
    assert net.params["ip1"][0].data.shape == (64, 1024)
    # a rerun is skipped, and a run from a snapshot resumes
    assert training.train(ff.solver, show_progress=False).skipped
    res.model.unlink()
    resumed = training.train(ff.solver, show_progress=False)
    assert resumed.resumed_from is not None and resumed.resumed_from.name.endswith("_iter_10.solverstate")
    assert resumed.model.is_file()
    if not gpu_usable():
        # --gpu without a usable GPU: a clear error before `caffe train` starts (no new snapshot)
        resumed.model.unlink()
        with pytest.raises(caffe_env.GpuUnavailable, match="Leave out --gpu"):
            training.train(ff.solver, gpu=True, show_progress=False)
        assert not resumed.model.exists()


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Caffe Convolution, kernel 5, pad 2, stride 1: x C x H x W, w K x C x 5 x 5 -> K x H x W."""
    v = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (2, 2), (2, 2))), (5, 5), axis=(1, 2))
    return np.einsum("chwij,kcij->khw", v, w, optimize=True) + b[:, None, None]


def _pool(x: np.ndarray, op) -> np.ndarray:
    """Caffe Pooling, kernel 3, stride 2, no pad: ceil((H - 3) / 2) + 1 outputs a side, each over the
    part of its window inside the map (a 32-wide map gives 16; AVE divides by the clipped window's size)."""
    c, h, w = x.shape
    n = -(-(h - 3) // 2) + 1
    return np.array(
        [
            [[op(x[k, 2 * i : min(2 * i + 3, h), 2 * j : min(2 * j + 3, w)]) for j in range(n)] for i in range(n)]
            for k in range(c)
        ]
    )


def _cifar10_quick(net, x: np.ndarray) -> np.ndarray:
    """The deploy net (conv1 pool1-max relu1 conv2 relu2 pool2-ave conv3 relu3 pool3-ave ip1 ip2
    softmax) in numpy, from the net's own weights, on one preprocessed 3 x 32 x 32 input."""
    p = {k: [b.data.astype(np.float64) for b in v] for k, v in net.params.items()}
    a = np.maximum(_pool(_conv(x, *p["conv1"]), np.max), 0)
    a = _pool(np.maximum(_conv(a, *p["conv2"]), 0), np.mean)
    a = _pool(np.maximum(_conv(a, *p["conv3"]), 0), np.mean)
    z = p["ip2"][0] @ (p["ip1"][0] @ a.ravel() + p["ip1"][1]) + p["ip2"][1]
    e = np.exp(z - z.max())
    return e / e.sum()


def test_released_idc_model_equals_the_net_computed_by_hand(caffe, tmp_path):
    from pipeline.classify import PatchClassifier
    from pipeline.databases import read_mean

    d = need(RELEASED / "uc6-idc")
    mean_file = d / "DB_train_w32_noresize.binaryproto"
    clf = PatchClassifier(d / "1_caffenet_train_w32_noresize_iter_600000.caffemodel", mean_file, net_dir=tmp_path)
    x = np.random.RandomState(0).rand(5, 32, 32, 3).astype(np.float32)
    p = clf.predict(x)
    # caffe.Classifier's preprocessing by hand: RGB [0,1] -> BGR, x255, minus the per-pixel mean image;
    # oversampling averages each window and its horizontal mirror
    mean = read_mean(mean_file, shape=(3, 32, 32)).astype(np.float64)
    pre = lambda win: win.astype(np.float64).transpose(2, 0, 1)[::-1] * 255 - mean  # noqa: E731
    want = np.array([(_cifar10_quick(clf.net, pre(w)) + _cifar10_quick(clf.net, pre(w[:, ::-1]))) / 2 for w in x])
    assert p.shape == (5, 2)
    np.testing.assert_allclose(p, want, atol=2e-5)  # float32 sums in Caffe against float64 here
    assert len({round(float(v), 3) for v in p[:, 1]}) > 1  # inputs that give different answers
