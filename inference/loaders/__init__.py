"""Open any chest X-ray study: DICOM (every common transfer syntax) or PNG/JPEG/BMP/TIFF.

`load_study` returns a `Study` (float32 pixels, bone bright, default window, metadata,
warnings, DICOM tags) or raises a `StudyLoadError` subclass whose message names the file
and a reason a person can act on; never anything else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inference.errors import (
    FileAccessError,
    NotAnImageError,
    StudyLoadError,
    TruncatedFileError,
    UnsupportedStudyError,
)
from inference.loaders.chatter import keep_pydicom_quiet
from inference.loaders.dicom import load_dicom
from inference.loaders.dicom_frame import DECODING
from inference.loaders.files import is_candidate, iter_study_files
from inference.loaders.raster import load_raster
from inference.loaders.sniff import HEAD_SIZE, describe_other, sniff_format
from inference.study import Study

# A compressed 400-megapixel film is far below this; a bigger file is not a radiograph.
MAX_FILE_BYTES = 2 << 30

keep_pydicom_quiet()

__all__ = ["load_study", "iter_study_files", "is_candidate", "FileAccessError", "DECODING"]


def load_study(path: str | os.PathLike[str], decoding: int = DECODING) -> Study:
    """Read one study from disk, whatever its extension says: the content decides.
    ``decoding`` is the decoders' generation (:data:`DECODING`; an older one only to
    recognise a study fingerprinted under it, :mod:`inference.hashing`)."""
    path = Path(path)
    data = _read_bytes(path)
    fmt = sniff_format(data[:HEAD_SIZE])
    if fmt is None:
        other = describe_other(data[:HEAD_SIZE])
        reason = "not an image or DICOM file" + (f" (it looks like {other})" if other else "")
        raise NotAnImageError(path, reason)
    try:
        if fmt == "DICOM":
            return load_dicom(path, data, decoding)
        return load_raster(path, data, fmt)
    except StudyLoadError:
        raise
    except MemoryError as err:
        raise UnsupportedStudyError(path, "not enough memory to open this image") from err
    except BaseException as err:  # last line of defence (pyo3 panics are BaseExceptions)
        if isinstance(err, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise UnsupportedStudyError(
            path, f"{fmt} file is damaged and could not be read ({type(err).__name__})"
        ) from err


def _check_folder_readable(path: Path) -> None:
    """A folder that cannot be listed is named with that reason (it read "is a folder, not an
    image", and inside a batch it was skipped without a word)."""
    try:
        os.scandir(path).close()
    except PermissionError as err:
        raise FileAccessError(path, "permission denied: the folder cannot be read") from err
    except OSError as err:
        raise FileAccessError(path, f"the folder cannot be read ({err.strerror or err})") from err


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            _check_folder_readable(path)
            raise NotAnImageError(path, "is a folder, not an image or DICOM file")
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # never read: a pipe would wait for a writer for ever
            raise NotAnImageError(path, "is not a file but a pipe, socket or device")
        size = st.st_size
        if size == 0:
            raise TruncatedFileError(path, "file is empty (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise UnsupportedStudyError(path, f"file is too large ({size / 2**30:.1f} GiB)")
        return path.read_bytes()
    except FileNotFoundError as err:
        raise FileAccessError(path, "file not found") from err
    except PermissionError as err:
        raise FileAccessError(path, "permission denied: the file cannot be read") from err
    except IsADirectoryError as err:
        raise NotAnImageError(path, "is a folder, not an image or DICOM file") from err
    except OSError as err:
        raise FileAccessError(path, f"file cannot be read ({err.strerror or err})") from err
