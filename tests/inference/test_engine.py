"""Engine unit tests on a tiny ONNX model with the real model's contract (tests/fixtures).

The end-to-end behaviour on the real bundled model is in test_end_to_end.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import providers as prov
from inference.engine import Engine
from inference.errors import ModelError
from inference.population import AGE_NOT_RECORDED
from inference.prediction import ModelInfo
from inference.profile import ProfileError, SiteProfile, _digest
from inference.preprocess import PreprocessSpec, preprocess
from inference.study import Study, StudyMetadata
from tests.fixtures.tiny_model import CELL, HEAD, build_tiny_model, tiny_profile


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir, provider="cpu")


def make_study(pixels: np.ndarray, warnings: list[str] | None = None) -> Study:
    lo, hi = float(pixels.min()), float(pixels.max())
    return Study(
        path=Path("synthetic.png"),
        pixels=pixels.astype(np.float32),
        window=((lo + hi) / 2, max(hi - lo, 1.0)),
        metadata=StudyMetadata(rows=pixels.shape[0], columns=pixels.shape[1]),
        warnings=list(warnings or []),
    )


def bright_patch_image() -> np.ndarray:
    """A non-square image (rows != columns catches transposed maps) with one bright patch
    in the top-left quarter on a dark background (equalization is a rank transform, so
    the background must be uniformly darker than the patch, not merely darker)."""
    rows, cols = 300, 500
    img = np.full((rows, cols), 10.0, dtype=np.float32)
    img[30:120, 40:160] = 4000.0
    return img


def provider_warnings(eng: Engine) -> list[str]:
    """Engine warnings other than the input gate's (the tiny model ships no gate statistics)."""
    return [w for w in eng.warnings if not w.startswith("Input gate")]


def tiny_logit(pixels: np.ndarray, bias: float = 0.0) -> float:
    """The tiny model's logit computed with numpy alone, to check the engine end to end."""
    x = preprocess(pixels, PreprocessSpec())[0, 0]
    n = x.shape[0] // CELL
    pooled = x.reshape(n, CELL, n, CELL).mean(axis=(1, 3))
    a0, a1 = np.maximum(pooled, 0).mean(), np.maximum(-pooled, 0).mean()
    return float(HEAD[0, 0] * a0 + HEAD[1, 0] * a1 + bias)


# ---------------------------------------------------------------- loading


def test_load_reports_model_provider_and_load_time(engine: Engine) -> None:
    assert engine.provider == "CPUExecutionProvider"
    assert provider_warnings(engine) == []
    assert any("no statistics file tiny-cxr.ood.npz" in w for w in engine.warnings)  # said, not silent
    assert engine.manifest.name == "tiny-cxr"
    assert engine.model_info.sha256 == engine.manifest.sha256
    assert engine.load_ms > 0


def test_manifest_path_can_be_given_directly(model_dir: Path) -> None:
    eng = Engine.load(model_dir / "tiny-cxr.json")
    assert eng.model_path == model_dir / "tiny-cxr.onnx"


def test_tampered_model_is_refused_naming_both_hashes(model_dir: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(model_dir, tmp_path / "models"))
    onnx_file = bad / "tiny-cxr.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    expected = json.loads((bad / "tiny-cxr.json").read_text())["sha256"]
    with pytest.raises(ModelError, match="corrupted or has been modified") as info:
        Engine.load(bad)
    assert expected in str(info.value)
    assert "found" in str(info.value)


def test_missing_model_file_is_a_clear_model_error(model_dir: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(model_dir, tmp_path / "models"))
    (bad / "tiny-cxr.onnx").unlink()
    for where in (bad, bad / "tiny-cxr.json"):
        with pytest.raises(ModelError, match="tiny-cxr.onnx is missing"):
            Engine.load(where)


