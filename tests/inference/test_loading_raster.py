"""Raster loading: PNG, JPEG, BMP, TIFF; 8/16-bit; grey, RGB, RGBA; format told by content."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from inference.loaders import load_study
from tests.fixtures.dicom_factory import write_dicom, write_raster


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_8_bit_grey_rasters_are_exact(tmp_path, kermany_gray, suffix):
    study = load_study(write_raster(tmp_path / f"film{suffix}", kermany_gray))
    np.testing.assert_array_equal(study.pixels, kermany_gray.astype(np.float32))
    assert study.pixels.dtype == np.float32
    fmt = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF"}[suffix]
    assert study.metadata.source_format == fmt and study.metadata.bits_stored == 8
    assert study.metadata.photometric_interpretation == "MONOCHROME2"
    assert study.tags == []


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_png_and_tiff_load_with_full_depth(tmp_path, film12, suffix):
    study = load_study(write_raster(tmp_path / f"film16{suffix}", film12))
    np.testing.assert_array_equal(study.pixels, film12.astype(np.float32))
    assert study.metadata.bits_stored == 16 and study.pixels.max() > 255
    assert study.warnings == []


def test_jpeg_training_image_loads_as_grey_without_colour_warning(kermany_samples):
    path = kermany_samples["NORMAL"][0]  # an RGB JPEG with three equal channels
    study = load_study(path)
    assert study.shape == (224, 224) and study.metadata.source_format == "JPEG"
    assert study.metadata.photometric_interpretation == "RGB"
    assert not any("Colour" in w for w in study.warnings)
    assert any("Small image" in w for w in study.warnings)


def test_real_colour_png_is_converted_with_a_warning(tmp_path, kermany_gray):
    rgb = np.dstack([kermany_gray, kermany_gray // 2, 255 - kermany_gray]).astype(np.uint8)
    study = load_study(write_raster(tmp_path / "colour.png", rgb))
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert np.abs(study.pixels - expected).max() <= 1.0  # luminance, in RGB order
    assert "Colour image: converted to greyscale." in study.warnings


def test_rgba_png_warns_about_colour_and_transparency(tmp_path, kermany_gray):
    alpha = np.full_like(kermany_gray, 128)
    rgba = np.dstack([kermany_gray, 255 - kermany_gray, kermany_gray, alpha]).astype(np.uint8)
    study = load_study(write_raster(tmp_path / "rgba.png", rgba))
    assert study.pixels.ndim == 2
    assert "Colour image: converted to greyscale." in study.warnings
    assert any("transparency" in w for w in study.warnings)
    opaque = np.dstack([kermany_gray] * 3 + [np.full_like(kermany_gray, 255)])
    grey = load_study(write_raster(tmp_path / "opaque.png", opaque))
    np.testing.assert_array_equal(grey.pixels, kermany_gray)
    assert not any("Colour" in w or "transparency" in w for w in grey.warnings)


def test_format_is_told_by_content_not_extension(tmp_path, kermany_gray, film12):
    png_named_dcm = tmp_path / "image.dcm"
    png_named_dcm.write_bytes(write_raster(tmp_path / "x.png", kermany_gray).read_bytes())
    assert load_study(png_named_dcm).metadata.source_format == "PNG"
    dicom_named_png = write_dicom(tmp_path / "scan.png", film12, bits_stored=12)
    assert load_study(dicom_named_png).metadata.source_format == "DICOM"
    no_extension = write_dicom(tmp_path / "1.2.840.1234", film12, "rle", bits_stored=12)
    np.testing.assert_array_equal(load_study(no_extension).pixels, film12)


def test_compressed_16_bit_tiff_loads_exactly(tmp_path, film12):
    buf = io.BytesIO()
    tifffile.imwrite(buf, film12, compression="zstd")
    path = tmp_path / "zstd.tiff"
    path.write_bytes(buf.getvalue())
    np.testing.assert_array_equal(load_study(path).pixels, film12)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_min_is_white_tiff_is_read_bone_bright_as_its_twin(tmp_path, kermany_gray, dtype):
    """A scanner writing PhotometricInterpretation MinIsWhite: read as stored, the film was
    analysed as its own negative (87 %, "not reliable", "looks rotated ... or lateral")."""
    stored = (kermany_gray.astype(np.uint16) * (257 if dtype == np.uint16 else 1)).astype(dtype)
    twin, negative = tmp_path / "twin.tif", tmp_path / "miniswhite.tif"
    tifffile.imwrite(twin, stored, photometric="minisblack")
    tifffile.imwrite(negative, np.iinfo(dtype).max - stored, photometric="miniswhite")
    np.testing.assert_array_equal(load_study(negative).pixels, load_study(twin).pixels)


def test_a_12_bit_min_is_white_tiff_is_turned_over_its_own_range(tmp_path, film12):
    negative = tmp_path / "miniswhite12.tif"
    tifffile.imwrite(negative, (4095 - film12).astype(np.uint16), photometric="miniswhite", bitspersample=12)
    np.testing.assert_array_equal(load_study(negative).pixels, film12.astype(np.float32))


def test_a_multi_page_tiff_says_only_its_first_page_is_analysed(tmp_path, kermany_gray):
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, np.stack([kermany_gray, kermany_gray[::-1]]), photometric="minisblack")
    study = load_study(path)
    np.testing.assert_array_equal(study.pixels, kermany_gray.astype(np.float32))
    assert "Multi-frame image (2 frames): only the first frame is shown and analysed." in study.warnings
    assert not any("Multi-frame" in w for w in load_study(write_raster(tmp_path / "one.tif", kermany_gray)).warnings)
    with tifffile.TiffWriter(tmp_path / "thumb.tif") as tif:  # a film and its reduced-resolution thumbnail
        tif.write(kermany_gray, photometric="minisblack")
        tif.write(kermany_gray[::4, ::4], photometric="minisblack", subfiletype=1)
    assert not any("Multi-frame" in w for w in load_study(tmp_path / "thumb.tif").warnings)
    phone = tmp_path / "phone.jpg"  # a camera JPEG with a second picture (MPO): one film
    picture = Image.fromarray(kermany_gray).convert("RGB")
    picture.save(phone, format="MPO", save_all=True, append_images=[picture])
    assert not any("Multi-frame" in w for w in load_study(phone).warnings)


@pytest.mark.parametrize("planar", [False, True])
def test_16_bit_colour_tiff_keeps_its_depth(tmp_path, film12, planar):
    """Pillow would read it as 8 bits; tifffile, tried first for TIFF, does not."""
    rgb = np.dstack([film12, film12 // 2, film12 // 3]).astype(np.uint16)
    buf = io.BytesIO()
    if planar:
        tifffile.imwrite(buf, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    else:
        tifffile.imwrite(buf, rgb, photometric="rgb")
    path = tmp_path / "rgb16.tif"
    path.write_bytes(buf.getvalue())
    study = load_study(path)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert np.abs(study.pixels - expected).max() <= 0.5
    assert study.metadata.bits_stored == 16
    assert "Colour image: converted to greyscale." in study.warnings


@pytest.mark.parametrize(
    ("mode", "fmt", "channels"),
    [("P", "PNG", 3), ("1", "PNG", 1), ("LA", "PNG", 2), ("I;16", "PNG", 1), ("CMYK", "JPEG", 3), ("L", "BMP", 1)],
)
def test_pillow_modes_become_grey_studies(tmp_path, kermany_gray, mode, fmt, channels):
    from PIL import Image

    im = Image.fromarray(kermany_gray)
    if mode == "LA":
        im = Image.merge("LA", [im, Image.new("L", im.size, 255)])
    elif mode == "I;16":
        im = Image.fromarray(kermany_gray.astype(np.uint16) * 257)
    else:
        im = im.convert(mode)
    path = tmp_path / f"film.{fmt.lower()}"
    im.save(path, fmt)
    study = load_study(path)
    assert study.shape == kermany_gray.shape and study.pixels.dtype == np.float32
    assert study.metadata.photometric_interpretation == ("MONOCHROME2" if channels < 3 else "RGB")
    if mode in ("P", "LA", "L"):  # lossless and grey: the exact values
        np.testing.assert_array_equal(study.pixels, kermany_gray)
    elif mode == "I;16":
        np.testing.assert_array_equal(study.pixels, kermany_gray.astype(np.float32) * 257)
    elif mode == "1":  # dithered black and white, read as 0/255
        np.testing.assert_array_equal(study.pixels, np.asarray(im.convert("L")))
    else:  # lossy CMYK JPEG: still the picture
        assert np.corrcoef(study.pixels.ravel(), kermany_gray.ravel())[0, 1] > 0.8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpeg_is_read_the_way_its_exif_orientation_says_to_show_it(tmp_path, orientation):
    """As every viewer shows it: a film stored mirrored (2) was analysed and shown with left
    and right swapped against the reader's other screens, one stored on its side (6, 8) came
    out "looks rotated"."""
    from PIL import Image, ImageOps

    stored = (np.arange(200 * 300).reshape(200, 300) % 251).astype(np.uint8)
    stored[:50, :80] = 255  # a corner that tells every orientation apart
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    im.save(path, quality=100, exif=exif.tobytes())
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)), dtype=np.float32)
    study = load_study(path)
    assert study.pixels.shape == shown.shape and np.array_equal(study.pixels, shown)
    assert (study.metadata.rows, study.metadata.columns) == shown.shape
    if orientation == 2:
        assert study.pixels[:50, -80:].min() > 200  # the bright corner is now on the right
