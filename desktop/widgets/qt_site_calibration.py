"""Settings → Site calibration: which site profile is in use, what it measured, and choosing another.

A profile decides which studies are flagged, so this page shows everything a clinic needs to
trust one before using it: where its films came from and how many, when it was made and for
which model, each operating point with its sensitivity and specificity and their 95 %
intervals (worded by :mod:`inference.presentation`, as everywhere else), its ROC curve and
reliability diagram. Import copies a profile file into the private per-user folder
(:mod:`inference.profile_library`), refusing one made for another model with the reason;
Activate and Revert only choose -- like every setting, the choice takes effect when the
dialog's OK is pressed, and the controller then restarts the analysis engine with it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inference.plots import plot_paths
from inference.prediction import ModelInfo
from inference.presentation import figures_text, local_time_text, point_text
from inference.profile import ProfileError, SiteProfile
from inference.profile_library import KeptProfile, import_profile, kept_profiles

from .. import theme
from .qt_reliability_plot import ReliabilityPlot
from .qt_roc_plot import RocPlot

SHIPPED = ""  # the list's key of the shipped profile (as in AppSettings.site_profile)


def profile_html(profile: SiteProfile, points: bool = True) -> str:
    """A profile's provenance and figures as a short table: what the page and the wizard show
    (``points=False`` leaves the operating points out: the wizard lists them as its choices)."""
    made = local_time_text(profile.created) if profile.created else "not recorded"  # as the result panel's times
    unit = "patients" if profile.grouping == "patient" else "films"
    rows = [
        ("Films", f"{escape(profile.source)}<br><span style='color:{theme.TEXT_DIM}'>bootstrap over "
                  f"{profile.n_groups} {unit}</span>"),
        ("Made", f"{made}, for model {escape(profile.model.name)} {escape(profile.model.version)}"),
    ]
    if "auc" in profile.metrics:
        rows.append(("AUC", f"{profile.metrics['auc'].plain()}, 95 % CI"))
    if "ece_after" in profile.metrics:  # in percent, as the reliability diagram's title says it
        before = profile.metrics.get("ece_before")
        rows.append(("Calibration error", f"ECE {profile.metrics['ece_after'].percent()}"
                     + (f"; before calibration {before.percent()}" if before else "") + ", 95 % CI"))
    if points:
        rows.append(("Operating points", "".join(
            f"<p style='margin:0 0 6px 0'><b>{escape(point_text(op))}</b>"
            f"{' &nbsp;·&nbsp; default' if op.name == profile.default_operating_point else ''}"
            f"<br>{escape(figures_text(op))}</p>"
            for op in profile.operating_points.values())))
    cells = "".join(f"<tr><td style='color:{theme.TEXT_DIM};padding:0 14px 8px 0;white-space:nowrap'>{k}</td>"
                    f"<td style='padding-bottom:8px'>{v}</td></tr>" for k, v in rows)
    return f"<table cellspacing='0' cellpadding='0'>{cells}</table>".replace(" %", "&nbsp;%")


class SiteCalibrationPage(QWidget):
    """The shipped profile and every kept one; the selected one's figures and plots."""

    pending_changed = Signal(object)  # the SiteProfile that will be in use after OK

    def __init__(self, active_path: str, active: SiteProfile | None, shipped: SiteProfile | None,
                 model: ModelInfo | None, warning: str = "", parent: QWidget | None = None) -> None:
        """``active_path``: the profile the settings name ("" the shipped one); ``active``: the
        one in use -- the shipped one when that file was refused, and ``warning`` says why."""
        super().__init__(parent)
        self.active_path = SHIPPED if warning or active is None else active_path
        self.pending_path = self.active_path
        self.shipped = shipped
        self.model = model
        self._profiles: dict[str, SiteProfile] = {}
        self._refused: dict[str, str] = {}  # kept profiles of another model -> why
        if active is not None and self.active_path:
            self._profiles[self.active_path] = active

        self.warning_frame = QFrame()
        self.warning_frame.setObjectName("warnings")
        self.warning = QLabel(warning)
        self.warning.setWordWrap(True)
        QVBoxLayout(self.warning_frame).addWidget(self.warning)
        self.warning_frame.setVisible(bool(warning))

        self.list = QListWidget()
        self.list.setAccessibleName("Site profiles")
        self.list.setMinimumWidth(240)
        self.list.setMaximumWidth(300)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add a site profile file (made with `lunglens calibrate` or on another "
                                      "LungLens) for this model")
        self.activate_button = QPushButton("Activate")
        self.activate_button.setToolTip("Use the selected profile from OK on")
        self.revert_button = QPushButton("Revert to the shipped default")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = QLabel()
        self.state.setObjectName("dim")
        self.state.setWordWrap(True)

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.title = QLabel()
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.file = QLabel()
        self.file.setObjectName("dim")
        self.file.setWordWrap(True)
        self.file.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.roc = RocPlot()
        self.reliability = ReliabilityPlot()

        # The list and the selected profile's words above; its two plots side by side below,
        # over the page's whole width (their titles need it).
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        for w in (self.import_button, self.activate_button, self.revert_button):
            left.addWidget(w)
        left.addWidget(self.message)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.details, 1)
        right.addWidget(self.file)
        top = QHBoxLayout()
        top.addLayout(left)
        top.addSpacing(12)
        top.addLayout(right, 1)
        plots = QHBoxLayout()
        plots.addWidget(self.roc)
        plots.addWidget(self.reliability)
        lay = QVBoxLayout(self)
        lay.addWidget(self.warning_frame)
        lay.addWidget(self.state)
        lay.addLayout(top)
        lay.addLayout(plots, 1)

        self.list.currentItemChanged.connect(lambda *_: self._show_selected())
        self.import_button.clicked.connect(self._import_dialog)
        self.activate_button.clicked.connect(self.activate_selected)
        self.revert_button.clicked.connect(self.revert)
        self._fill(select=self.active_path)

    # -- reading ------------------------------------------------------------------------------
    @property
    def changed(self) -> bool:
        return self.pending_path != self.active_path

    def profile(self, path: str) -> SiteProfile | None:
        return self.shipped if path == SHIPPED else self._profiles.get(path)

    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    # -- actions --------------------------------------------------------------------------------
    def import_file(self, source: str | Path) -> KeptProfile | None:
        """Import a profile file; a refusal is shown on the page, in words, and nothing is added."""
        if self.model is None:
            self._say("No model is loaded, so no profile can be checked or imported.", problem=True)
            return None
        try:
            kept = import_profile(source, self.model)
        except ProfileError as exc:
            self._say(f"Not imported. {exc}", problem=True)
            return None
        except OSError as exc:  # the private folder cannot be written
            self._say(f"Not imported: the profile folder cannot be written ({exc.strerror or exc}).", problem=True)
            return None
        self._fill(select=str(kept.path))
        self._say(f"Imported “{kept.profile.name}”. Press Activate to use it.")
        return kept

    def activate_selected(self) -> None:
        path = self.selected_path()
        if path is not None and path not in self._refused:
            self._choose(path)

    def revert(self) -> None:
        self._choose(SHIPPED)

    def _choose(self, path: str) -> None:
        self.pending_path = path
        self._say("")  # "Press Activate to use it" beside a greyed Activate had outlived the press
        self._fill(select=path)
        self.pending_changed.emit(self.profile(path))

    def _import_dialog(self) -> None:
        source, _ = QFileDialog.getOpenFileName(self, "Import a site profile", "", "Site profile (*.json)")
        if source:
            self.import_file(source)

    # -- view -----------------------------------------------------------------------------------
    def _fill(self, select: str) -> None:
        """List the shipped profile and every kept one, marking the one in use and the one chosen."""
        kept, problems = kept_profiles()
        self._refused = {}
        for k in kept:
            self._profiles.setdefault(str(k.path), k.profile)
            if self.model is not None:
                try:
                    k.profile.check_model(self.model)
                except ProfileError as exc:
                    self._refused[str(k.path)] = str(exc)
        self.list.blockSignals(True)
        self.list.clear()
        entries = ([(SHIPPED, self.shipped)] if self.shipped is not None else []) + \
                  [(str(k.path), k.profile) for k in kept]
        if self.active_path and self.active_path not in {p for p, _ in entries}:
            entries.append((self.active_path, self._profiles[self.active_path]))  # not in the folder (moved)
        for path, profile in entries:
            text = profile.name + ("  ·  shipped" if path == SHIPPED else "")
            if path == self.active_path:
                text += "  ·  in use"
            if path == self.pending_path and self.changed:
                text += "  ·  from OK on"
            if path in self._refused:
                text += "  ·  another model"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, path)
            if path == self.pending_path:
                bold = QFont(item.font())
                bold.setBold(True)
                item.setFont(bold)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._select(select)
        if problems:
            self._say("Some files in the profile folder cannot be read: " + "; ".join(problems), problem=True)
        self._show_state()

    def _select(self, path: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == path:
                self.list.setCurrentRow(row)
                break
        self._show_selected()

    def _show_state(self) -> None:
        active = self.profile(self.active_path)
        pending = self.profile(self.pending_path)
        text = f"In use: {active.name}." if active is not None else "No site profile is in use."
        if self.changed and pending is not None:
            text += f" “{pending.name}” will be used when you press OK; results made before keep their reading."
        self.state.setText(text)
        self.revert_button.setEnabled(self.shipped is not None and self.pending_path != SHIPPED)

    def _show_selected(self) -> None:
        path = self.selected_path()
        profile = self.profile(path) if path is not None else None
        self.activate_button.setEnabled(profile is not None and path != self.pending_path
                                        and path not in self._refused)
        self.roc.set_profile(profile)
        self.reliability.set_profile(profile)
        if profile is None:
            self.title.setText("")
            self.details.setText("")
            self.file.setText("")
            self.file.setToolTip("")
            return
        self.title.setText(profile.name)
        refused = self._refused.get(path or "")
        html = profile_html(profile)
        if refused:
            html = f"<p style='color:{theme.WARNING}'>Cannot be used: {escape(refused)}</p>" + html
        self.details.setText(html)
        if path == SHIPPED:
            self.file.setText("Shipped with LungLens: measured on films of other patients, not this site's.")
            self.file.setToolTip("")
        else:
            # The name only (a full path is too long to wrap); the folder is in the tooltip.
            plots = plot_paths(path)
            saved = [p.name for p in (plots.roc, plots.reliability) if p.is_file()]
            self.file.setText(f"File: {Path(path).name}" + (f"; plots beside it: {', '.join(saved)}" if saved else ""))
            self.file.setToolTip(str(Path(path).parent))

    def _say(self, text: str, problem: bool = False) -> None:
        self.message.setStyleSheet(f"color: {theme.WARNING};" if problem else "")
        self.message.setText(text)
