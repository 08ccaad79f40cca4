"""DICOM loading: every transfer syntax, pixel semantics, metadata and the tags panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from inference.loaders import load_study
from inference.study import Study
from tests.fixtures.dicom_factory import (
    LOSSLESS_SYNTAXES,
    LOSSY_SYNTAXES,
    TRANSFER_SYNTAXES,
    write_dicom,
)


def bundled(name: str) -> str:
    """A sample file pydicom ships in its wheel (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom sample {name} missing"
    return path


def _load(tmp_path: Path, pixels: np.ndarray, syntax: str = "explicit", **kw) -> Study:
    return load_study(write_dicom(tmp_path / f"{syntax}.dcm", pixels, syntax, **kw))


@pytest.mark.parametrize("syntax", LOSSLESS_SYNTAXES)
def test_lossless_syntaxes_give_back_the_exact_12_bit_pixels(tmp_path, film12, syntax):
    study = _load(tmp_path, film12, syntax, bits_stored=12)
    assert study.pixels.dtype == np.float32 and study.pixels.ndim == 2
    np.testing.assert_array_equal(study.pixels, film12.astype(np.float32))
    assert study.metadata.transfer_syntax == TRANSFER_SYNTAXES[syntax].name
    assert study.metadata.bits_stored == 12
    assert study.warnings == []


@pytest.mark.parametrize("syntax", LOSSY_SYNTAXES)
def test_lossy_syntaxes_decode_close_to_the_original(tmp_path, film12, kermany_gray, syntax):
    if syntax == "jpeg-baseline":  # 8-bit only
        original, bits = kermany_gray.astype(np.float32), 8
    else:
        original, bits = film12.astype(np.float32), 12
    big = np.kron(original, np.ones((2, 2), np.float32)) if bits == 8 else original
    study = _load(tmp_path, big.astype(np.uint8 if bits == 8 else np.uint16), syntax, bits_stored=bits)
    err = np.abs(study.pixels - big)
    full_scale = 2.0**bits - 1
    assert err.mean() < 0.01 * full_scale, f"{syntax}: mean error {err.mean():.1f}"
    assert np.corrcoef(study.pixels.ravel(), big.ravel())[0, 1] > 0.995
    assert study.metadata.transfer_syntax == TRANSFER_SYNTAXES[syntax].name


def test_real_jpeg_baseline_chest_radiograph(real_dicom):
    study = load_study(real_dicom)
    meta = study.metadata
    assert study.shape == (1024, 1024) and study.pixels.dtype == np.float32
    assert (meta.modality, meta.body_part, meta.view_position) == ("CR", "CHEST", "PA")
    assert meta.patient_sex == "M" and meta.photometric_interpretation == "MONOCHROME2"
    assert meta.transfer_syntax == "JPEG Baseline (Process 1)" and meta.source_format == "DICOM"
    assert meta.bits_stored == 8 and (meta.rows, meta.columns) == (1024, 1024)
    assert study.warnings == []
    assert 0 <= study.pixels.min() and study.pixels.max() <= 255 and study.pixels.std() > 20
    # No window in the file: the default spans the robust 0.5..99.5 percentiles.
    lo, hi = np.percentile(study.pixels, [0.5, 99.5])
    center, width = study.window
    assert abs(center - (lo + hi) / 2) < 3 and abs(width - (hi - lo)) < 6


@pytest.mark.parametrize(
    "options",
    [
        {"no_preamble": True},
        {"no_preamble": True, "transfer_syntax": "rle"},
        {"no_file_meta": True},
        {"no_file_meta": True, "transfer_syntax": "implicit"},
        {"no_file_meta": True, "transfer_syntax": "big"},
    ],
    ids=lambda o: "-".join(k if v is True else str(v) for k, v in o.items()),
)
def test_files_without_preamble_or_file_meta(tmp_path, film12, options):
    head = write_dicom(tmp_path / "bare", film12, bits_stored=12, **options).read_bytes()[:132]
    assert head[128:132] != b"DICM"
    study = load_study(tmp_path / "bare")
    np.testing.assert_array_equal(study.pixels, film12)


def test_pydicom_samples_agree_across_syntaxes():
    reference = load_study(bundled("MR_small.dcm")).pixels
    for name in ("MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_expb.dcm",
                 "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        np.testing.assert_array_equal(load_study(bundled(name)).pixels, reference, err_msg=name)


def test_pydicom_jpeg_extended_and_deflated_samples():
    extended = load_study(bundled("JPGExtended.dcm"))
    assert extended.metadata.bits_stored == 12 and extended.pixels.max() > 255
    deflated = load_study(bundled("image_dfl.dcm"))
    assert deflated.metadata.transfer_syntax == "Deflated Explicit VR Little Endian"
    assert deflated.shape == (512, 512) and deflated.pixels.std() > 0


def test_signed_pixels_and_rescale(tmp_path, film12):
    signed = (film12.astype(np.int16) - 2048).astype(np.int16)
    study = _load(tmp_path, signed, bits_stored=12, rescale=(2.0, -1000.0))
    np.testing.assert_array_equal(study.pixels, signed * 2.0 - 1000.0)
    assert study.metadata.bits_stored == 12


def test_unused_high_bits_are_masked(tmp_path, film12):
    path = write_dicom(tmp_path / "overlay.dcm", film12, bits_stored=12)
    ds = pydicom.dcmread(path)
    noisy = film12 | np.uint16(0xA000)  # overlay bits above BitsStored
    ds.PixelData = noisy.astype("<u2").tobytes()
    ds.save_as(path)
    np.testing.assert_array_equal(load_study(path).pixels, film12)


def test_high_bit_above_bits_stored_shifts_values_down(tmp_path, film12):
    shifted = (film12 << 4).astype(np.uint16)  # 12 bits stored in bits 4..15
    study = _load(tmp_path, shifted, tags={"BitsStored": 12, "HighBit": 15})
    np.testing.assert_array_equal(study.pixels, film12)


def test_monochrome1_is_inverted_with_its_window(tmp_path, film12):
    mono1 = (4095 - film12).astype(np.uint16)
    study = _load(tmp_path, mono1, photometric="MONOCHROME1", bits_stored=12, window=(3000, 1500))
    np.testing.assert_array_equal(study.pixels, film12)  # bone bright again
    assert study.window == (4095 - 3000, 1500)
    assert study.metadata.photometric_interpretation == "MONOCHROME1"


def test_window_center_width_and_multi_valued_window(tmp_path, film12):
    assert _load(tmp_path, film12, bits_stored=12, window=(1800, 2200)).window == (1800.0, 2200.0)
    multi = _load(tmp_path, film12, bits_stored=12,
                  tags={"WindowCenter": ["1000", "2000"], "WindowWidth": ["500", "900"]})
    assert multi.window == (1000.0, 500.0)


def test_window_is_in_modality_units_after_rescale(tmp_path, film12):
    study = _load(tmp_path, film12, bits_stored=12, rescale=(1.0, -1024.0), window=(-24, 400))
    assert study.window == (-24.0, 400.0)
    assert study.pixels.min() >= -1024.0


def test_voi_lut_sequence_sets_the_window_and_wins_over_window_tags(tmp_path, film12):
    ramp = np.clip(np.arange(3001) - 500, 0, 2000) * 32  # flat 500 | ramp 2000 | flat 500
    study = _load(tmp_path, film12, bits_stored=12, voi_lut=(500, ramp, 16), window=(10, 20))
    center, width = study.window
    assert abs(center - 2000) <= 2 and abs(width - 2000) <= 3


def test_default_window_from_robust_percentiles(tmp_path, film12):
    study = _load(tmp_path, film12, bits_stored=12)
    lo, hi = np.percentile(film12, [0.5, 99.5])
    center, width = study.window
    assert abs(center - (lo + hi) / 2) < 0.01 * 4095 and abs(width - (hi - lo)) < 0.02 * 4095


@pytest.mark.parametrize("syntax", ["explicit", "rle", "j2k-lossless", "jpeg-lossless"])
def test_multi_frame_uses_the_first_frame_and_warns(tmp_path, film12, syntax):
    frames = np.stack([film12, 4095 - film12, film12 // 2]).astype(np.uint16)
    study = _load(tmp_path, frames, syntax, bits_stored=12)
    np.testing.assert_array_equal(study.pixels, film12)
    assert any("Multi-frame image (3 frames)" in w for w in study.warnings)


def test_palette_colour_is_converted_with_a_warning(tmp_path, film12):
    index = (film12 >> 4).astype(np.uint8)
    ramp = np.arange(256, dtype=np.uint16) * 257
    colour = _load(tmp_path, index, photometric="PALETTE COLOR", palette=(ramp, ramp[::-1], ramp // 2))
    assert colour.shape == index.shape and "Colour image: converted to greyscale." in colour.warnings
    grey = _load(tmp_path, index, photometric="PALETTE COLOR", palette=(ramp, ramp, ramp))
    np.testing.assert_array_equal(grey.pixels, ramp[index])  # a grey palette is not "colour"
    assert grey.warnings == []
    sample = load_study(bundled("examples_palette.dcm"))
    assert sample.pixels.ndim == 2 and "Colour image: converted to greyscale." in sample.warnings


def test_rgb_and_ybr_colour_dicoms(tmp_path, kermany_gray):
    rgb = np.dstack([kermany_gray, kermany_gray // 2, 255 - kermany_gray]).astype(np.uint8)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    for photometric in ("RGB", "YBR_FULL"):
        study = _load(tmp_path, rgb, photometric=photometric)
        assert study.pixels.ndim == 2 and np.abs(study.pixels - expected).max() <= 2.5, photometric
        assert "Colour image: converted to greyscale." in study.warnings
    native_422 = load_study(bundled("SC_ybr_full_422_uncompressed.dcm"))  # 2 samples a pixel
    rgb_twin = load_study(bundled("SC_rgb_dcmtk_+eb+cr.dcm"))  # the same picture, stored as RGB
    assert np.abs(native_422.pixels - rgb_twin.pixels).mean() < 3
    ybr = load_study(bundled("examples_ybr_color.dcm"))  # JPEG YBR_FULL_422, 30 frames
    assert ybr.pixels.ndim == 2 and ybr.metadata.photometric_interpretation == "YBR_FULL_422"
    assert any("Colour" in w for w in ybr.warnings) and any("Multi-frame" in w for w in ybr.warnings)


def test_colour_jpeg_baseline_ybr_422(tmp_path, kermany_gray):
    big = np.kron(kermany_gray, np.ones((2, 2), np.uint8))
    rgb = np.dstack([big, big, big])
    study = _load(tmp_path, rgb, "jpeg-baseline", photometric="RGB")
    assert study.metadata.photometric_interpretation == "YBR_FULL_422"
    assert np.abs(study.pixels - big).mean() < 3
    assert "Colour image: converted to greyscale." not in study.warnings  # grey content


def test_metadata_fields(tmp_path, film12):
    meta = _load(tmp_path, film12, "rle", bits_stored=12).metadata
    assert meta.patient_name == "Test^Patient" and meta.patient_id == "LL-0001"
    assert (meta.patient_sex, meta.patient_age, meta.study_date) == ("F", "004Y", "20240131")
    assert meta.study_description == "CHEST PA" and meta.accession_number == "A123"
    assert (meta.modality, meta.body_part, meta.view_position) == ("DX", "CHEST", "PA")
    assert meta.institution == "LungLens Test Hospital"
    assert (meta.rows, meta.columns, meta.bits_stored) == (600, 500, 12)
    assert meta.photometric_interpretation == "MONOCHROME2" and meta.source_format == "DICOM"
    assert meta.study_instance_uid and meta.series_instance_uid and meta.sop_instance_uid


def test_tags_panel_rows(tmp_path, film12):
    ramp = np.arange(4096, dtype=np.uint16) * 16
    study = _load(tmp_path, film12, bits_stored=12, voi_lut=(0, ramp, 16))
    rows = {tag: (keyword, value) for tag, keyword, value in study.tags}
    assert study.tags[0][0].startswith("(0002,")  # file meta first
    assert rows["(0010,0010)"] == ("PatientName", "Test^Patient")
    assert rows["(0028,0010)"] == ("Rows", "600")
    assert rows["(0028,3010)"] == ("VOILUTSequence", "<sequence of 1 item>")
    assert "(7FE0,0010)" not in rows  # pixel data is never dumped into the panel
    assert all(len(value) <= 160 for _, _, value in study.tags)


def test_modality_lut_sequence(tmp_path, film12):
    item = pydicom.Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "OD"
    item.add_new(0x00283006, "US", [int(v) for v in (np.arange(4096) * 3 // 2)])
    study = _load(tmp_path, film12, bits_stored=12, tags={"ModalityLUTSequence": pydicom.Sequence([item])})
    np.testing.assert_array_equal(study.pixels, (film12.astype(np.int64) * 3 // 2).astype(np.float32))


@pytest.mark.parametrize("syntax", ["rle", "j2k-lossless", "jpeg-ls", "jpeg-lossless"])
def test_compressed_pixel_data_without_file_meta_is_recognised(tmp_path, film12, syntax):
    path = write_dicom(tmp_path / "c.dcm", film12, syntax, bits_stored=12)
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x08\x00"  # starts straight with the data set
    np.testing.assert_array_equal(load_study(path).pixels, film12)


def test_the_header_a_study_keeps_for_its_exports_holds_no_pixels_nor_the_file(tmp_path):
    """Kept whole, the data set carried the file it was read from: 15 MB more per large film
    through the pipe at every N, unseen by the decode cache's byte bound."""
    import pickle

    study = load_study(write_dicom(tmp_path / "big.dcm", np.zeros((3000, 2500), np.uint16), "explicit",
                                   bits_stored=12, tags={"PatientName": "Núñez^José"}))
    assert "PixelData" not in study.header and str(study.header.PatientName) == "Núñez^José"
    assert len(pickle.dumps(study.header)) < 64 * 1024
