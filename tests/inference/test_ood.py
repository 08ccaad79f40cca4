"""The input gate on real data: the bundled model and its statistics, real radiographs,
and the out-of-scope set of tests/fixtures/nonchest.py (bench/ood.py prints the full figures)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inference.engine import Engine, find_manifest
from inference.loaders import load_study
from inference.manifest import ModelManifest
from inference.ood import (
    MIN_SHORT_SIDE,
    THUMBNAIL_SIDE,
    ScopeGate,
    header_reasons,
    pack_symmetric,
    turned_copies,
    unpack_symmetric,
)
from inference.study import StudyMetadata
from tests.fixtures.nonchest import SHIFTED, build_nonchest, chest_sources, chest_variants

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(threads=1)


@pytest.fixture(scope="module")
def sources() -> list[Path]:
    return chest_sources()


# --------------------------------------------------------------------------------- header
@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (StudyMetadata(), []),
        (StudyMetadata(modality="CR", body_part="CHEST", view_position="PA"), []),
        (StudyMetadata(modality="DX", body_part="thorax", view_position="AP"), []),
        (StudyMetadata(modality="CT"), ["modality CT"]),
        (StudyMetadata(modality="DX", body_part="HAND"), ["body part HAND"]),
        (StudyMetadata(modality="CR", body_part="CHEST", view_position="LL"), ["lateral view (LL)"]),
        (StudyMetadata(modality="MR", body_part="HEAD", view_position="LATERAL"),
         ["body part HEAD", "lateral view (LATERAL)", "modality MR"]),
    ],
)  # fmt: skip
def test_header_reasons(meta: StudyMetadata, expected: list[str]) -> None:
    """One reason per tag that speaks against a frontal chest radiograph; empty tags say nothing."""
    reasons = header_reasons(meta)
    assert len(reasons) == len(expected), reasons
    for fragment, reason in zip(expected, reasons, strict=True):
        assert fragment in reason


def test_turned_copies_are_rotations_and_an_upside_down_flip() -> None:
    rng = np.random.default_rng(0)
    side = THUMBNAIL_SIDE
    layout = rng.random(side * side + 2).astype(np.float32)
    copies = turned_copies(layout)
    thumb = layout[: side * side].reshape(side, side)
    assert copies.shape == (4, layout.size)
    np.testing.assert_array_equal(copies[1, : side * side].reshape(side, side), np.rot90(thumb, 2))
    np.testing.assert_array_equal(copies[3, : side * side].reshape(side, side), thumb[::-1, :])
    np.testing.assert_array_equal(copies[:, side * side :], np.tile(layout[side * side :], (4, 1)))
    batch = turned_copies(np.stack([layout, layout]))
    assert batch.shape == (4, 2, layout.size)


# ------------------------------------------------------------------------ the statistics
def test_shipped_statistics_match_the_shipped_model(engine: Engine) -> None:
    """A stale fit would measure distances in another model's feature space."""
    gate = ScopeGate.load(MODELS, engine.manifest)
    assert gate.image_check, gate.warnings
    assert gate.warnings == []
    assert engine.gate.image_check


def test_missing_or_stale_statistics_leave_a_header_only_gate(tmp_path: Path, engine: Engine, real_dicom: Path) -> None:
    manifest = ModelManifest.load(find_manifest(MODELS))
    missing = ScopeGate.load(tmp_path, manifest)
    assert not missing.image_check and "only DICOM headers" in missing.warnings[0]
    shutil.copy(ScopeGate.stats_path(MODELS, manifest), tmp_path / f"{manifest.name}.ood.npz")
    stale = ScopeGate.load(tmp_path, replace(manifest, sha256="0" * 64))
    assert not stale.image_check and "another model" in stale.warnings[0]
    (tmp_path / f"{manifest.name}.ood.npz").write_bytes(b"not a numpy file")
    broken = ScopeGate.load(tmp_path, manifest)
    assert not broken.image_check and "unreadable" in broken.warnings[0]

    study = load_study(real_dicom)
    verdict = missing.assess(study, engine.predict(study).embedding)
    assert verdict.in_scope and verdict.score == 0.0  # a chest CR header says nothing against it
    ct = load_study(Path(__import__("pydicom").__file__).parent / "data" / "test_files" / "CT_small.dcm")
    verdict = missing.assess(ct, None)
    assert not verdict.in_scope and any("modality CT" in r for r in verdict.reasons)