def test_folder_without_or_with_two_manifests_is_refused(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Engine.load(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no model manifest"):
        Engine.load(empty)
    (empty / "lunglens.json").write_text("{ truncated")
    with pytest.raises(ModelError, match="lunglens.json is not a readable manifest"):
        Engine.load(empty)
    two = Path(shutil.copytree(model_dir, tmp_path / "two"))
    build_tiny_model(two, name="other")
    with pytest.raises(ModelError, match="more than one model manifest"):
        Engine.load(two)


def test_a_json_that_is_not_a_manifest_beside_the_model_is_ignored(model_dir: Path, tmp_path: Path) -> None:
    extra = Path(shutil.copytree(model_dir, tmp_path / "models"))
    (extra / "metrics.json").write_text('{"auc": 0.99}')
    assert Engine.load(extra).manifest.name == "tiny-cxr"


def test_model_not_matching_its_manifest_outputs_is_refused(model_dir: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(model_dir, tmp_path / "models"))
    manifest = json.loads((bad / "tiny-cxr.json").read_text())
    manifest["outputs"] = {"logit": "logit", "features": "features", "features_grad": "dlogit_dA"}
    (bad / "tiny-cxr.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="dlogit_dA"):
        Engine.load(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda p: p.update(default_operating_point="strict"), "default operating point 'strict'"),
     (lambda p: p["calibration"].update(slope=0.0), "slope must be positive"),
     (lambda p: p["model"].update(sha256="0" * 64), "made for model tiny-cxr"),
     (lambda p: p.clear(), "not a LungLens site profile")],
)
def test_a_shipped_profile_the_engine_cannot_honour_is_refused_at_load(
    model_dir: Path, tmp_path: Path, change, message: str
) -> None:
    bad = Path(shutil.copytree(model_dir, tmp_path / "models"))
    profile = json.loads((bad / "tiny-cxr.profile.json").read_text())
    change(profile)
    if profile:  # signed again, so that each change is refused for its own reason, not as an edit
        profile["sha256"] = _digest({k: v for k, v in profile.items() if k != "sha256"})
    (bad / "tiny-cxr.profile.json").write_text(json.dumps(profile))
    with pytest.raises(ModelError, match=f"shipped site profile is unusable.*{message}"):
        Engine.load(bad)


def test_a_manifest_without_its_profile_is_an_incomplete_installation(model_dir: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(model_dir, tmp_path / "models"))
    (bad / "tiny-cxr.profile.json").unlink()
    with pytest.raises(ModelError, match="shipped site profile is unusable.*tiny-cxr.profile.json: no such profile"):
        Engine.load(bad)


# ---------------------------------------------------------------- profiles


def test_a_site_profile_replaces_the_shipped_calibration_and_points(model_dir: Path, tmp_path: Path) -> None:
    shipped = Engine.load(model_dir)
    site = tiny_profile(shipped.model_info, temperature=8.0, default_operating_point="balanced")
    path = site.save(tmp_path / "site.profile.json")
    study = make_study(bright_patch_image())
    a = shipped.predict(study)
    b = Engine.load(model_dir, profile=path).predict(study)
    assert a.logit == pytest.approx(b.logit, abs=1e-6)
    assert b.probability == pytest.approx(1 / (1 + math.exp(-b.logit / 8.0)), abs=1e-6)
    assert (b.operating_point, b.threshold) == ("balanced", 0.5)
    assert a.profile == shipped.profile.info and b.profile.sha256 == SiteProfile.load(path).sha256 != a.profile.sha256
    shipped.set_profile(path)  # the app's "activate"
    assert shipped.predict(study).probability == pytest.approx(b.probability)


def test_a_profile_of_another_model_is_refused(model_dir: Path, tmp_path: Path) -> None:
    other = tiny_profile(ModelInfo("other-cxr", "2.0", "ab" * 32)).save(tmp_path / "other.profile.json")
    with pytest.raises(ProfileError, match="made for model other-cxr 2.0.*not for the model in use, tiny-cxr"):
        Engine.load(model_dir, profile=other)
    engine = Engine.load(model_dir)
    with pytest.raises(ProfileError, match="run `lunglens calibrate` again"):
        engine.set_profile(other)
    assert engine.profile.name == "tiny test profile"  # the one in use stays


def test_profile_round_trip_and_hash(model_dir: Path, tmp_path: Path) -> None:
    """What is saved is what is loaded; the hash covers the body, so any edit changes it."""
    profile = tiny_profile(Engine.load(model_dir).model_info)
    path = profile.save(tmp_path / "p.profile.json")
    back = SiteProfile.load(path)
    assert (back.name, back.calibration, back.operating_points, back.source, back.metrics) == (
        profile.name, profile.calibration, profile.operating_points, profile.source, profile.metrics)
    data = json.loads(path.read_text())
    assert data["sha256"] == back.sha256 and len(back.sha256) == 64
    assert SiteProfile.load(path).sha256 == back.sha256  # stable
    data["operating_points"]["balanced"]["threshold"] = 0.55
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="contents were changed after"):  # the hash it records is not its own
        SiteProfile.load(path)
    del data["sha256"]  # nor is one whose hash was deleted to hide the edit
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="records no sha256"):
        SiteProfile.load(path)


# -------------------------------------------------------------- providers


