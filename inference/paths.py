"""Where bundled resources live: in a source checkout, in an installed wheel and in a frozen
(PyInstaller) build."""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

RESOURCES_PACKAGE = "lunglens_resources"  # resources/, as the wheel ships it (pyproject.toml)


def resources_dir() -> Path:
    """The ``resources/`` folder.

    ``LUNGLENS_RESOURCES`` overrides it; a PyInstaller build unpacks data under
    ``sys._MEIPASS`` (``_internal/`` in PyInstaller 6, not next to the executable); an
    installed LungLens (wheel or editable) has it as the package :data:`RESOURCES_PACKAGE`;
    a source checkout run in place has it beside ``inference/``. The model is opened by
    path, so an installation must be unpacked (as pip installs it), not zipped.
    """
    override = os.environ.get("LUNGLENS_RESOURCES")
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    try:
        return Path(str(importlib.resources.files(RESOURCES_PACKAGE)))
    except ModuleNotFoundError:  # not installed: the source tree
        return Path(__file__).resolve().parent.parent / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"
