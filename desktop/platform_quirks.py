"""Work-arounds for Qt platform plugins, in one place."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLayout, QWidget


def fit_top_level(widget: QWidget) -> None:
    """On the ``offscreen`` platform (tests, ``--screenshot``) a top-level layout's size
    constraint makes Qt warn "This plugin does not support propagateSizeHints()" -- a gap
    in the plugin, not a problem of the window. Let such windows size freely there."""
    layout = widget.layout()
    if layout is not None and QGuiApplication.platformName() == "offscreen":
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
