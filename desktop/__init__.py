"""The LungLens desktop application (PySide6). Importing this package does not import Qt.

It does one thing first: protect None/True/False from PySide6 6.12's reference-count bug
on Python < 3.12 (see :mod:`desktop.refcount_guard`), before any Qt code runs.
"""

from .refcount_guard import protect_singletons

protect_singletons()
