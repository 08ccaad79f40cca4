"""The LungLens workstation window: study list | viewer | result, with menus and status bar.

Composition and wiring only: state lives in the :class:`StudyController` (studies, batch,
study on screen) and its :class:`DisplayState` (window, inversion, heat-map).
"""

from __future__ import annotations

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
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from inference.paths import models_dir, resources_dir

from ..controller import StudyController, ViewContext
from ..platform_quirks import fit_top_level
from ..models.study_item import Status
from ..models.windowing import PRESETS, preset_window
from .qt_about_dialog import AboutDialog
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
        scroll = QScrollArea()
        scroll.setWidget(right)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.studies_dock = self._dock("Studies", self.study_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.result_dock = self._dock("Result", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tags_dock = self._dock("DICOM tags", self.tags, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.result_dock, self.tags_dock)
        self.result_dock.raise_()
        self.resizeDocks([self.studies_dock, self.result_dock], [330, 370], Qt.Orientation.Horizontal)

        # Export: one registry for every format; Ctrl+E asks where and in which format.
        # PNG of the view is built in; other modules add formats with add_export_format().
        self.export_formats: dict[str, ExportHandler] = {"PNG image of the view (*.png)": self._export_png}

        self._build_status_bar()
        self._build_actions()
        self._build_toolbar()
        self._set_busy(False)
        self._connect()
        self._restore_layout()
        fit_top_level(self)
        self._show_engine("", controller.manifest_error)

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
        self.act_export = self._action("Export View…", self.export_view, ("Ctrl+E",),
                                       tip="Save what is on screen (Ctrl+E)")
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
        m.addAction(self.act_export)
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
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addAction(self.act_about)

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
            self.viewer.clear()
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
        if problem:
            self.banner_label.setText(f"<b>The model is not available.</b> Studies can be viewed but not "
                                      f"analysed.<br>{problem}")
            self.banner.show()
            self.engine_label.setText("model unavailable")
        else:
            self.banner.hide()
            m = self.controller.manifest
            model = f"{m.name} {m.version}" if m else ""
            ran = provider.removesuffix("ExecutionProvider") if provider else "starting…"
            self.engine_label.setText(f"{model} · {ran}".strip(" ·"))

    # -- dialogs and export ------------------------------------------------------------------------
    def open_settings(self) -> None:
        from inference.providers import available_providers

        engine = self.controller.engine
        dlg = SettingsDialog(self.settings, available_providers(), engine.provider if engine else "",
                             self.controller.manifest, self)
        if dlg.exec():
            changed = dlg.apply()
            self.controller.apply_settings(changed)
            if "privacy" in changed:
                self.tags.set_show_identifiers(self.settings.show_identifiers)

    def open_about(self) -> None:
        AboutDialog(self.controller.manifest, models_dir() / "MODEL_CARD.md", self).exec()

    def add_export_format(self, file_filter: str, handler: ExportHandler) -> None:
        """Register an export format, e.g. ("PDF report (*.pdf)", write_pdf); Ctrl+E offers them all."""
        self.export_formats[file_filter] = handler

    def export_view(self) -> None:
        ctx = self.controller.context
        if ctx is None or ctx.study is None:
            self.statusBar().showMessage("Nothing to export: select a study first", 4000)
            return
        default = str(Path(self.settings.last_dir or ".") / f"{ctx.item.path.stem}-lunglens.png")
        path, chosen = QFileDialog.getSaveFileName(self, "Export", default, ";;".join(self.export_formats))
        if path:
            self.export_to(ctx, Path(path), chosen or next(iter(self.export_formats)))

    def export_to(self, ctx: ViewContext, path: Path, file_filter: str) -> None:
        try:
            self.export_formats[file_filter](ctx, path)
        except OSError as err:
            self.statusBar().showMessage(f"Export failed: {path.name}: {err.strerror or err}", 8000)
        else:
            self.statusBar().showMessage(f"Exported {path}", 5000)

    def _export_png(self, ctx: ViewContext, path: Path) -> None:  # noqa: ARG002 -- the view is what is on screen
        if not self.viewer.grab().save(str(path), "PNG"):
            raise OSError(0, f"could not write {path}")

    # -- closing ------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.controller.shutdown()
        super().closeEvent(event)