def test_explicit_unavailable_provider_falls_back_to_cpu_with_warning(model_dir: Path) -> None:
    eng = Engine.load(model_dir, provider="cuda")  # real: this install has no CUDA
    assert eng.provider == "CPUExecutionProvider"
    (warning,) = provider_warnings(eng)
    assert "CUDA" in warning and "CPU" in warning


def test_listed_provider_that_fails_to_start_falls_back(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Mocked: no GPU here. Pretend CUDA is compiled in; ONNX Runtime then cannot start it.
    monkeypatch.setattr(prov, "available_providers", lambda: [prov.CUDA, prov.CPU])
    auto = Engine.load(model_dir, provider="auto")
    assert auto.provider == prov.CPU and provider_warnings(auto) == []  # auto moving on is not a problem
    explicit = Engine.load(model_dir, provider="cuda")
    assert explicit.provider == prov.CPU
    assert any("CUDA execution provider failed to start" in w for w in explicit.warnings)


def test_unknown_provider_name_runs_on_cpu_and_says_so(model_dir: Path) -> None:
    eng = Engine.load(model_dir, provider="tpu")  # e.g. a stale settings file
    assert eng.provider == prov.CPU
    assert provider_warnings(eng) == ["unknown execution provider 'tpu' (accepted: auto, cpu, cuda, directml, coreml); "
                            "running on CPU"]


def test_provider_names() -> None:
    assert prov.resolve("DirectML") == "DmlExecutionProvider"
    assert prov.resolve("CPUExecutionProvider") == prov.CPU
    assert prov.friendly_name("CoreMLExecutionProvider") == "CoreML"
    assert prov.AUTO_ORDER[-1] == prov.CPU
    assert prov.CPU in prov.available_providers()
    assert "AzureExecutionProvider" not in prov.available_providers()  # a cloud provider: never offered
    with pytest.raises(ValueError, match="accepted"):
        prov.resolve("tpu")


def test_threads_are_applied_and_validated(model_dir: Path) -> None:
    eng = Engine.load(model_dir, threads=1)
    assert eng._session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(ValueError, match="at least 1"):
        Engine.load(model_dir, threads=0)


# -------------------------------------------------------------- prediction


def test_probability_is_temperature_scaled_sigmoid_of_the_models_logit(engine: Engine) -> None:
    pixels = bright_patch_image()
    pred = engine.predict(make_study(pixels))
    expected_logit = tiny_logit(pixels)
    assert pred.logit == pytest.approx(expected_logit, abs=1e-4)
    assert pred.probability == pytest.approx(1 / (1 + math.exp(-expected_logit / 2.0)), abs=1e-5)
    assert 0.0 <= pred.probability <= 1.0


def test_temperature_changes_probability_not_logit(tmp_path: Path) -> None:
    cold = Engine.load(build_tiny_model(tmp_path / "t1", temperature=1.0, logit_bias=1.0))
    warm = Engine.load(build_tiny_model(tmp_path / "t4", temperature=4.0, logit_bias=1.0))
    study = make_study(bright_patch_image())
    a, b = cold.predict(study), warm.predict(study)
    assert a.logit == pytest.approx(b.logit, abs=1e-6)
    assert a.probability > b.probability > 0.5


def test_default_operating_point_and_named_one(engine: Engine) -> None:
    study = make_study(bright_patch_image())
    default = engine.predict(study)
    assert default.operating_point == "high_sensitivity"
    assert (default.threshold, default.sensitivity, default.specificity) == (0.3, 0.96, 0.80)
    balanced = engine.predict(study, operating_point="balanced")
    assert (balanced.threshold, balanced.sensitivity) == (0.5, 0.90)
    with pytest.raises(ValueError, match="unknown operating point 'strict'.*high_sensitivity, balanced"):
        engine.predict(study, operating_point="strict")


def test_label_follows_a_custom_threshold(engine: Engine) -> None:
    study = make_study(bright_patch_image())
    p = engine.predict(study).probability
    above = engine.predict(study, threshold=p - 1e-6)
    below = engine.predict(study, threshold=min(1.0, p + 1e-6))
    assert above.label == "PNEUMONIA" and above.is_positive
    assert below.label == "NORMAL"
    assert above.operating_point == "custom" and above.sensitivity is None and above.specificity is None
    assert engine.predict(study, threshold=p).label == "PNEUMONIA"  # probability >= threshold
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            engine.predict(study, threshold=bad)


def test_attribution_is_the_native_grid_in_logit_units_summing_to_the_logit(engine: Engine) -> None:
    """At the input size the grid is exactly the tiny model's per-cell share of its logit."""
    rng = np.random.default_rng(3)
    pixels = cv2.GaussianBlur(rng.random((224, 224)).astype(np.float32), (0, 0), 12)
    pred = engine.predict(make_study(pixels))
    x = preprocess(pixels, PreprocessSpec())[0, 0]
    pooled = x.reshape(14, CELL, 14, CELL).mean(axis=(1, 3))
    ref = (HEAD[0, 0] * np.maximum(pooled, 0) + HEAD[1, 0] * np.maximum(-pooled, 0)) / 196.0
    assert pred.attribution is not None and pred.attribution.grid.shape == (14, 14)
    np.testing.assert_allclose(pred.attribution.grid, ref, atol=1e-6)  # signed: dark cells lower it
    assert float(pred.attribution.grid.sum()) == pytest.approx(pred.logit, abs=1e-5)  # the head's bias is 0
    assert pred.attribution.full_scale == pytest.approx(HEAD[0, 0] / 196.0)  # from the manifest


@pytest.mark.parametrize(("rows", "cols"), [(300, 500), (448, 336), (224, 224)])
def test_the_map_peaks_over_the_pixels_it_comes_from(engine: Engine, rows: int, cols: int) -> None:
    """Alignment end to end: one bright block on a film of any shape lands in one known cell of
    the tiny model (cell = 16 input pixels), and the drawn map peaks inside that block."""
    i, j = 3, 10  # the hot cell: input rows 48..63, columns 160..175
    r0, r1 = round(16 * i * rows / 224), round(16 * (i + 1) * rows / 224)
    c0, c1 = round(16 * j * cols / 224), round(16 * (j + 1) * cols / 224)
    pixels = np.full((rows, cols), 10.0, np.float32)
    pixels[r0:r1, c0:c1] = 4000.0
    grid = engine.predict(make_study(pixels)).attribution
    assert grid is not None
    assert np.unravel_index(int(grid.grid.argmax()), grid.grid.shape) == (i, j)
    drawn = grid.upsampled((rows, cols))
    peak = np.unravel_index(int(drawn.argmax()), drawn.shape)
    assert r0 <= peak[0] < r1 and c0 <= peak[1] < c1
    # The peak sits at the block's centre (within a pixel), not a half cell down and right.
    centre_r, centre_c = (i + 0.5) * rows / 14 - 0.5, (j + 0.5) * cols / 14 - 0.5
    assert abs(peak[0] - centre_r) <= 1.0 and abs(peak[1] - centre_c) <= 1.0


def test_prediction_carries_model_warnings_timings_and_embedding(model_dir: Path) -> None:
    eng = Engine.load(model_dir, provider="cuda")
    pred = eng.predict(make_study(bright_patch_image(), warnings=["image is smaller than 256 px"]))
    # The study's, the population's (a synthetic image records no age), the engine's.
    assert pred.warnings == ["image is smaller than 256 px", AGE_NOT_RECORDED, *eng.warnings]
    assert pred.provider == "CPUExecutionProvider"
    assert (pred.model.name, pred.model.version) == ("tiny-cxr", "0.0.1-test")
    assert set(pred.timings_ms) == {"load", "preprocess", "inference", "attribution", "gate"}
    assert all(v >= 0 for v in pred.timings_ms.values()) and pred.timings_ms["load"] == round(eng.load_ms, 3)
    assert pred.embedding is not None and pred.embedding.shape == (2,)


def test_study_warnings_are_not_mutated_by_predict(engine: Engine) -> None:
    study = make_study(bright_patch_image(), warnings=["colour image converted to gray"])
    engine.predict(study)
    engine.predict(study)
    assert study.warnings == ["colour image converted to gray"]


def test_input_gate_verdict_is_on_the_prediction(engine: Engine) -> None:
    """Without gate statistics (the tiny model has none) the gate still reads headers and
    refuses blank images; the verdict travels on the Prediction."""
    rng = np.random.default_rng(5)
    film = cv2.GaussianBlur(rng.random((300, 260)).astype(np.float32), (0, 0), 10) * 1000
    chest = engine.predict(make_study(film))
    assert chest.in_scope and chest.scope_reasons == []
    knee_study = make_study(film)
    knee_study.metadata = StudyMetadata(body_part="KNEE", modality="DX")
    knee = engine.predict(knee_study)
    assert not knee.in_scope and any("KNEE" in r for r in knee.scope_reasons)
    assert knee.probability == chest.probability  # flagged, never silently changed
    blank = engine.predict(make_study(np.full((300, 260), 7.0, np.float32)))
    assert not blank.in_scope and any("blank" in r for r in blank.scope_reasons)
