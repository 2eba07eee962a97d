"""Patch-level evaluation: metrics by hand, and the released model against caffe.Classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import metrics
from pipeline.usecases.idc import evaluation
from tests.conftest import REALDATA, RELEASED, need


def test_scores_by_hand():
    c = metrics.confusion([1, 1, 1, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 0, 0])
    assert c == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    s = metrics.scores(c)
    assert s["f_score"] == pytest.approx(4 / 7) and s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == 0.5 and s["specificity"] == 0.75 and s["balanced_accuracy"] == 0.625
    assert s["accuracy"] == 5 / 8 and s["n"] == 8
    none = metrics.scores(metrics.confusion([0, 0], [0, 0]))
    assert none["recall"] is None and none["balanced_accuracy"] is None and none["f_score"] is None


def test_released_crop_model_matches_caffe_classifier_on_real_patches(caffe, tmp_path):
    """Per-patch predictions of `evaluate` equal the original inference (caffe.Classifier,
    oversampling, on the centre crop of each real 50x50 patch): same class, |dP| <= 1e-5."""
    root = need(REALDATA)
    rel = need(RELEASED / "uc6-idc")
    model = rel / "1_caffenet_train_w32_noresize_iter_600000.caffemodel"
    mean_path = rel / "DB_train_w32_noresize.binaryproto"
    res = evaluation.evaluate(
        model,
        mean_path,
        "crop",
        tmp_path / "m.json",
        patients_dir=root,
        patients=["10253", "10254"],
        show_progress=False,
    )
    assert res["overall"]["n"] == 1397
    rows = [ln.split(",") for ln in (tmp_path / "m.csv").read_text().splitlines()[1:]]
    ours = np.array([[float(r[3]), float(r[4])] for r in rows])

    # independent implementation: the original step-5 classifier set-up
    from pipeline import templates
    from pipeline.caffe_env import caffe_pb2

    blob = caffe_pb2().BlobProto()
    blob.ParseFromString(mean_path.read_bytes())
    means = np.asarray(blob.data).reshape(3, 32, 32)
    deploy = templates.write_deploy(tmp_path / "deploy.prototxt")
    net = caffe.Classifier(
        str(deploy), str(model), mean=means, channel_swap=(2, 1, 0), raw_scale=255, image_dims=(32, 32)
    )
    import skimage
    import skimage.io

    wins = []
    for r in rows:
        pid, name = r[1], r[0]
        label = r[2]
        img = skimage.img_as_float(skimage.io.imread(str(root / pid / label / name))).astype(np.float32)
        wins.append(img[8:40, 8:40, :3])
    ref = net.predict(wins)
    assert np.abs(ours - ref).max() <= 1e-5
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    labels = np.array([int(r[2]) for r in rows])
    assert {k: res["overall"][k] for k in ("tp", "fp", "fn", "tn")} == metrics.confusion(labels, ref.argmax(1))
    assert set(json.loads((tmp_path / "m.json").read_text())["patients"]) == {"10253", "10254"}


def test_model_that_does_not_fit_the_deploy_net_is_refused(caffe, tmp_path):
    from pipeline import templates
    from pipeline.classify import ModelMismatch, check_model

    rel = need(RELEASED / "uc6-idc")
    deploy = templates.write_deploy(tmp_path / "d.prototxt", dropout=False, num_output=3)
    with pytest.raises(ModelMismatch, match="ip2"):
        check_model(deploy, rel / "1_caffenet_train_w32_noresize_iter_600000.caffemodel")
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelMismatch, match="bad.caffemodel"):
        check_model(deploy, bad)
