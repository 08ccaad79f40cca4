"""Where bundled resources live, in a source checkout and in a frozen (PyInstaller) build."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder.

    ``LUNGLENS_RESOURCES`` overrides it; a PyInstaller build unpacks data under
    ``sys._MEIPASS`` (``_internal/`` in PyInstaller 6, not next to the executable).
    """
    override = os.environ.get("LUNGLENS_RESOURCES")
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"
