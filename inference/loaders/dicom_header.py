"""Reading a DICOM header: what the file is, its transfer syntax, geometry and metadata.

Every refusal here names what a person can act on: a truncated file, a structured report,
an unknown transfer syntax, a header missing the image size.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.uid import (
    UID,
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from inference.errors import StudyLoadError, TruncatedFileError, UnsupportedStudyError
from inference.loaders.deflate import read_deflated
from inference.loaders.dicom_values import clean, get_value, replace_value, short_error, text_value
from inference.loaders.pixels import check_size
from inference.study import StudyMetadata

# pydicom warns about every odd value it meets; the Study's own warnings say what matters.
# A process-wide filter, set once: warnings.catch_warnings() is not thread-safe and the app
# loads studies on several threads.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")

_SEQUENCE_DELIMITERS = (b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd")  # (FFFE,E0DD) LE, BE
_IMAGE_MODALITIES = {"CR", "DX", "DR", "RG", "MG", "CT", "MR", "US", "NM", "XA", "RF", "PT", "OT"}
_ONE_SAMPLE = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"}
_PHOTOMETRICS = _ONE_SAMPLE | {
    "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420",
}


def read_dataset(path: Path, data: bytes) -> Dataset:
    """Parse the bytes (forcing files without preamble or file meta); refuse files without pixels.

    A deflated data set is inflated by deflate.py, only as far as its first frame.
    """
    try:
        deflated = read_deflated(path, data)
        ds = deflated if deflated is not None else pydicom.dcmread(io.BytesIO(data), force=True)
    except StudyLoadError:
        raise
    except (EOFError, struct.error) as err:
        raise TruncatedFileError(path, "file is truncated") from err
    except Exception as err:  # pydicom raises many types for damaged headers
        if "end of file" in str(err).lower() or "buffer" in str(err).lower():
            raise TruncatedFileError(path, "file is truncated") from err
        raise UnsupportedStudyError(path, f"DICOM header is damaged ({short_error(err)})") from err
    if "PixelData" not in ds:
        if 0x7FE00008 in ds or 0x7FE00009 in ds:
            raise UnsupportedStudyError(path, "DICOM float pixel data is not supported")
        # pydicom stops silently at an end of file between (or inside) header elements.
        image_modality = text_value(ds, "Modality").upper() in _IMAGE_MODALITIES
        if len(ds) == 0 or "Rows" in ds or image_modality or _is_image_sop(ds):
            raise TruncatedFileError(
                path, "file is truncated or damaged (the DICOM image has no pixel data)"
            )
        raise UnsupportedStudyError(path, f"DICOM file has no pixel data ({_what_it_is(ds)})")
    if _encapsulated_without_end(ds, data):
        raise TruncatedFileError(path, "file is truncated (the pixel data is incomplete)")
    return ds


def _encapsulated_without_end(ds: Dataset, data: bytes) -> bool:
    """Compressed pixel data ends with a sequence delimiter; pydicom reads on without it."""
    if not ds["PixelData"].is_undefined_length:
        return False
    start = max(0, len(data) - len(ds.PixelData) - 64)
    return all(data.find(d, start) == -1 for d in _SEQUENCE_DELIMITERS)


def _is_image_sop(ds: Dataset) -> bool:
    """The SOP Class says the file was meant to hold an image."""
    sop = str(get_value(ds, "SOPClassUID") or get_value(ds.file_meta, "MediaStorageSOPClassUID") or "")
    name = UID(sop).name.lower() if sop else ""
    return "image storage" in name


def _what_it_is(ds: Dataset) -> str:
    """Why there are no pixels, in words: "it is a structured report"."""
    sop = str(get_value(ds, "SOPClassUID") or get_value(ds.file_meta, "MediaStorageSOPClassUID") or "")
    name = UID(sop).name if sop else ""
    modality = text_value(ds, "Modality").upper()
    lowered = name.lower()
    if modality == "SR" or " sr " in f" {lowered} " or "report" in lowered:
        return "it is a structured report"
    if sop == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        return "it is a DICOMDIR index, open the image files it lists"
    if "pdf" in lowered or modality == "DOC":
        return "it is an encapsulated PDF document"
    if "presentation state" in lowered or modality == "PR":
        return "it is a presentation state"
    if "key object" in lowered or modality == "KO":
        return "it is a key object selection"
    if name and name != sop:
        return f"it is a {name} object"
    if modality:
        return f"its modality is {clean(modality)}"
    return "the file may be damaged"


def transfer_syntax(path: Path, ds: Dataset) -> UID:
    """The transfer syntax, guessed from how the file was read when it has no file meta."""
    meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else FileMetaDataset()
    ds.file_meta = meta
    ts = get_value(meta, "TransferSyntaxUID")
    if ts:
        ts = UID(str(ts))
        if not ts.is_transfer_syntax:
            raise UnsupportedStudyError(path, f"unknown DICOM transfer syntax {clean(ts)}")
        return ts
    if ds["PixelData"].is_undefined_length:
        ts = _guess_compressed_syntax(ds.PixelData)
        if ts is None:
            raise UnsupportedStudyError(
                path, "DICOM file has compressed pixel data but no transfer syntax"
            )
    else:
        implicit, little = ds.original_encoding
        if implicit is None:
            implicit, little = True, True
        ts = ImplicitVRLittleEndian if implicit else (
            ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    meta.TransferSyntaxUID = ts
    return ts


def _guess_compressed_syntax(encapsulated: bytes) -> UID | None:
    """Name the codec from the first fragment's magic bytes (files without file meta)."""
    try:
        items = generate_fragments(encapsulated)
        next(items, b"")  # the Basic Offset Table item, empty or not
        first = next(items, b"")
    except Exception:
        return None
    if first.startswith(b"\xff\x4f\xff\x51") or first[4:8] == b"jP  ":
        return JPEG2000
    if first.startswith(b"\xff\xd8\xff"):
        sof = first.find(b"\xff\xf7")
        if sof != -1 and sof < 4096:
            return JPEGLSLossless
        if b"\xff\xc3" in first[:4096]:
            return JPEGLosslessSV1
        return JPEGBaseline8Bit
    if len(first) >= 64 and int.from_bytes(first[:4], "little") in range(1, 16):
        return RLELossless
    return None


