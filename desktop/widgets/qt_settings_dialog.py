"""Settings: execution provider, threads, operating point, heat-map defaults, privacy,
and where the worklist and the audit log are kept (shown, not editable); on a page of its
own, the site profile in use (:mod:`desktop.widgets.qt_site_calibration`) and the DICOM node
(:mod:`desktop.widgets.qt_dicom_node_settings`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from inference.decision import CUSTOM, custom_point
from inference.presentation import operating_point_text, point_text
from inference.profile import SiteProfile
from inference.providers import friendly_name

from ..platform_quirks import fit_top_level
from ..settings import AppSettings
from .qt_dicom_node_settings import DicomNodePage
from .qt_fit_scroll import scrolling, within_screen
from .qt_site_calibration import SiteCalibrationPage


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; nothing is written unless the user presses OK."""

    def __init__(self, settings: AppSettings, available: list[str], provider_in_use: str,
                 profile: SiteProfile | None, parent: QWidget | None = None, *,
                 worklist_path: Path | None = None, audit_path: Path | None = None,
                 shipped_profile: SiteProfile | None = None, profile_warning: str = "") -> None:
        """``profile``: the site profile in use; ``shipped_profile``: the one LungLens ships
        (what Revert goes back to); ``profile_warning``: why the profile the settings name is
        not the one in use, if it is not."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.profile = profile

        # Engine
        self.provider = QComboBox()
        self.provider.addItem("Automatic (fastest available)", "auto")
        for name in available:
            self.provider.addItem(friendly_name(name), name)
        i = self.provider.findData(settings.provider)
        self.provider.setCurrentIndex(max(i, 0))
        self.in_use = QLabel(friendly_name(provider_in_use) if provider_in_use else "model not loaded")
        self.threads = QSpinBox()
        self.threads.setRange(0, 64)
        self.threads.setSpecialValueText("Automatic")
        self.threads.setValue(settings.threads)
        engine = QGroupBox("Engine")
        f = QFormLayout(engine)
        f.addRow("Execution provider", self.provider)
        f.addRow("In use now", self.in_use)
        f.addRow("Threads", self.threads)
        note = QLabel("Only providers this installation offers are listed. Changes apply to the next studies.")
        note.setObjectName("dim")
        note.setWordWrap(True)
        f.addRow(note)

        # Decision: the operating points of the site profile in use, with what they measured where.
        self.operating_point = QComboBox()
        self._fill_points()
        self.custom = QDoubleSpinBox()
        # 0 % flags every film and 100 % none: a reader at 3 a.m. must not get there by a slip.
        self.custom.setRange(1.0, 99.0)
        self.custom.setDecimals(1)
        self.custom.setSuffix(" %")
        self.custom.setValue(settings.custom_threshold * 100)
        self.figures = QLabel()
        self.figures.setObjectName("dim")
        self.figures.setWordWrap(True)
        decision = QGroupBox("Decision")
        f = self._decision_form = QFormLayout(decision)
        f.addRow("Operating point", self.operating_point)
        f.addRow("Custom threshold", self.custom)
        f.addRow(self.figures)
        self.operating_point.currentIndexChanged.connect(self._sync_custom)
        self.custom.valueChanged.connect(self._sync_custom)

        # Heat-map defaults
        self.overlay_visible = QCheckBox("Show the heat-map when a study at or above the threshold opens")
        self.overlay_visible.setChecked(settings.overlay_visible)
        self.opacity = QSpinBox()
        self.opacity.setRange(0, 100)
        self.opacity.setSuffix(" %")
        self.opacity.setValue(round(settings.overlay_opacity * 100))
        overlay = QGroupBox("Heat-map defaults")
        f = QFormLayout(overlay)
        f.addRow(self.overlay_visible)
        f.addRow("Opacity at full colour", self.opacity)

        # Privacy
        self.show_identifiers = QCheckBox("Show patient identifiers (name, ID, birth date, accession…)")
        self.show_identifiers.setChecked(settings.show_identifiers)
        self.anonymize_exports = QCheckBox("Anonymize exports for teaching and demonstrations")
        self.anonymize_exports.setToolTip(
            "PDF reports, DICOM Secondary Captures and worklist exports then carry no patient name, ID, birth date, "
            "accession number, institution, dates or file names, and the DICOM gets new UIDs (a study of its own). "
            "Text burned into the image by the modality is not removed.")
        self.anonymize_exports.setChecked(settings.anonymize_exports)
        privacy = QGroupBox("Privacy")
        pl = QVBoxLayout(privacy)
        pl.addWidget(self.show_identifiers)
        pl.addWidget(self.anonymize_exports)

        # Data: where results and the audit trail are kept (LUNGLENS_DATA_DIR moves both).
        self.worklist_path = self._path_label(worklist_path)
        self.audit_path = self._path_label(audit_path)
        data = QGroupBox("Data")
        f = QFormLayout(data)
        f.addRow("Worklist", self.worklist_path)
        f.addRow("Audit log", self.audit_path)

        # Site calibration: which profile is in use, its figures, importing and choosing another.
        if shipped_profile is None and not settings.site_profile:
            shipped_profile = profile  # the shipped one is in use
        model = next((p.model for p in (profile, shipped_profile) if p is not None), None)
        self.site = SiteCalibrationPage(settings.site_profile, profile, shipped_profile, model, profile_warning)
        self.site.pending_changed.connect(self._profile_chosen)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        general = QWidget()
        gl = QVBoxLayout(general)
        for w in (engine, decision, overlay, privacy, data):
            gl.addWidget(w)
        gl.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(scrolling(general), "General")
        self.tabs.addTab(scrolling(self.site), "Site calibration")
        self.dicom_node = DicomNodePage(settings)
        self.tabs.addTab(scrolling(self.dicom_node), "DICOM node")
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(buttons, alignment=Qt.AlignmentFlag.AlignRight)
        self._sync_custom()
        fit_top_level(self)
        # Its full size where the screen has room (offscreen it would open squeezed), else the
        # screen's, the pages scrolling.
        pages = (general, self.site, self.dicom_node)
        full = QSize(max(p.sizeHint().width() for p in pages) + 48,
                     max(p.sizeHint().height() for p in pages) + self.tabs.tabBar().sizeHint().height()
                     + buttons.sizeHint().height() + 64)
        self.resize(within_screen(self, full))

    @staticmethod
    def _path_label(path: Path | None) -> QLabel:
        label = QLabel(str(path) if path is not None else "not available")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _fill_points(self) -> None:
        """Offer the operating points of the profile that will be in use, with the settings' choice selected."""
        self.operating_point.blockSignals(True)
        self.operating_point.clear()
        if self.profile is not None:
            for key, op in self.profile.operating_points.items():
                self.operating_point.addItem(point_text(op), key)
        self.operating_point.addItem("Custom threshold", CUSTOM)
        self.operating_point.setCurrentIndex(max(self.operating_point.findData(self._current_point()), 0))
        self.operating_point.blockSignals(False)

    def _profile_chosen(self, profile: SiteProfile | None) -> None:
        """Another profile was activated on the Site calibration page: its points are the ones to offer."""
        self.profile = profile
        self._fill_points()
        self._sync_custom()

    def _current_point(self) -> str:
        """The operating point the settings name ("" is the profile's default; a point the
        profile does not have also means its default)."""
        default = self.profile.default_operating_point if self.profile else CUSTOM
        named = self.settings.operating_point
        known = named == CUSTOM or (self.profile is not None and named in self.profile.operating_points)
        return named if known else default

    def _sync_custom(self) -> None:
        key = self.operating_point.currentData()
        # Shown only for a custom threshold: a greyed "50.0 %" beside "threshold 24.2 %" read as a second threshold.
        self._decision_form.setRowVisible(self.custom, key == CUSTOM)
        if key == CUSTOM:
            op = custom_point(self.custom.value() / 100.0)
            self.figures.setText(operating_point_text(op, ""))
        elif self.profile is not None:
            op = self.profile.operating_points[key]
            self.figures.setText(f"{operating_point_text(op, self.profile.source)}. {op.description}")

    def apply(self) -> set[str]:
        """Write the dialog's values; returns which groups changed ("engine", "decision",
        "overlay", "privacy", "profile")."""
        s = self.settings
        changed: set[str] = set()
        if self.site.changed:
            s.site_profile = self.site.pending_path
            changed.add("profile")
        if (self.provider.currentData(), self.threads.value()) != (s.provider, s.threads):
            s.provider, s.threads = self.provider.currentData(), self.threads.value()
            changed.add("engine")
        op, thr = self.operating_point.currentData(), self.custom.value() / 100.0
        # "" means "the profile's default": OK on an untouched dialog is not a change.
        if op != self._current_point() or (op == CUSTOM and abs(thr - s.custom_threshold) > 1e-9):
            s.operating_point, s.custom_threshold = op, thr
            changed.add("decision")
        ov = (self.overlay_visible.isChecked(), self.opacity.value() / 100)
        if ov != (s.overlay_visible, s.overlay_opacity):
            s.overlay_visible, s.overlay_opacity = ov
            changed.add("overlay")
        if self.show_identifiers.isChecked() != s.show_identifiers:
            s.show_identifiers = self.show_identifiers.isChecked()
            changed.add("privacy")
        if self.anonymize_exports.isChecked() != s.anonymize_exports:
            s.anonymize_exports = self.anonymize_exports.isChecked()
            changed.add("privacy")
        if self.dicom_node.apply():
            changed.add("dicom_node")
        s.sync()
        return changed
