"""The same radiograph in different clothes gives the model the same input."""

from __future__ import annotations

import numpy as np
import pytest

from inference.loaders import load_study
from inference.preprocess import PreprocessSpec, preprocess
from tests.fixtures.dicom_factory import LOSSLESS_SYNTAXES, write_dicom, write_raster

SPEC = PreprocessSpec()


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "j2k-lossless", "rle", "jpeg-ls"])
def test_monochrome1_and_monochrome2_give_the_same_study(tmp_path, film12, syntax):
    mono2 = load_study(write_dicom(tmp_path / "m2.dcm", film12, syntax, bits_stored=12, window=(2000, 3000)))
    mono1 = load_study(
        write_dicom(tmp_path / "m1.dcm", (4095 - film12).astype(np.uint16), syntax,
                    photometric="MONOCHROME1", bits_stored=12, window=(4095 - 2000, 3000))
    )
    np.testing.assert_array_equal(mono1.pixels, mono2.pixels)
    assert mono1.window == mono2.window
    np.testing.assert_array_equal(preprocess(mono1.pixels, SPEC), preprocess(mono2.pixels, SPEC))


def test_monochrome1_with_rescale_is_a_monotonic_twin(tmp_path, film12):
    """Another stored range and a rescale: pixels differ by an increasing affine map.

    Resizing commutes with an affine map up to float rounding, which can swap near-ties in
    the rank transform: the model input agrees to within float noise, not bit for bit.
    """
    mono2 = load_study(write_dicom(tmp_path / "m2.dcm", film12, bits_stored=12))
    mono1 = load_study(
        write_dicom(tmp_path / "m1.dcm", (65535 - film12 * 8).astype(np.uint16),
                    photometric="MONOCHROME1", bits_stored=16, rescale=(0.5, 100.0))
    )
    order = np.argsort(mono2.pixels, axis=None, kind="stable")
    assert np.all(np.diff(mono1.pixels.ravel()[order]) >= 0)  # bone bright in both
    diff = np.abs(preprocess(mono1.pixels, SPEC) - preprocess(mono2.pixels, SPEC))
    assert diff.max() < 0.005 and diff.mean() < 1e-4


@pytest.mark.parametrize("syntax", LOSSLESS_SYNTAXES)
def test_png_and_lossless_dicom_of_a_real_image_give_identical_model_input(tmp_path, kermany_gray, syntax):
    png = load_study(write_raster(tmp_path / "film.png", kermany_gray))
    dcm = load_study(write_dicom(tmp_path / "film.dcm", kermany_gray, syntax))
    np.testing.assert_array_equal(dcm.pixels, png.pixels)
    np.testing.assert_array_equal(preprocess(dcm.pixels, SPEC), preprocess(png.pixels, SPEC))


@pytest.mark.parametrize("syntax", ["explicit", "jpeg-lossless", "j2k-lossless", "rle"])
def test_16_bit_png_and_12_bit_dicom_give_identical_model_input(tmp_path, film12, syntax):
    png = load_study(write_raster(tmp_path / "film16.png", film12))
    dcm = load_study(write_dicom(tmp_path / "film.dcm", film12, syntax, bits_stored=12))
    np.testing.assert_array_equal(preprocess(dcm.pixels, SPEC), preprocess(png.pixels, SPEC))
