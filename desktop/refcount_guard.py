"""Keep PySide6 6.12's reference-count bug from crashing the app on Python < 3.12.

Measured here (PySide6-Essentials / shiboken6 6.12.0, CPython 3.11): many void methods of
Qt value and painter classes (QPainter.drawLine, setPen, save, QFont.setPointSizeF,
QRect.moveCenter ...) return ``None`` without taking a reference, ``QModelIndex.data()``
and ``QComboBox.currentData()`` do the same when the value is None, and emitting ``True``
through a Python signal drops a reference to ``True``. Every paint of the study list or
a pyqtgraph view costs ``None`` hundreds of references; after a few minutes its count
reaches zero and CPython aborts ("Fatal Python error: none_dealloc").

Python 3.12 made these singletons immortal (PEP 683), which is why the bug goes unnoticed
there. Here we do the same by hand, once, before Qt is used: their reference counts are
raised by 2**50, which at a million lost references a second lasts for decades. No other
object is touched. Remove this module when the app requires Python >= 3.12 or a fixed
PySide6.
"""

from __future__ import annotations

import ctypes
import sys

HEADROOM = 2**50
_done = False


def protect_singletons() -> bool:
    """Make None, True and False effectively immortal; True when something was changed."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every PyObject in a release build.
        ctypes.c_ssize_t.from_address(id(obj)).value += HEADROOM
    _done = True
    return True
