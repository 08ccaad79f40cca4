"""Bad input: a StudyLoadError subclass naming the file and a reason a person can act on."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_fragments

from inference.errors import (
    NotAnImageError,
    PixelDecodeError,
    StudyLoadError,
    TruncatedFileError,
    UnsupportedStudyError,
)
from inference.loaders import FileAccessError, load_study
from tests.fixtures.dicom_factory import write_dicom, write_raster

pytestmark = pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")


def expect(path: Path | str, error: type[StudyLoadError], reason: str) -> StudyLoadError:
    with pytest.raises(error) as info:
        load_study(path)
    message = str(info.value)
    assert message.startswith(f"{Path(path).name}: "), message
    assert reason in message, message
    return info.value


@pytest.mark.parametrize("syntax", ["explicit", "big", "rle", "j2k-lossless", "jpeg-lossless"])
def test_truncated_dicom(tmp_path, film12, syntax):
    path = write_dicom(tmp_path / "cut.dcm", film12, syntax, bits_stored=12)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])
    expect(path, TruncatedFileError, "file is truncated")


def test_dicom_cut_inside_the_header(tmp_path, film12):
    path = write_dicom(tmp_path / "header.dcm", film12, bits_stored=12)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(StudyLoadError) as info:
        load_study(path)
    assert "truncated" in str(info.value)


def test_pydicom_truncated_sample():
    expect(get_testdata_file("MR_truncated.dcm", download=False), TruncatedFileError, "file is truncated")


def test_pdf_renamed_dcm(tmp_path):
    path = tmp_path / "report.dcm"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"\0" * 400)
    err = expect(path, NotAnImageError, "not an image or DICOM file")
    assert "PDF" in err.reason


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("patient notes, not an image\n" * 20)
    expect(path, NotAnImageError, "not an image or DICOM file (it looks like a text file)")


def test_one_pixel_png_is_too_small_and_the_message_gives_the_size_the_gate_judges_from(tmp_path):
    """The refusal names the same minimum as the gate's "too small to judge" (it named 32 px,
    and a 64 px film then came back out of scope for being under 128)."""
    from inference.ood import MIN_SHORT_SIDE

    path = write_raster(tmp_path / "dot.png", np.zeros((1, 1), np.uint8))
    expect(path, UnsupportedStudyError, f"image is too small (1x1 px): LungLens judges films of at least {MIN_SHORT_SIDE} px")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    expect(path, TruncatedFileError, "file is empty")


def test_directory(tmp_path):
    folder = tmp_path / "study.dcm"
    folder.mkdir()
    expect(folder, NotAnImageError, "is a folder")


def test_missing_file(tmp_path):
    expect(tmp_path / "gone.dcm", FileAccessError, "file not found")


def test_unreadable_file(tmp_path, monkeypatch, film12):
    # Tests run as root here and in CI, where chmod 000 cannot deny a read: the OS refusal
    # itself is simulated, the loader's handling of it is real.
    path = write_dicom(tmp_path / "locked.dcm", film12, bits_stored=12)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    err = expect(path, FileAccessError, "permission denied")
    assert isinstance(err, StudyLoadError)


def test_structured_report_says_what_it_is():
    expect(get_testdata_file("test-SR.dcm", download=False), UnsupportedStudyError,
           "DICOM file has no pixel data (it is a structured report)")


def test_rt_plan_says_what_it_is():
    expect(get_testdata_file("rtplan.dcm", download=False), UnsupportedStudyError,
           "DICOM file has no pixel data (it is a RT Plan Storage object)")


def test_undecodable_jpeg_2000(tmp_path, film12):
    path = write_dicom(tmp_path / "j2k.dcm", film12, "j2k-lossless", bits_stored=12)
    ds = pydicom.dcmread(path)
    codestream = next(generate_fragments(ds.PixelData))
    ds.PixelData = encapsulate([codestream[:150] + b"\x00" * 64])  # main header, no tiles
    ds.save_as(path)
    expect(path, PixelDecodeError, "JPEG 2000 pixel data could not be decoded")


def test_absurd_dicom_size_is_refused_before_decoding(tmp_path, film12):
    path = write_dicom(tmp_path / "huge.dcm", film12, bits_stored=12, tags={"Rows": 60000, "Columns": 60000})
    expect(path, UnsupportedStudyError, "image is too large (60000x60000 px")


def test_absurd_png_size_is_refused_before_decoding(tmp_path, kermany_gray):
    path = write_raster(tmp_path / "bomb.png", kermany_gray)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 30000, 30000)  # IHDR width, height (CRC now wrong too)
    path.write_bytes(bytes(data))
    expect(path, UnsupportedStudyError, "image is too large (30000x30000 px")


def test_truncated_png_and_jpeg(tmp_path, kermany_gray):
    for suffix in (".png", ".jpg"):
        path = write_raster(tmp_path / f"cut{suffix}", np.kron(kermany_gray, np.ones((2, 2), np.uint8)))
        path.write_bytes(path.read_bytes()[:-300])
        expect(path, TruncatedFileError, "file is truncated")


def test_unknown_transfer_syntax(tmp_path, film12):
    path = write_dicom(tmp_path / "odd.dcm", film12, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5"
    ds.save_as(path)
    expect(path, UnsupportedStudyError, "unknown DICOM transfer syntax 1.2.3.4.5")


def test_dicom_without_rows(tmp_path, film12):
    path = write_dicom(tmp_path / "norows.dcm", film12, bits_stored=12, tags={"Rows": None})
    expect(path, UnsupportedStudyError, "DICOM image header is missing Rows")


def test_missing_decoder_plugin_is_named(tmp_path, film12, monkeypatch):
    # Every plugin is installed here; a packaged app that lost one is simulated.
    import inference.loaders.dicom as dicom_loader

    class Unavailable:
        is_available = False

    monkeypatch.setattr(dicom_loader, "get_decoder", lambda uid: Unavailable())
    path = write_dicom(tmp_path / "j2k.dcm", film12, "j2k-lossless", bits_stored=12)
    expect(path, PixelDecodeError, "no decoder for JPEG 2000 pixel data is installed")
