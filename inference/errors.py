"""Errors a person can act on. Every message names the file and the reason."""

from __future__ import annotations

from pathlib import Path


class LungLensError(Exception):
    """Base of every error LungLens reports to a user."""


class StudyLoadError(LungLensError):
    """A study could not be opened. ``str(err)`` is ready to show: "<file>: <reason>"."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class NotAnImageError(StudyLoadError):
    """Neither a raster image nor a DICOM file (a PDF renamed .dcm, a text file...)."""


class TruncatedFileError(StudyLoadError):
    """The file ends before its data does."""


class UnsupportedStudyError(StudyLoadError):
    """Readable, but not something LungLens can show (no pixel data, an SR, a 1x1 image...)."""


class FileAccessError(StudyLoadError):
    """The file is missing or cannot be read (permissions, a device, a broken link)."""


class PixelDecodeError(StudyLoadError):
    """Compressed pixel data could not be decoded."""


class PixelDataMismatchError(PixelDecodeError):
    """The pixel data contradicts the header: a codestream declaring another size, too few
    bytes for the size declared, more scans or fewer tiles than any real image has."""


class DecodeBudgetError(StudyLoadError):
    """Decoding would take more time or memory than one image is allowed: refused so that a
    hostile file costs seconds and a bounded amount of memory, never the computer."""


class ModelError(LungLensError):
    """The bundled model is missing, corrupted or does not match its manifest."""