def geometry(path: Path, ds: Dataset) -> tuple[int, int, int, int]:
    """Rows, columns, samples per pixel, frames; fills in the defaults pydicom needs."""
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if get_value(ds, k) in (None, "")]
    if missing:
        raise UnsupportedStudyError(path, f"DICOM image header is missing {', '.join(missing)}")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits_allocated = int(ds.BitsAllocated)
        spp = int(get_value(ds, "SamplesPerPixel") or 1)
        frames = int(str(get_value(ds, "NumberOfFrames") or 1).strip() or 1)
        bits_stored = int(get_value(ds, "BitsStored") or bits_allocated)
    except Exception as err:  # a damaged element raises on conversion
        raise UnsupportedStudyError(path, f"DICOM image header is damaged ({short_error(err)})") from err
    check_size(path, cols, rows)
    if bits_allocated not in (1, 8, 16, 32) or not 1 <= bits_stored <= bits_allocated:
        raise UnsupportedStudyError(
            path, f"unsupported bit depth ({bits_stored} bits stored in {bits_allocated})"
        )
    if spp not in (1, 3):
        raise UnsupportedStudyError(path, f"unsupported samples per pixel ({spp})")
    if frames < 1:
        frames = 1
    photometric = str(get_value(ds, "PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        if spp != 1:
            raise UnsupportedStudyError(path, "DICOM colour image has no PhotometricInterpretation")
        photometric = "MONOCHROME2"
    if photometric not in _PHOTOMETRICS or (spp == 1) != (photometric in _ONE_SAMPLE):
        raise UnsupportedStudyError(
            path, f"unsupported photometric interpretation {clean(photometric)} with {spp} sample(s)"
        )
    # What pydicom's decoders read, rewritten clean (a damaged original would raise there).
    pixel_rep = get_value(ds, "PixelRepresentation")
    planar = get_value(ds, "PlanarConfiguration")
    replace_value(ds, "PhotometricInterpretation", photometric)
    replace_value(ds, "SamplesPerPixel", spp)
    replace_value(ds, "BitsStored", bits_stored)
    replace_value(ds, "PixelRepresentation", 1 if pixel_rep == 1 else 0)
    if spp > 1:
        replace_value(ds, "PlanarConfiguration", 1 if planar == 1 else 0)
    return rows, cols, spp, frames


def metadata(ds: Dataset, ts: UID, photometric: str, rows: int, cols: int) -> StudyMetadata:
    """The fields the viewer and reports show; empty strings where the file says nothing."""
    return StudyMetadata(
        patient_name=text_value(ds, "PatientName"),
        patient_id=text_value(ds, "PatientID"),
        patient_sex=text_value(ds, "PatientSex"),
        patient_age=text_value(ds, "PatientAge"),
        patient_birth_date=text_value(ds, "PatientBirthDate"),
        study_date=text_value(ds, "StudyDate"),
        acquisition_date=text_value(ds, "AcquisitionDate"),
        study_description=text_value(ds, "StudyDescription"),
        study_instance_uid=text_value(ds, "StudyInstanceUID"),
        series_instance_uid=text_value(ds, "SeriesInstanceUID"),
        sop_instance_uid=text_value(ds, "SOPInstanceUID"),
        accession_number=text_value(ds, "AccessionNumber"),
        modality=text_value(ds, "Modality"),
        body_part=text_value(ds, "BodyPartExamined"),
        view_position=text_value(ds, "ViewPosition"),
        institution=text_value(ds, "InstitutionName"),
        photometric_interpretation=photometric,
        rows=rows,
        columns=cols,
        bits_stored=int(ds.BitsStored),
        transfer_syntax=ts.name,
        source_format="DICOM",
    )