# ------------------------------------------------------------------------- end to end
def test_real_chest_xrays_pass(engine: Engine, sources: list[Path], real_dicom: Path, tmp_path: Path) -> None:
    """Validation radiographs, their harmless variants and the real adult DICOM are in scope
    (the gate is tuned to flag about 1 % of chest X-rays: allow a stray one)."""
    variants = [c.path for c in chest_variants(tmp_path, sources) if c.category != SHIFTED]
    cases = [*sources, *variants]
    flagged = [(c.name, p.scope_reasons) for c in cases if not (p := engine.predict(load_study(c))).in_scope]
    assert len(flagged) <= 2, flagged

    p = engine.predict(load_study(real_dicom))
    assert p.in_scope, p.scope_reasons
    assert any("Adult patient" in w and "1–5" in w for w in p.warnings), p.warnings


@pytest.mark.slow
def test_out_of_scope_inputs_are_flagged(engine: Engine, sources: list[Path], tmp_path: Path) -> None:
    cases = build_nonchest(tmp_path, sources)
    by_category: dict[str, list[bool]] = {}
    for case in cases:
        p = engine.predict(load_study(case.path))
        assert p.in_scope == (not p.scope_reasons)
        by_category.setdefault(case.category, []).append(not p.in_scope)
    rates = {k: float(np.mean(v)) for k, v in by_category.items()}
    overall = float(np.mean([f for v in by_category.values() for f in v]))
    # Far-out inputs are always caught; cropped radiographs are the hard case (see bench/ood.py).
    for category in ("dicom-non-chest (header)", "photograph / sample image", "synthetic",
                     "rotated radiograph", "inverted radiograph"):  # fmt: skip
        assert rates[category] >= 0.95, rates
    assert rates["dicom-non-chest pixels as PNG"] >= 0.9, rates
    assert overall >= 0.9, rates


def test_blank_image_reason_and_ct_header_reason(engine: Engine, tmp_path: Path) -> None:
    import cv2
    import pydicom

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300), 77, np.uint8))
    p = engine.predict(load_study(blank))
    assert not p.in_scope and any("blank" in r for r in p.scope_reasons)

    ct = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    p = engine.predict(load_study(ct))
    assert not p.in_scope and any("modality CT" in r for r in p.scope_reasons)


def test_a_film_too_small_to_judge_is_refused_with_that_reason(engine: Engine, kermany_samples, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """A real film reduced to 64 x 64 px is out of scope, said so everywhere, never read as
    in scope; at the minimum (128 px on the short side) size alone refuses nothing."""
    import json

    import cv2

    from inference.cli import main as cli
    from inference.presentation import NOT_RELIABLE, Tone, present

    film = cv2.imread(str(kermany_samples["PNEUMONIA"][0]), cv2.IMREAD_GRAYSCALE)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(film, (64, 64), interpolation=cv2.INTER_AREA))
    reason = f"too small to judge: 64 × 64 px, the minimum is {MIN_SHORT_SIDE} px on the short side"

    p = engine.predict(load_study(small))
    assert not p.in_scope and reason in p.scope_reasons
    words = present(p)
    assert words.tone is Tone.UNRELIABLE and words.chip == "not reliable"
    assert words.headline == f"{NOT_RELIABLE} — too small to judge" and reason[:1].upper() + reason[1:] in words.warnings
    assert not any(w.startswith("Small image") for w in words.warnings)  # said once, as the reason

    capsys.readouterr()
    assert cli(["classify", "--json", str(small)]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["in_scope"] is False and reason in record["scope_reasons"]

    edge = tmp_path / "edge.png"
    cv2.imwrite(str(edge), cv2.resize(film, (MIN_SHORT_SIDE, 2 * MIN_SHORT_SIDE), interpolation=cv2.INTER_AREA))
    assert not any(r.startswith("too small") for r in engine.predict(load_study(edge)).scope_reasons)


def test_a_precision_matrix_is_kept_as_its_upper_triangle_without_loss():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(7, 7)).astype(np.float32)
    sym = a + a.T
    packed = pack_symmetric(sym)
    assert packed.shape == (28,)
    np.testing.assert_array_equal(unpack_symmetric(packed), sym)
    with pytest.raises(ValueError, match="not the upper triangle"):
        unpack_symmetric(packed[:-1])


def test_a_distance_over_the_limit_never_reads_as_at_it() -> None:
    """One decimal read "distance 1.0x the limit" for a site-sample film refused as over it."""
    from inference.ood import over_limit

    assert [over_limit(r) for r in (1.0001, 1.004, 1.1, 2.0)] == ["1.01", "1.01", "1.10", "2.00"]
