"""The user's preferences, persisted with QSettings (organisation and application "LungLens").

One typed wrapper so widgets never spell keys or convert QSettings' loosely typed values;
tests hand it a QSettings bound to a temporary INI file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from inference.userdirs import private_dir, tighten

from .models.display import DEFAULT_OPACITY

ORGANIZATION = "LungLens"
APPLICATION = "LungLens"
MAX_RECENT = 10


def _bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def keep_private(q: QSettings) -> None:
    """The settings name the films opened last (recent files, the last folder), and a film's
    file name often carries its patient's: the file is this account's alone, and so is the
    LungLens folder that holds it (~/.config/LungLens). The registry (Windows) is per user."""
    if q.format() != QSettings.Format.IniFormat and sys.platform == "win32":
        return
    path = Path(q.fileName())
    if path.parent.name == ORGANIZATION:
        private_dir(path.parent)
    tighten(path)


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)
        keep_private(self.q)

    def _get(self, key: str, default: object) -> object:
        v = self.q.value(key, default)
        return default if v is None else v

    # -- engine --------------------------------------------------------------------------------
    @property
    def provider(self) -> str:
        return str(self._get("engine/provider", "auto"))

    @provider.setter
    def provider(self, value: str) -> None:
        self.q.setValue("engine/provider", value)

    @property
    def threads(self) -> int:
        """ONNX Runtime intra-op threads; 0 means ONNX Runtime's default."""
        try:
            return max(0, int(self._get("engine/threads", 0)))
        except (TypeError, ValueError):
            return 0

    @threads.setter
    def threads(self, value: int) -> None:
        self.q.setValue("engine/threads", int(value))

    @property
    def operating_point(self) -> str:
        """An operating-point key of the site profile in use, "custom", or "" for the profile's default."""
        return str(self._get("decision/operating_point", ""))

    @operating_point.setter
    def operating_point(self, value: str) -> None:
        self.q.setValue("decision/operating_point", value)

    @property
    def custom_threshold(self) -> float:
        try:
            # The Settings dialog's range, 1-99 %: a file edited to 0 or 1 would flag every film or
            # none, and the DICOM node refuses such a --threshold.
            return min(max(float(self._get("decision/custom_threshold", 0.5)), 0.01), 0.99)
        except (TypeError, ValueError):
            return 0.5

    @custom_threshold.setter
    def custom_threshold(self, value: float) -> None:
        self.q.setValue("decision/custom_threshold", float(value))

    @property
    def site_profile(self) -> str:
        """The active site profile's file (in the per-user profile folder), or "" for the shipped one."""
        return str(self._get("decision/site_profile", ""))

    @site_profile.setter
    def site_profile(self, value: str) -> None:
        self.q.setValue("decision/site_profile", value)

    # -- display -------------------------------------------------------------------------------
    @property
    def overlay_visible(self) -> bool:
        return _bool(self.q.value("overlay/visible"), True)

    @overlay_visible.setter
    def overlay_visible(self, value: bool) -> None:
        self.q.setValue("overlay/visible", bool(value))

    @property
    def overlay_opacity(self) -> float:
        try:
            return float(self._get("overlay/opacity", DEFAULT_OPACITY))
        except (TypeError, ValueError):
            return DEFAULT_OPACITY

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.q.setValue("overlay/opacity", float(value))

    @property
    def show_identifiers(self) -> bool:
        return _bool(self.q.value("privacy/show_identifiers"), False)

    @show_identifiers.setter
    def show_identifiers(self, value: bool) -> None:
        self.q.setValue("privacy/show_identifiers", bool(value))

    @property
    def anonymize_exports(self) -> bool:
        """Exports for teaching or demonstrations: no identifiers, dates or file names; new UIDs."""
        return _bool(self.q.value("privacy/anonymize_exports"), False)

    @anonymize_exports.setter
    def anonymize_exports(self, value: bool) -> None:
        self.q.setValue("privacy/anonymize_exports", bool(value))

    # -- files and window ------------------------------------------------------------------------
    @property
    def recent(self) -> list[str]:
        v = self.q.value("files/recent", [])
        if isinstance(v, str):
            return [v] if v else []
        return [str(x) for x in (v or [])]

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path))
        items = [p, *(x for x in self.recent if x != p)][:MAX_RECENT]
        self.q.setValue("files/recent", items)

    def clear_recent(self) -> None:
        self.q.setValue("files/recent", [])

    @property
    def last_dir(self) -> str:
        return str(self._get("files/last_dir", ""))

    @last_dir.setter
    def last_dir(self, value: str) -> None:
        self.q.setValue("files/last_dir", value)

    @property
    def last_export_dir(self) -> str:
        """Where the last export was written: exports of a reading session go to one folder,
        rarely the films' own ("" before the first export)."""
        return str(self._get("files/last_export_dir", ""))

    @last_export_dir.setter
    def last_export_dir(self, value: str) -> None:
        self.q.setValue("files/last_export_dir", value)

    def window_geometry(self) -> QByteArray | None:
        v = self.q.value("window/geometry")
        return v if isinstance(v, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        v = self.q.value("window/state")
        return v if isinstance(v, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def sync(self) -> None:
        self.q.sync()
        keep_private(self.q)
