"""The small picture of a film that the study list shows, kept in the worklist with its result.

Made wherever a result is kept -- the app's analysis process, ``lunglens classify``, the DICOM
node -- so a study analysed without the window still has its picture when the window lists
it from the worklist, without its file being read again (the file may be gone by then).
"""

from __future__ import annotations

import numpy as np

from .imageops import resize_area
from .overlay import window_to_uint8
from .study import Study

THUMBNAIL_SIZE = 96  # pixels, the longer side


def make_thumbnail(study: Study, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """The film in its default window, uint8, at most ``size`` pixels on its longer side.
    Shrunk before windowing: cheap on a large film (about 1.5 ms for 1,024²)."""
    pixels = study.pixels
    h, w = pixels.shape[:2]
    scale = size / max(h, w)
    if scale < 1.0:
        pixels = resize_area(pixels, (max(1, round(h * scale)), max(1, round(w * scale))))
    return window_to_uint8(pixels, study.window)
