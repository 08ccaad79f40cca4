"""The training pipeline end to end on a few batches of real images: train, export, reload in ORT."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from inference.manifest import ModelManifest
from inference.prediction import ModelInfo
from inference.profile import SiteProfile
from inference.engine import find_manifest
from inference.preprocess import preprocess
from training.data import list_items, load_gray
from training.export import sha256_of
from training.train import DEFAULT_VAL_LIST, main, normal_series_weights

from tests.conftest import KERMANY_TRAIN


@pytest.mark.slow
def test_smoke_run_exports_a_model_that_honours_the_onnx_contract(tmp_path, kermany_samples):
    out = tmp_path / "models"
    rc = main(["--data", str(KERMANY_TRAIN.parent), "--out", str(out), "--smoke",
               "--runs", str(tmp_path / "runs"), "--val-patients", str(DEFAULT_VAL_LIST)])
    assert rc == 0
    manifest = ModelManifest.load(out / "lunglens-cxr.json")
    onnx_path = out / manifest.onnx_file
    assert manifest.sha256 == sha256_of(onnx_path)
    # the defaults rebuild what ships: the same input size and preprocessing as the bundled model
    assert manifest.preprocess == ModelManifest.load(find_manifest(None)).preprocess
    profile = SiteProfile.load(out / manifest.default_profile, ModelInfo(manifest.name, manifest.version, manifest.sha256))
    assert set(profile.operating_points) == {"high_sensitivity", "balanced"}
    assert (tmp_path / "models" / "lunglens-cxr-smoke.pt").exists()
    logs = list((tmp_path / "runs").glob("*/train.log"))
    assert logs and "epoch 1/1" in logs[0].read_text()

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["logit", "features", "features_grad"]
    files = kermany_samples["NORMAL"][:2] + kermany_samples["PNEUMONIA"][:1]
    x = np.concatenate([preprocess(load_gray(f), manifest.preprocess) for f in files])
    logit, feats, grads = sess.run(None, {"image": x})  # batch of 3: the batch axis is dynamic
    assert logit.shape == (3, 1) and np.isfinite(logit).all()
    assert feats.ndim == 4 and feats.shape[0] == 3 and min(feats.shape[2:]) >= 7
    assert grads.shape == feats.shape
    raw = json.loads((out / "lunglens-cxr.json").read_text())
    assert raw["training_data"]["licence"] == "CC BY 4.0"


def test_the_auxiliary_subtype_comes_from_the_graders_file_names():
    """``--subtype`` learns viral against bacterial pneumonia: the label is in the file name
    (``personN_virus_M`` / ``personN_bacteria_M``); normal films have none."""
    items = list_items(KERMANY_TRAIN.parent)
    pneumonia = [it for it in items if it.label == 1]
    assert not any(it.viral for it in items if it.label == 0)
    assert all(it.viral == ("_virus_" in it.path.name) and (it.viral or "_bacteria_" in it.path.name)
               for it in pneumonia)
    assert sum(it.viral for it in pneumonia) == 1345 and len(pneumonia) - 1345 == 2530


def test_the_normal_series_weight_moves_emphasis_within_the_normal_class_only():
    """``--normal2-weight`` makes a NORMAL2 normal film count W times an IM one, while the normal
    class's share of the loss (set by ``--class-weight``) and every pneumonia film stay as they were."""
    items = list_items(KERMANY_TRAIN.parent)
    labels = np.array([it.label for it in items])
    normal2 = np.array([it.normal2 for it in items])
    assert normal2.sum() == 744 and not normal2[labels == 1].any()  # the README's 1,341 normals: 744 + 597
    w = normal_series_weights(labels, normal2, 2.0)
    assert np.allclose(w[labels == 1], 1.0)
    assert np.isclose(w[labels == 0].mean(), 1.0)
    assert np.allclose(w[normal2] / w[(labels == 0) & ~normal2][0], 2.0)
    assert np.array_equal(normal_series_weights(labels, normal2, 1.0), np.ones(len(items), np.float32))
