"""The LungLens workstation window: study list | viewer | result, with menus and status bar.

Composition and wiring only: state lives in the :class:`StudyController` (studies, batch,
study on screen, worklist) and its :class:`DisplayState` (window, inversion, heat-map);
what exports write is in :mod:`desktop.exports`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inference.paths import models_dir, resources_dir
from inference.providers import friendly_name

from .. import exports
from ..controller import StudyController, ViewContext
from ..platform_quirks import fit_top_level
from ..models.study_item import Status
from ..models.windowing import PRESETS, preset_window
from .qt_about_dialog import AboutDialog
from .qt_audit_dialog import AuditDialog
from .qt_fit_scroll import FitWidthScrollArea
from .qt_overlay_controls import OverlayControls
from .qt_progress import ProgressLine
from .qt_result_panel import ResultPanel
from .qt_settings_dialog import SettingsDialog
from .qt_study_list import StudyListWidget
from .qt_tags import TagsPanel
from .qt_viewer import ViewerWidget

# File dialog filter for studies; anything else can still be dropped or opened as "All files".
STUDY_FILTER = "Studies (*.dcm *.dicom *.DCM *.png *.jpg *.jpeg *.bmp *.tif *.tiff);;All files (*)"

ExportHandler = Callable[[ViewContext, Path], None]
WORKLIST_FILTER = "CSV table (*.csv);;JSON (*.json)"
PDF_FORMAT = "PDF report (*.pdf)"
DICOM_SC_FORMAT = "DICOM Secondary Capture (*.dcm)"
PNG_FORMAT = "PNG image of the view (*.png)"

log = logging.getLogger(__name__)


def filter_suffixes(file_filter: str) -> list[str]:
    """"PDF report (*.pdf)" -> [".pdf"]."""
    return [m.lower() for m in re.findall(r"\*(\.[A-Za-z0-9]+)", file_filter)]


def format_eta(seconds: float) -> str:
    if seconds < 0:
        return "estimating…"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d} left" if s >= 60 else f"{s} s left"


class MainWindow(QMainWindow):
    def __init__(self, controller: StudyController) -> None:
        super().__init__()
        self.controller = controller
        self.settings = controller.settings
        self._engine_problem = ""  # what the banner says is not working
        self._storage_problem = controller.storage_error
        self.setWindowTitle("LungLens")
        icon = resources_dir() / "icons" / "lunglens-256.png"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        display = controller.display
        self.viewer = ViewerWidget(display)
        self.setCentralWidget(self.viewer)
        self.study_list = StudyListWidget(controller.model)
        self.result_panel = ResultPanel()
        self.overlay_controls = OverlayControls(display)
        self.tags = TagsPanel()
        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        QVBoxLayout(self.banner).addWidget(self.banner_label)
        self.banner.hide()

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 8, 8)
        rl.addWidget(self.banner)
        rl.addWidget(self.result_panel)
        rl.addWidget(self.overlay_controls)
        rl.addStretch(1)
        scroll = FitWidthScrollArea(right)
        self.studies_dock = self._dock("Studies", self.study_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.result_dock = self._dock("Result", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tags_dock = self._dock("DICOM tags", self.tags, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.result_dock, self.tags_dock)
        self.result_dock.raise_()
        self.resizeDocks([self.studies_dock, self.result_dock], [330, 370], Qt.Orientation.Horizontal)

        # Export: one registry for every format; Ctrl+E asks where and in which format
        # (the first is the default). More can be added with add_export_format().
        self.export_formats: dict[str, ExportHandler] = {
            PDF_FORMAT: self._export_pdf,
            DICOM_SC_FORMAT: self._export_secondary_capture,
            PNG_FORMAT: self._export_png,
        }

        self._build_status_bar()
        self._build_actions()
        self._build_toolbar()
        self._set_busy(False)
        self._connect()
        self._restore_layout()
        fit_top_level(self)
        self._show_engine("", controller.manifest_error)
        self.result_panel.set_operating_point(controller.operating_point())

    # -- construction ----------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self._latest_progress = (0, 0, -1.0)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(200)
        self._progress_timer.timeout.connect(self._apply_progress)
        self.cursor_label = QLabel()
        self.engine_label = QLabel()
        self.progress_label = QLabel()
        self.progress_bar = ProgressLine()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the batch (Esc); finished results are kept")
        self.cancel_button.clicked.connect(self.controller.cancel)
        sb.addWidget(self.cursor_label, 1)
        for w in (self.progress_label, self.progress_bar, self.cancel_button, self.engine_label):
            sb.addPermanentWidget(w)

    def _action(self, text: str, slot: Callable[..., object], shortcuts: tuple[str, ...] = (),
                checkable: bool = False, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
        a.setCheckable(checkable)
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even with the menu bar hidden
        return a

    def _build_actions(self) -> None:
        c, d, v = self.controller, self.controller.display, self.viewer
        self.act_open = self._action("Open…", self.open_files_dialog, ("O", "Ctrl+O"), tip="Open studies (O)")
        self.act_open_folder = self._action("Open Folder…", self.open_folder_dialog, ("Ctrl+Shift+O",),
                                            tip="Open every study in a folder and its sub-folders")
        self.act_export = self._action("Export…", self.export_view, ("Ctrl+E",),
                                       tip="Save the study on screen as a PDF report, a DICOM Secondary "
                                           "Capture or a picture of the view (Ctrl+E)")
        self.act_export_worklist = self._action("Export Worklist…", self.export_worklist_dialog,
                                                tip="Save every listed result as a CSV or JSON table")
        self.act_remove = self._action("Remove from Worklist", self.remove_selected, ("Del",),
                                       tip="Take the selected study out of the list and the saved worklist")
        self.act_clear = self._action("Clear Worklist…", self.clear_worklist,
                                      tip="Empty the list and the saved worklist (the audit log is kept)")
        self.act_audit = self._action("Audit Log…", self.open_audit_log,
                                      tip="Every analysis and export, newest first")
        self.act_settings = self._action("Settings…", self.open_settings, ("Ctrl+,",))
        self.act_quit = self._action("Quit", self.close, ("Ctrl+Q",))
        self.act_next = self._action("Next Study", lambda: self.study_list.step(1), ("N", "Space"))
        self.act_prev = self._action("Previous Study", lambda: self.study_list.step(-1), ("P",))
        self.act_heatmap = self._action("Heat-map", d.set_overlay_visible, ("H",), checkable=True,
                                        tip="Show the Grad-CAM heat-map (H)")
        self.act_invert = self._action("Invert", d.set_invert, ("I",), checkable=True, tip="Invert grey levels (I)")
        self.act_wl = self._action("Window/Level Drag", v.set_wl_mode, ("W",), checkable=True,
                                   tip="Left-drag changes window/level (right-drag always does) (W)")
        self.act_fit = self._action("Fit", v.fit, ("F",), tip="Fit the image to the window (F)")
        self.act_one = self._action("1:1", v.one_to_one, ("1",), tip="One image pixel per screen pixel (1)")
        self.act_reset = self._action("Reset", v.reset, ("R",), tip="Default window, not inverted, fitted (R)")
        self.act_cancel = self._action("Cancel Batch", c.cancel, ("Esc",))
        self.act_retry = self._action("Retry Failed and Cancelled", self._retry_all)
        self.act_about = self._action("About LungLens and the Model…", self.open_about)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_open, self.act_open_folder])
        self.recent_menu = m.addMenu("Open Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        m.addActions([self.act_export, self.act_export_worklist])
        m.addSeparator()
        m.addAction(self.act_settings)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&View")
        m.addActions([self.act_next, self.act_prev])
        m.addSeparator()
        m.addActions([self.act_heatmap, self.act_invert, self.act_wl])
        m.addSeparator()
        m.addActions([self.act_fit, self.act_one, self.act_reset])
        presets = m.addMenu("Window Preset")
        for name in PRESETS:
            a = QAction(name.capitalize(), self)
            a.triggered.connect(lambda _=False, n=name: self.apply_preset(n))
            presets.addAction(a)
        m.addSeparator()
        for dock in (self.studies_dock, self.result_dock, self.tags_dock):
            m.addAction(dock.toggleViewAction())
        m = mb.addMenu("&Analysis")
        m.addActions([self.act_cancel, self.act_retry])
        m.addSeparator()
        m.addActions([self.act_remove, self.act_clear])
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addActions([self.act_audit, self.act_about])
        # Right-click on the list offers what applies to a row.
        view = self.study_list.view
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        view.addActions([self.act_export, self.act_remove])

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Tools")
        tb.setObjectName("tools")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.act_open, self.act_open_folder])
        tb.addSeparator()
        tb.addActions([self.act_fit, self.act_one, self.act_reset])
        tb.addSeparator()
        tb.addActions([self.act_invert, self.act_wl, self.act_heatmap])
        tb.addSeparator()
        self.preset_box = QComboBox()
        self.preset_box.setToolTip("Window preset")
        for name in PRESETS:
            self.preset_box.addItem(f"Window: {name}", name)
        self.preset_box.activated.connect(lambda i: self.apply_preset(self.preset_box.itemData(i)))
        tb.addWidget(self.preset_box)

    def _connect(self) -> None:
        c = self.controller
        self.study_list.current_key_changed.connect(c.select)
        c.view_image.connect(self._show_context)
        c.view_result.connect(self._show_result)
        c.progress.connect(self._progress)
        c.batch_finished.connect(self._batch_finished)
        c.engine_status.connect(self._show_engine)
        c.storage_problem.connect(self._show_storage_problem)
        c.operating_changed.connect(self.result_panel.set_operating_point)
        c.model.rowsInserted.connect(self._rows_added)
        c.model.dataChanged.connect(self._model_changed)
        self.viewer.cursor_info.connect(self.cursor_label.setText)
        d = c.display
        d.overlay_changed.connect(self._sync_actions)
        d.invert_changed.connect(self._sync_actions)
        d.window_changed.connect(self._window_changed)
        self._sync_actions()

    def _restore_layout(self) -> None:
        geo, state = self.settings.window_geometry(), self.settings.window_state()
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1440, 900)
        if state is not None:
            self.restoreState(state)

    # -- opening ----------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        """The one entry point for every way of opening (menu, drop, command line, recent)."""
        existing_dirs = [Path(p) for p in paths if Path(p).is_dir()]
        if existing_dirs:
            self.settings.last_dir = str(existing_dirs[-1])
        elif paths:
            self.settings.last_dir = str(Path(paths[-1]).parent)
        self.controller.open_paths(paths)

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open studies", self.settings.last_dir, STUDY_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of studies", self.settings.last_dir)
        if folder:
            self.open_paths([folder])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent
        for p in recent:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self.open_paths([path]))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.settings.clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _rows_added(self, _parent: object, first: int, _last: int) -> None:
        if first == 0 and not self.study_list.current_key():
            # Next event-loop turn: the list first shows its new rows, then the study loads.
            QTimer.singleShot(0, self._select_first)

    def _select_first(self) -> None:
        if not self.study_list.current_key():
            self.study_list.select_row(0)

    def _retry_all(self) -> None:
        for row in range(self.controller.model.rowCount()):
            key = self.controller.model.key_at(row)
            item = self.controller.model.item(key)
            if item is not None and item.status in (Status.ERROR, Status.CANCELLED):
                self.controller.retry(key)

    # -- showing the study on screen ---------------------------------------------------------------
    def _show_context(self, ctx: ViewContext | None) -> None:
        if ctx is None or ctx.study is None:
            self.viewer.clear(ctx.problem if ctx else "")
            self.result_panel.show_item(ctx.item if ctx else None)
            self.tags.set_tags([], self.controller.model.show_identifiers)
            self.setWindowTitle("LungLens")
            return
        self.viewer.set_image(ctx.study.pixels, ctx.study.window)
        self.preset_box.setCurrentIndex(0)
        self.tags.set_tags(ctx.study.tags, self.controller.model.show_identifiers)
        self.setWindowTitle(f"{ctx.item.name} — LungLens")
        self._show_result(ctx)

    def _show_result(self, ctx: ViewContext) -> None:
        self.result_panel.show_item(ctx.item)
        if ctx.study is not None:
            self.viewer.set_overlay(ctx.prediction.cam if ctx.prediction is not None else None)

    def _model_changed(self, top: object, bottom: object) -> None:
        ctx = self.controller.context
        if ctx is None:
            return
        row = self.controller.model.row_of(ctx.key)
        if row is not None and top.row() <= row <= bottom.row():  # type: ignore[attr-defined]
            self.result_panel.show_item(ctx.item)

    def apply_preset(self, name: str) -> None:
        pixels = self.viewer.pixels
        if pixels is None:
            return
        d = self.controller.display
        d.set_window(*preset_window(pixels, name, d.default_window))
        i = self.preset_box.findData(name)
        if i >= 0:
            self.preset_box.setCurrentIndex(i)

    def _window_changed(self, center: float, width: float) -> None:
        self.viewer.setToolTip("")
        self.cursor_label.setText(f"window: level {center:.4g}, width {width:.4g}")

    def _sync_actions(self) -> None:
        d = self.controller.display
        for action, on in ((self.act_heatmap, d.overlay_visible), (self.act_invert, d.invert)):
            if action.isChecked() != on:
                action.setChecked(on)

    # -- batch progress and engine -----------------------------------------------------------------
    def _progress(self, done: int, total: int, eta: float) -> None:
        """Coalesced: a status bar repaint per result would cost the GUI thread more than the result."""
        self._latest_progress = (done, total, eta)
        if done >= total or self.cancel_button.isHidden():  # start and end are shown at once
            self._progress_timer.stop()
            self._apply_progress()
        elif not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self) -> None:
        done, total, eta = self._latest_progress
        busy = done < total
        self._set_busy(busy)
        if busy:
            self.progress_bar.set_progress(done, total)
            self.progress_label.setText(f"{done} of {total} · {format_eta(eta)}")

    def _batch_finished(self) -> None:
        self._progress_timer.stop()
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.act_cancel.setEnabled(busy)
        if not busy:
            c = self.controller.model.counts()
            total = self.controller.model.rowCount()
            failed = c[Status.ERROR]
            cancelled = c[Status.CANCELLED]
            parts = [f"{c[Status.DONE]} of {total} analysed"] if total else []
            if failed:
                parts.append(f"{failed} failed")
            if cancelled:
                parts.append(f"{cancelled} cancelled")
            self.progress_label.setText(" · ".join(parts))

    def _show_engine(self, provider: str, problem: str) -> None:
        m, profile = self.controller.manifest, self.controller.profile
        self.result_panel.current_model_sha256 = m.sha256 if m is not None else ""
        self.result_panel.current_profile_sha256 = profile.sha256 if profile is not None else ""
        self._engine_problem = problem
        self._update_banner()
        if problem:
            self.engine_label.setText("model unavailable")
        else:
            model = f"{m.name} {m.version}" if m else ""
            ran = friendly_name(provider) if provider else "starting…"
            self.engine_label.setText(f"{model} · {ran}".strip(" ·"))

    def _show_storage_problem(self, reason: str) -> None:
        self._storage_problem = reason
        self._update_banner()

    def _update_banner(self) -> None:
        """The banner says what does not work: the model, saving results, or both."""
        parts = []
        if self._engine_problem:
            parts.append(f"<b>The model is not available.</b> Studies can be viewed but not "
                         f"analysed.<br>{self._engine_problem}")
        if self._storage_problem:
            parts.append(f"<b>Worklist:</b> {self._storage_problem}")
        self.banner_label.setText("<br><br>".join(parts))
        self.banner.setVisible(bool(parts))

    # -- worklist -----------------------------------------------------------------------------------
    def remove_selected(self) -> None:
        key = self.study_list.current_key()
        item = self.controller.model.item(key)
        if item is None:
            self.statusBar().showMessage("Select a study to remove first", 4000)
        elif not self.controller.remove(key):
            self.statusBar().showMessage(f"{item.name} is still being analysed: cancel the batch first", 6000)
        else:
            self.statusBar().showMessage(f"Removed {item.name} from the worklist", 4000)

    def clear_worklist(self) -> None:
        c = self.controller
        if c.busy:
            self.statusBar().showMessage("A batch is running: cancel it (Esc) before clearing the worklist", 6000)
            return
        n = c.model.rowCount()
        answer = QMessageBox.question(
            self, "Clear the worklist",
            f"Remove all {n} studies from the list and from the saved worklist?\n\n"
            "The files themselves are not touched, and the audit log keeps its history.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes and c.clear_worklist():
            self.statusBar().showMessage("Worklist cleared", 4000)

    def shown_items(self) -> list:
        """The listed studies in the order the list shows them."""
        proxy, model = self.study_list.proxy, self.controller.model
        return [model.item_at(proxy.mapToSource(proxy.index(r, 0)).row()) for r in range(proxy.rowCount())]

    def export_worklist_dialog(self) -> None:
        default = str(Path(self.settings.last_dir or ".") / "lunglens-worklist.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export worklist", default, WORKLIST_FILTER)
        if path:
            self.export_worklist_to(Path(path), chosen)

    def export_worklist_to(self, path: Path, file_filter: str = "") -> None:
        if path.suffix.lower() not in (".csv", ".json"):
            path = path.with_suffix(".json" if "json" in file_filter.lower() else ".csv")
        try:
            n = exports.export_worklist(self.shown_items(), path, self.controller.audit,
                                        self.settings.show_identifiers)
        except exports.ExportError as err:
            self._export_failed(str(err))
        else:
            self.statusBar().showMessage(f"Exported {n} studies to {path}", 5000)

    # -- dialogs and export ------------------------------------------------------------------------
    def open_settings(self) -> None:
        from inference.providers import available_providers

        engine = self.controller.engine
        dlg = SettingsDialog(self.settings, available_providers(), engine.provider if engine else "",
                             self.controller.profile, self, worklist_path=self.controller.worklist_path,
                             audit_path=self.controller.audit_path)
        if dlg.exec():
            changed = dlg.apply()
            self.controller.apply_settings(changed)
            if "privacy" in changed:
                self.tags.set_show_identifiers(self.settings.show_identifiers)

    def open_about(self) -> None:
        AboutDialog(self.controller.manifest, self.controller.profile, models_dir() / "MODEL_CARD.md", self).exec()

    def open_audit_log(self) -> None:
        if self.controller.audit is None:
            self.statusBar().showMessage(f"The audit log is not available: {self.controller.storage_error}", 10000)
            return
        AuditDialog(self.controller.audit, self).exec()

    def add_export_format(self, file_filter: str, handler: ExportHandler) -> None:
        """Register an export format, e.g. ("PDF report (*.pdf)", write_pdf); Ctrl+E offers them all."""
        self.export_formats[file_filter] = handler

    def export_view(self) -> None:
        ctx = self.controller.context
        if ctx is None or ctx.study is None:
            why = (ctx.problem or ctx.item.error) if ctx is not None else ""
            why = why or "select a study first"
            self.statusBar().showMessage(f"Nothing to export: {why}", 6000)
            return
        first = next(iter(self.export_formats))
        suffix = (filter_suffixes(first) or [".png"])[0]
        default = str(Path(self.settings.last_dir or ".") / f"{ctx.item.path.stem}-lunglens{suffix}")
        path, chosen = QFileDialog.getSaveFileName(self, "Export", default, ";;".join(self.export_formats))
        if path:
            file_filter, target = self.format_for(Path(path), chosen)
            self.export_to(ctx, target, file_filter)

    def format_for(self, path: Path, chosen: str = "") -> tuple[str, Path]:
        """The format for ``path``: its suffix decides when it names one, else the chosen
        filter (or the first), whose suffix is then added."""
        for file_filter in self.export_formats:
            if path.suffix.lower() in filter_suffixes(file_filter):
                return file_filter, path
        file_filter = chosen if chosen in self.export_formats else next(iter(self.export_formats))
        suffixes = filter_suffixes(file_filter)
        return file_filter, (path.with_name(path.name + suffixes[0]) if suffixes else path)

    def export_to(self, ctx: ViewContext, path: Path, file_filter: str) -> bool:
        """Run one export; a failure is shown as one message, never a traceback. True when written."""
        try:
            self.export_formats[file_filter](ctx, path)
        except exports.ExportError as err:
            self._export_failed(str(err))
        except OSError as err:
            self._export_failed(f"{path.name} was not written: {err.strerror or err}.")
        except Exception as err:  # noqa: BLE001 -- a format added by add_export_format() that fails oddly
            log.warning("export to %s failed", path, exc_info=True)
            self._export_failed(f"{path.name} was not written ({type(err).__name__}: {err}).")
        else:
            self.statusBar().showMessage(f"Exported {path}", 5000)
            return True
        return False

    def _export_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        QMessageBox.warning(self, "Export failed", message)

    def _export_pdf(self, ctx: ViewContext, path: Path) -> None:
        exports.export_report_pdf(ctx, path, self.controller.audit, self.settings.show_identifiers)

    def _export_secondary_capture(self, ctx: ViewContext, path: Path) -> None:
        exports.export_secondary_capture(ctx, path, self.controller.audit)

    def _export_png(self, ctx: ViewContext, path: Path) -> None:
        exports.export_view_png(ctx, path, self.controller.audit,
                                lambda out: self.viewer.grab().save(str(out), "PNG"))

    # -- closing ------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.controller.shutdown()
        super().closeEvent(event)


