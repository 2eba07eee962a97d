"""Rendered solver and nets parse with caffe_pb2 and carry every published value (FIDELITY.md)."""

from __future__ import annotations

import pytest

from pipeline import templates


@pytest.fixture(scope="module")
def fold(tmp_path_factory):
    d = tmp_path_factory.mktemp("fold")
    return templates.render_fold(
        d / "models", "1", d / "DB_train_1", d / "DB_test_1", d / "DB_train_w32_1.binaryproto", n_test_lines=53_797
    ), d


def _solver(ff):
    return templates.parse_check(ff.solver.read_text(), "SolverParameter", "solver")


def _net(path):
    return templates.parse_check(path.read_text(), "NetParameter", str(path))


def test_solver_values(fold):
    ff, _ = fold
    s = _solver(ff)
    assert s.type == "AdaGrad" and s.base_lr == pytest.approx(0.001) and s.lr_policy == "fixed"
    assert s.weight_decay == pytest.approx(0.004) and s.max_iter == 600000
    assert s.test_interval == 10000 and s.snapshot == 10000 and s.display == 1000
    assert list(s.test_iter) == [53_797 // 128] == [420]
    assert s.snapshot_prefix.endswith("/1_caffenet_train_w32") and s.solver_mode == 0  # CPU
    assert s.momentum == 0  # AdaGrad: no momentum
    assert ff.solver.name == "1-alexnet_solver_ada.prototxt"
    assert s.net == str(ff.train_test)


def test_gpu_and_seed(tmp_path):
    ff = templates.render_fold(
        tmp_path,
        "3",
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "m",
        300,
        gpu=True,
        solver=templates.SolverParams(random_seed=42),
    )
    s = _solver(ff)
    assert s.solver_mode == 1 and s.random_seed == 42 and list(s.test_iter) == [2]
    assert s.snapshot_prefix.endswith("/3_caffenet_train_w32")


def test_train_test_net(fold):
    ff, d = fold
    n = _net(ff.train_test)
    by = {l.name: l for l in n.layer}
    tr, te = by["cifar_train"], by["cifar_test"]
    assert tr.data_param.source == str((d / "DB_train_1").resolve()) and tr.data_param.batch_size == 128
    assert te.data_param.source == str((d / "DB_test_1").resolve()) and te.data_param.batch_size == 128
    assert tr.data_param.backend == te.data_param.backend == 0  # LEVELDB
    assert tr.transform_param.crop_size == te.transform_param.crop_size == 32
    assert tr.transform_param.mirror is True and te.transform_param.mirror is False
    assert (
        tr.transform_param.mean_file
        == te.transform_param.mean_file
        == str((d / "DB_train_w32_1.binaryproto").resolve())
    )
    assert tr.include[0].phase == 0 and te.include[0].phase == 1
    order = [l.name for l in n.layer]
    assert order == [
        "cifar_train",
        "cifar_test",
        "conv1",
        "pool1",
        "relu1",
        "conv2",
        "relu2",
        "pool2",
        "conv3",
        "relu3",
        "pool3",
        "ip1",
        "ip2",
        "accuracy",
        "loss",
    ]
    for name, num, std in (("conv1", 32, 1e-4), ("conv2", 32, 0.01), ("conv3", 64, 0.01)):
        c = by[name].convolution_param
        assert (c.num_output, c.pad[0], c.kernel_size[0], c.stride[0]) == (num, 2, 5, 1)
        assert c.weight_filler.type == "gaussian" and c.weight_filler.std == pytest.approx(std)
        assert c.bias_filler.type == "constant" and c.bias_filler.value == 0
        assert [p.lr_mult for p in by[name].param] == [1, 2]
    for name, pool in (("pool1", 0), ("pool2", 1), ("pool3", 1)):  # MAX, AVE, AVE
        p = by[name].pooling_param
        assert (p.pool, p.kernel_size, p.stride) == (pool, 3, 2)
    for name, num in (("ip1", 64), ("ip2", 2)):
        ip = by[name].inner_product_param
        assert ip.num_output == num and ip.weight_filler.std == pytest.approx(0.1)
        assert [p.lr_mult for p in by[name].param] == [1, 2]
    assert by["loss"].type == "SoftmaxWithLoss" and by["accuracy"].type == "Accuracy"
    assert by["accuracy"].include[0].phase == 1


def test_dropout_variant(tmp_path):
    ff = templates.render_fold(tmp_path, "1", tmp_path / "a", tmp_path / "b", tmp_path / "m", 256, dropout=True)
    n = _net(ff.train_test)
    order = [l.name for l in n.layer]
    assert order[order.index("ip1") :] == ["ip1", "relu4", "drop4", "ip2", "relu5", "drop5", "accuracy", "loss"]
    assert all(l.dropout_param.dropout_ratio == pytest.approx(0.5) for l in n.layer if l.type == "Dropout")
    assert ff.train_test.name == "1-alexnet_traing_32w_dropout_db.prototxt"
    assert ff.deploy.name == "deploy_train32_dropout.prototxt"


def test_deploy_net_shapes(fold, caffe):
    ff, _ = fold
    net = caffe.Net(str(ff.deploy), caffe.TEST)
    assert net.blobs["data"].data.shape == (10, 3, 32, 32)
    # Caffe pooling rounds up: 32 -> 16 -> 8 -> 4, so ip1 sees 64 x 4 x 4 = 1024 inputs
    assert net.blobs["pool1"].data.shape[2:] == (16, 16) and net.blobs["pool3"].data.shape[1:] == (64, 4, 4)
    assert net.params["ip1"][0].data.shape == (64, 1024)
    assert net.blobs["prob"].data.shape == (10, 2)


def test_job_scripts(fold):
    ff, _ = fold
    assert "-m pipeline caffe-train" in ff.job.read_text()
    assert f"--solver {ff.solver}" in ff.job.read_text()  # a plain path: shlex.quote leaves it bare
    # the original's job name and output (BASE-qsub.pbs: "%(kfoldi)d_TASK"); the job runs 1-train_job.sh
    # from the folder holding it (tests/test_slurm_templates.py compares every field with the original)
    assert '#PBS -N 1_TASK\n#PBS -o "1_TASK_output.out"\n' in ff.pbs.read_text()
    assert f"cd {ff.job.parent}\n\nbash ./{ff.job.name}\n" in ff.pbs.read_text()
