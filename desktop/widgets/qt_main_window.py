"""The LungLens workstation window: study list | viewer | result, with menus and status bar.

Composition and wiring only: state lives in the :class:`StudyController` (studies, batch,
study on screen, worklist) and its :class:`DisplayState` (window, inversion, heat-map);
what exports write is in :mod:`desktop.exports`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any
from html import escape
from pathlib import Path

from PySide6.QtCore import QBuffer, QEvent, QIODevice, QObject, QSize, Qt, QTimer
from PySide6.QtGui import (QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QIcon, QKeySequence,
                           QPixmap, QShowEvent)
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inference import heatmap
from inference.loaders.pixels import display_note
from inference.paths import models_dir, resources_dir
from inference.providers import friendly_name

from .. import exports
from ..controller import Removal, StudyController, VerdictChange, ViewContext
from ..platform_quirks import fit_top_level
from ..models.study_item import Status
from ..models.windowing import PRESETS, preset_window, window_text
from .qt_about_dialog import AboutDialog
from .qt_audit_dialog import AuditDialog
from .qt_dicom_node_settings import NodeStatus
from .qt_fit_scroll import FitWidthScrollArea, within_screen
from .qt_overlay_controls import OverlayControls
from .qt_progress import ProgressLine
from .qt_result_panel import ResultPanel
from .qt_settings_dialog import SettingsDialog
from .qt_study_list import StudyListWidget
from .qt_tags import TagsPanel
from .qt_viewer import ViewerWidget

CUSTOM_WINDOW = "custom"  # what the preset box says once the window is changed by hand

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


FIRST_SIZE = (1440, 900)  # the window's size at first start, where the screen has room
DOCKS_FULL_WIDTH_FROM = 1280  # narrower windows start with narrower docks (showEvent)
READING = "Reading the"  # how the status bar's words on a long worklist being read begin
CLOSE_SAVE_WAIT_S = 3.0  # how long closing waits for a locked worklist to save what it does not hold
UNDO_DEPTH = 20  # removals and verdicts Ctrl+Z can take back, the last first


def png_bytes(pixmap: QPixmap) -> bytes:
    """A picture as PNG bytes (written by the caller, 0600)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    return bytes(buffer.data()) if pixmap.save(buffer, "PNG") else b""


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
        self.tags_dock.visibilityChanged.connect(self.tags.set_reachable)  # its tab chosen, or not
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
        # Controls that use Space or Del themselves get them (Space on the heat-map check box
        # opened the next patient; Del in the DICOM tags removed the study); elsewhere they are
        # the window's: Next Study, Remove.
        space, delete = int(Qt.Key.Key_Space), int(Qt.Key.Key_Delete)
        self._own_keys: dict[QObject, set[int]] = {
            w: {space} for w in (self.overlay_controls.visible_box, self.preset_box, self.study_list.sort_box,
                                 self.cancel_button, self.undo_button)}
        self._own_keys[self.tags.tree] = {space, delete}
        # See eventFilter. Not WheelFocus (QComboBox's own): a real wheel gives such a box focus
        # before any filter sees it, and the box turned all the same.
        self._chosen_by_hand = (self.preset_box, self.study_list.sort_box)
        for box in self._chosen_by_hand:
            box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._film = self.viewer.viewport()  # a click, drag or wheel on it: see _reader_acts
        for widget in (*self._own_keys, self._film):
            widget.installEventFilter(self)
        self.overlay_controls.visible_box.toggled.connect(self._reader_acts)  # by hand: the window's own are blocked
        self.overlay_controls.opacity.valueChanged.connect(self._reader_acts)
        self.study_list.view.setFocus()  # the keys' home: arrows, Home and End did nothing on the viewer

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
        self.cancel_button.clicked.connect(self.cancel_batch)  # asks, as Esc does (Space on it had not)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Put the removed studies back in the list and the worklist file (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self.undo_button.hide()
        self._removal_message = ""
        self._chosen_by_window = 0  # the study the window chose to show (not the reader), while it is shown
        self._acted_on = 0  # the study the reader last acted on (_reader_acts)
        self.ask_before_closing = True  # False when a signal closes it (logging out must not wait on a question)
        self._view_note = ""  # the status message about the film on screen (shown reduced)
        sb.messageChanged.connect(self._status_message_changed)
        sb.addWidget(self.cursor_label, 1)
        # runs `lunglens serve` when Settings enable it, deciding with this window's profile and point
        self.node_status = NodeStatus(self.settings, self, decision=self.controller.node_arguments)
        self.node_status.arrived.connect(self.controller.restore)  # films the node analysed join the list
        for w in (self.undo_button, self.progress_label, self.progress_bar, self.cancel_button, self.engine_label,
                  self.node_status):
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

    def _study_action(self, *args: Any, **kwargs: Any) -> QAction:
        """An action on how the study on screen is shown (see _reader_acts)."""
        a = self._action(*args, **kwargs)
        a.triggered.connect(self._reader_acts)
        return a

    def _reader_acts(self) -> None:
        """The reader is at work on the study on screen (a verdict, an export, the window, a
        zoom): the end of the batch never takes them away from it (_to_most_suspicious)."""
        self._acted_on = self.study_list.current_key()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel) and watched is self._film:
            self._reader_acts()
        elif kind == QEvent.Type.ShortcutOverride and event.key() in self._own_keys.get(watched, ()):  # type: ignore[attr-defined]
            event.accept()  # the key goes to the control, not to the window's shortcut
            return True
        elif kind == QEvent.Type.Wheel and watched in self._chosen_by_hand and not watched.hasFocus():  # type: ignore[attr-defined]
            event.ignore()  # a wheel passing over the sort or window box re-sorted the list; it scrolls on
            return True
        return super().eventFilter(watched, event)

    def _build_actions(self) -> None:
        d, v = self.controller.display, self.viewer
        self.act_open = self._action("Open…", self.open_files_dialog, ("O", "Ctrl+O"), tip="Open studies (O)")
        self.act_open_folder = self._action("Open Folder…", self.open_folder_dialog, ("Ctrl+Shift+O",),
                                            tip="Open every study in a folder and its sub-folders")
        self.act_export = self._action("Export…", self.export_view, ("Ctrl+E",),
                                       tip="Save the study on screen as a PDF report, a DICOM Secondary "
                                           "Capture or a picture of the view (Ctrl+E)")
        self.act_export_worklist = self._action("Export Worklist…", self.export_worklist_dialog,
                                                tip="Save every listed result as a CSV or JSON table")
        self.act_remove = self._action("Remove from Worklist", self.remove_selected, ("Del",),
                                       tip="Take the selected studies out of the list and the worklist file "
                                           "(Ctrl+Z puts them back)")
        self.act_undo = self._action("Undo", self.undo, ("Ctrl+Z",),
                                     tip="Undo the last removal or verdict (Ctrl+Z); again, the one before")
        self.act_undo.setEnabled(False)
        self._undo_stack: list[Removal | VerdictChange] = []  # the last action last; see _push_undo
        self.act_clear = self._action("Clear Worklist…", self.clear_worklist,
                                      tip="Empty the list and the saved worklist (the audit log is kept)")
        self.act_audit = self._action("Audit Log…", self.open_audit_log,
                                      tip="Every analysis and export, newest first")
        self.act_settings = self._action("Settings…", self.open_settings, ("Ctrl+,",))
        self.act_quit = self._action("Quit", self.close, ("Ctrl+Q",))
        self.act_next = self._action("Next Study", lambda: self._step(1), ("N", "Space"))
        self.act_prev = self._action("Previous Study", lambda: self._step(-1), ("P",))
        self.act_heatmap = self._study_action("Heat-map", d.set_overlay_visible, ("H",), checkable=True,
                                        tip="Show or hide the heat-map of this study (H)")
        self.act_invert = self._study_action("Invert", d.set_invert, ("I",), checkable=True, tip="Invert grey levels (I)")
        self.act_wl = self._study_action("Window/Level Drag", v.set_wl_mode, ("W",), checkable=True,
                                   tip="Left-drag changes window/level (right-drag always does) (W)")
        self.act_fit = self._study_action("Fit", v.fit, ("F",), tip="Fit the image to the window (F)")
        self.act_one = self._study_action("1:1", v.one_to_one, ("1",), tip="One image pixel per screen pixel (1)")
        self.act_reset = self._study_action("Reset", v.reset, ("R",), tip="Default window, not inverted, fitted (R)")
        # Window and level by keyboard, in steps of the window on screen (the mouse drag had been
        # the only way, and a reader whose hand is on the keys had no way to brighten a film).
        self.act_window_keys = [
            self._study_action(text, lambda _=False, b=bright, c=contrast: self._step_window(b, c), keys,
                               tip=f"{text} ({' or '.join(keys)}); R resets")
            for text, keys, bright, contrast in (("Brighter", ("=", "+"), 1, 0), ("Darker", ("-",), -1, 0),
                                                 ("More Contrast", ("]",), 0, 1), ("Less Contrast", ("[",), 0, -1))]
        self.act_cancel = self._action("Cancel Batch", self.cancel_batch, ("Esc",),
                                       tip="Stop the batch, after asking (Esc); finished results are kept")
        self.act_retry = self._action("Retry Failed and Cancelled", self._retry_all)
        self.act_about = self._action("About LungLens and the Model…", self.open_about)
        self.act_shortcuts = self._action("Keyboard Shortcuts…", self.open_shortcuts, ("F1",))
        # Reader verdicts: Shift+ because N and P step through the list.
        self.act_verdicts = {
            verdict: self._action(text, lambda _=False, v=verdict: self.give_verdict(v), (key,),
                                  tip=f"The reader's verdict on this study: {verdict} ({key})")
            for verdict, text, key in (("pneumonia", "Pneumonia", "Shift+P"),
                                       ("no pneumonia", "No Pneumonia", "Shift+N"),
                                       ("unsure", "Unsure", "Shift+U"))}
        self.act_withdraw_verdict = self._action("Withdraw Verdict", lambda: self.give_verdict(None), ("Shift+W",),
                                                 tip="Take back the reader's verdict on this study (Shift+W)")
        self.act_calibrate = self._action("Calibrate for this Site…", self.open_calibration_wizard,
                                          tip="Measure LungLens on this site's labelled films and set its "
                                              "calibration and operating points")
        self.act_local_performance = self._action("Local Performance…", self.open_local_performance,
                                                  tip="The profile in use against the reader's verdicts")

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
        m.addActions(self.act_window_keys)
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
        m.addActions([self.act_remove, self.act_undo, self.act_clear])
        m.addSeparator()
        verdicts = m.addMenu("Reader Verdict")
        verdicts.addActions([*self.act_verdicts.values(), self.act_withdraw_verdict])
        m.addAction(self.act_calibrate)
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addActions([self.act_shortcuts, self.act_audit, self.act_local_performance, self.act_about])
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
        self.preset_box.setPlaceholderText(f"Window: {CUSTOM_WINDOW}")  # shown after a manual change
        self._preset: tuple[str, tuple[float, float] | None] = ("default", None)  # the last one applied
        for name in PRESETS:
            self.preset_box.addItem(f"Window: {name}", name)
        self.preset_box.setCurrentIndex(0)  # not the placeholder: no window has been changed by hand
        self.preset_box.activated.connect(lambda i: self.apply_preset(self.preset_box.itemData(i)))
        tb.addWidget(self.preset_box)

    def _connect(self) -> None:
        c = self.controller
        # With the study the reader is likely to open next, N's, decoded ahead.
        self.study_list.current_key_changed.connect(lambda key: c.select(key, self.study_list.key_after(key)))
        c.view_image.connect(self._show_context)
        c.view_result.connect(self._show_result)
        c.progress.connect(self._progress)
        c.batch_finished.connect(self._batch_finished)
        c.batch_started.connect(self._batch_started)
        c.engine_status.connect(self._show_engine)
        c.storage_problem.connect(self._show_storage_problem)
        c.storage_recovered.connect(lambda text: self.statusBar().showMessage(text, 10000))
        c.restoring_changed.connect(self._restoring)
        c.restoring_read.connect(lambda n, total: self.statusBar().showMessage(
            f"{READING} {total:,} results kept in the worklist… {n:,} read"))
        if c.restoring:  # it began before this window was there
            self._restoring(True)
        c.operating_changed.connect(self.result_panel.set_operating_point)
        c.profile_changed.connect(self._profile_changed)
        c.model.rowsInserted.connect(self._rows_added)
        c.model.dataChanged.connect(self._model_changed)
        c.model.progress_changed.connect(self._counts_changed)
        if c.model.rowCount():  # the worklist was listed before this window was there: show its top
            QTimer.singleShot(0, self._select_first)
        self.viewer.cursor_info.connect(self.cursor_label.setText)
        d = c.display
        d.overlay_changed.connect(self._sync_actions)
        d.invert_changed.connect(self._sync_actions)
        d.window_changed.connect(self._window_changed)
        if c.context is None or c.context.study is None:  # no film yet: no heat-map reads as shown
            self._heatmap_applies(False)
        self._sync_actions()

    def _restore_layout(self) -> None:
        geo, state = self.settings.window_geometry(), self.settings.window_state()
        self._fit_docks_when_shown = True  # see showEvent
        if geo is None or not self.restoreGeometry(geo):
            self._first_geometry()
        if state is not None:
            self.restoreState(state)

    def showEvent(self, event: QShowEvent) -> None:
        """On a narrow window the list and the result panel give the film room, at first start
        and when a layout saved on a wider screen would squeeze it: at 1024 x 600 their 330 and
        370 px left it 260 px, the smallest pane."""
        super().showEvent(event)
        if self._fit_docks_when_shown:
            self._fit_docks_when_shown = False
            width = self.width()
            if width >= DOCKS_FULL_WIDTH_FROM:
                return
            panel = self.result_dock.widget()  # the result panel no narrower than its words need
            needed = panel.widget().minimumSizeHint().width() + panel.verticalScrollBar().sizeHint().width() + 8
            docks = [(dock, w) for dock, w in ((self.studies_dock, width * 22 // 100),
                                               (self.result_dock, max(width * 29 // 100, needed)))
                     if not dock.isHidden() and not dock.isFloating()]  # those beside the film
            if sum(dock.width() for dock, _ in docks) > sum(w for _, w in docks) * 11 // 10:  # else the reader's stay
                self.resizeDocks([dock for dock, _ in docks], [w for _, w in docks], Qt.Orientation.Horizontal)

    def _first_geometry(self) -> None:
        """1440 x 900, or what the screen has room for (a 1366 x 768 laptop got a window taller
        than its screen), centred."""
        self.resize(within_screen(self, QSize(*FIRST_SIZE)))
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            frame = self.frameGeometry()
            frame.moveCenter(screen.availableGeometry().center())
            self.move(frame.topLeft())

    # -- opening ----------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        """The one entry point for every way of opening (menu, drop, command line, recent)."""
        paths = [Path(os.path.abspath(p)) for p in paths]  # the folder it started in is not the next one's
        existing_dirs = [p for p in paths if p.is_dir()]
        if existing_dirs:
            self.settings.last_dir = str(existing_dirs[-1])
        elif paths:
            self.settings.last_dir = str(Path(paths[-1]).parent)
        self.controller.open_paths(paths)
        if paths and self.cancel_button.isHidden():  # a folder on a slow share lists for a while
            self._set_busy(True)
            self.progress_label.setText("listing files…")

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
        # Next event-loop turn: the list first shows its new rows, then the study loads. (A long
        # worklist is listed the most probable first: its first rows hold the top of the list.)
        if first == 0 and not self.study_list.current_key():
            QTimer.singleShot(0, self._select_first)

    def _restoring(self, started: bool) -> None:
        """A long worklist is listed in the background: say so; once it is, show the most
        suspicious study if none is on screen (a film opened meanwhile stays)."""
        if started:
            self.statusBar().showMessage(f"{READING} results kept in the worklist…")
            return
        if self.statusBar().currentMessage().startswith(READING):
            self.statusBar().clearMessage()  # and nothing said since (a removal's Undo, a saved note)
        self._select_first()  # never away from a study on screen

    def _select_first(self) -> None:
        if not self.study_list.current_key():
            self.study_list.select_row(0)
            self._chosen_by_window = self.study_list.current_key()

    def _reader_has_moved(self) -> bool:
        """Whether the study on screen is one the reader chose (not the window)."""
        current = self.study_list.current_key()
        return bool(current) and current != self._chosen_by_window

    def _step_window(self, brighter: int, contrast: int) -> None:
        """One step of window/level: the level by a twentieth of the window width (brighter
        on screen, inverted or not), the width by a fifth."""
        d = self.controller.display
        if self.controller.context is None:
            return
        center, width = d.window
        sign = -1 if not d.invert else 1  # a lower level shows the film brighter, unless inverted
        d.set_window(center + sign * brighter * width / 20.0, width / 1.2 if contrast > 0 else
                     width * 1.2 if contrast < 0 else width)

    def _step(self, delta: int) -> None:
        """N/Space and P; at either end of the list it says so (silence there read as a hang)."""
        if not self.study_list.step(delta) and self.controller.model.rowCount():
            self.statusBar().showMessage("This is the last study in the list" if delta > 0 else
                                         "This is the first study in the list", 3000)

    def cancel_batch(self) -> None:
        """Esc: stop the batch, once the reader says so (an Esc meant for a closed dialog or
        the tags filter cancelled 107 studies without a word)."""
        c = self.controller
        if not c.busy:
            return
        left = c.model.counts()
        waiting = left[Status.QUEUED] + left[Status.LOADING] + left[Status.RUNNING]
        left = (f"{waiting} {'study is' if waiting == 1 else 'studies are'} not analysed yet" if waiting
                else "the folder is still being listed")
        answer = QMessageBox.question(
            self, "Stop the batch",
            f"Stop analysing? {left[0].upper()}{left[1:]}.\n\n"
            "Finished results are kept; Analysis → Retry Failed and Cancelled analyses the rest later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes and c.busy:  # it may have ended meanwhile
            c.cancel()

    def _batch_started(self, first: int) -> None:
        """Show the first study opened, unless the reader has chosen one: the top of the list
        may be another patient's study, restored from the worklist (a film opened from the
        command line was shown behind yesterday's most suspicious one)."""
        if not self._reader_has_moved():
            self.study_list.select_key(first)
            self._chosen_by_window = self.study_list.current_key()

    def _to_most_suspicious(self) -> None:
        """When the batch ends, a reader still on the film shown first (the first opened, before
        any result) is taken to the most suspicious study *of that batch* -- not to the top of
        the whole list, which may hold other patients restored from the worklist; one who has
        moved on, or acted on the film shown (a verdict, the window, a zoom), stays where they
        are: the next key would have acted on another patient."""
        current = self.study_list.current_key()
        if (self._reader_has_moved() or (current and self._acted_on == current)
                or self.study_list.sort_box.currentData() != "suspicion"):
            return
        batch = set(self.controller.batch)
        proxy, model = self.study_list.proxy, self.controller.model
        for row in range(proxy.rowCount()):
            key = model.key_at(proxy.mapToSource(proxy.index(row, 0)).row())
            if key in batch:
                self.study_list.select_key(key)
                self._chosen_by_window = key
                return

    def _retry_all(self) -> None:
        for row in range(self.controller.model.rowCount()):
            key = self.controller.model.key_at(row)
            item = self.controller.model.item(key)
            if item is not None and item.status in (Status.ERROR, Status.CANCELLED):
                self.controller.retry(key)

    # -- showing the study on screen ---------------------------------------------------------------
    def _show_context(self, ctx: ViewContext | None) -> None:
        if self._view_note and self.statusBar().currentMessage() == self._view_note:
            self.statusBar().clearMessage()  # it was about the film shown before this one
        self._view_note = ""
        if ctx is None or ctx.study is None:
            self.viewer.clear(ctx.problem if ctx else "")
            self._heatmap_applies(False)  # nothing of the film shown before stays in the toolbar
            self._preset = ("default", None)
            self.preset_box.setCurrentIndex(0)
            self.cursor_label.clear()
            self.result_panel.show_item(ctx.item if ctx else None)
            self.tags.set_tags([], self.controller.model.show_identifiers)
            self.setWindowTitle("LungLens")
            return
        self._preset = ("default", None)
        self._heatmap_applies(True)
        self.viewer.set_image(ctx.study.pixels, ctx.study.window)
        self.preset_box.setCurrentIndex(0)
        self.tags.set_tags(ctx.study.tags, self.controller.model.show_identifiers)
        self.setWindowTitle(f"{ctx.item.name} — LungLens")
        note = display_note(ctx.study)  # shown reduced (inference.loaders.pixels.for_display)
        if note:
            self.statusBar().showMessage(note, 10000)
            self._view_note = note
        self._show_result(ctx)

    def _heatmap_applies(self, film_on_screen: bool) -> None:
        """The heat-map's controls (H, the toolbar button, the panel's box) work only over a film:
        over an empty viewer none of them may read as a map shown."""
        if not film_on_screen:
            self.controller.display.set_overlay_visible(False)
        self.act_heatmap.setEnabled(film_on_screen)
        self.overlay_controls.visible_box.setEnabled(film_on_screen)

    def _show_result(self, ctx: ViewContext) -> None:
        self.result_panel.show_item(ctx.item)
        if ctx.study is not None:
            pred = ctx.prediction
            applies = pred is not None and heatmap.applies(pred)
            # Shown by default only where it applies (the settings may say never); H shows it
            # anywhere else, muted, for this study.
            self.controller.display.set_overlay_visible(applies and self.controller.settings.overlay_visible)
            self.viewer.set_result(pred)

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
        self._reader_acts()
        d = self.controller.display
        window = preset_window(pixels, name, d.default_window)
        self._preset = (name, window)  # before set_window: _window_changed names it
        d.set_window(*window)
        self.preset_box.setCurrentIndex(self.preset_box.findData(name))

    def _window_changed(self, center: float, width: float) -> None:
        self.viewer.setToolTip("")
        self.cursor_label.setText(f"window: {window_text(center, width)}")
        self.preset_box.setCurrentIndex(self.preset_box.findData(self._preset_on_screen((center, width))))

    def _preset_on_screen(self, window: tuple[float, float]) -> str:
        """The preset the window is at, or CUSTOM_WINDOW after a drag or another manual change."""
        name, applied = self._preset
        if window == self.controller.display.default_window:
            return "default"
        return name if window == applied else CUSTOM_WINDOW

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
        self._to_most_suspicious()

    def _set_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.act_cancel.setEnabled(busy)
        if not busy:
            self._show_counts()

    def _counts_changed(self) -> None:
        """A study was added, finished or removed: the status bar agrees with the list at once."""
        if self.cancel_button.isHidden():  # during a batch the progress is shown instead
            self._show_counts()

    def _show_counts(self) -> None:
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

    def _profile_changed(self, profile: object) -> None:
        """Another site profile is in use: results made under the previous one are marked as such."""
        self.result_panel.current_profile_sha256 = getattr(profile, "sha256", "")
        self._update_banner()
        ctx = self.controller.context
        if ctx is not None:
            self.result_panel.show_item(ctx.item)

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
        if self.controller.profile_warning:
            parts.append(f"<b>Site profile:</b> {self.controller.profile_warning}")
        self.banner_label.setText("<br><br>".join(parts))
        self.banner.setVisible(bool(parts))

    # -- worklist -----------------------------------------------------------------------------------
    def remove_selected(self) -> None:
        """Remove at once and offer Undo, rather than ask: a question asked at every Del is
        soon answered without reading, while Undo (Ctrl+Z, or the button beside the message)
        mends a wrong key later too (see _push_undo)."""
        keys = self.study_list.selected_keys()
        if not keys:
            self.statusBar().showMessage("Select a study to remove first", 4000)
            return
        removal = self.controller.remove(keys)
        kept = ""
        if removal.busy:
            what = removal.busy[0].name if len(removal.busy) == 1 else f"{len(removal.busy)} studies"
            kept = f"{what} {'is' if len(removal.busy) == 1 else 'are'} still being analysed: cancel the batch first"
        if not removal.items:
            self.statusBar().showMessage(kept, 6000)
            return
        n = len(removal.items)
        what = removal.items[0].name if n == 1 else f"{n} studies"
        where = "the list and the worklist file" if self.controller.worklist is not None else "the list"
        self._removal_message = " · ".join(filter(None, [f"Removed {what} from {where} — Undo: Ctrl+Z", kept]))
        self._push_undo(removal)
        self.statusBar().showMessage(self._removal_message, 15000)

    def _push_undo(self, action: Removal | VerdictChange) -> None:
        """Ctrl+Z undoes the last action, the next Ctrl+Z the one before, and so on, as in any
        editor: a verdict given after a removal had silently taken the removal's Undo away (and
        with the removed study, its verdict)."""
        self._undo_stack = [*self._undo_stack, action][-UNDO_DEPTH:]
        self._show_undo()

    def _show_undo(self) -> None:
        top = self._undo_stack[-1] if self._undo_stack else None
        self.act_undo.setText("Undo Verdict" if isinstance(top, VerdictChange) else
                              "Undo Remove" if top is not None else "Undo")
        self.act_undo.setEnabled(top is not None)
        self._status_message_changed(self.statusBar().currentMessage())

    def undo(self) -> None:
        """Ctrl+Z: take back the last removal or verdict not yet taken back."""
        if not self._undo_stack:
            return
        action = self._undo_stack.pop()
        self._show_undo()
        if isinstance(action, VerdictChange):
            key = self.controller.model.key_of_path(action.path)
            if key is None:
                self.statusBar().showMessage(f"{action.path.name} is no longer listed: its verdict stays", 5000)
                return
            problem = self.controller.set_verdict(key, action.before, action.before_at)
            if problem:  # kept, to be tried again once the worklist is back
                self._push_undo(action)
                self.statusBar().showMessage(f"Not undone; Ctrl+Z tries again. ({problem})", 8000)
                return
            self.statusBar().showMessage(f"Verdict on {action.path.name} back to {action.before}" if action.before
                                         else f"Verdict on {action.path.name} withdrawn", 5000)
            return
        n = self.controller.undo_remove(action)
        self.statusBar().showMessage(f"Put {n} {'study' if n == 1 else 'studies'} back" if n else
                                     "Nothing to put back: the removed studies are listed again", 5000)

    def _status_message_changed(self, text: str) -> None:
        """The Undo button stands beside the removal message, and goes with it."""
        self.undo_button.setVisible(bool(text) and text == self._removal_message
                                    and bool(self._undo_stack) and isinstance(self._undo_stack[-1], Removal))

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
            self._undo_stack = []
            self._show_undo()
            self.statusBar().showMessage("Worklist cleared", 4000)

    def shown_items(self) -> list:
        """The listed studies in the order the list shows them."""
        proxy, model = self.study_list.proxy, self.controller.model
        return [model.item_at(proxy.mapToSource(proxy.index(r, 0)).row()) for r in range(proxy.rowCount())]

    def export_worklist_dialog(self) -> None:
        default = self._export_default("lunglens-worklist.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export worklist", default, WORKLIST_FILTER)
        if path:
            self.export_worklist_to(Path(path), chosen)

    def export_worklist_to(self, path: Path, file_filter: str = "") -> None:
        if path.suffix.lower() not in (".csv", ".json"):
            path = path.with_suffix(".json" if "json" in file_filter.lower() else ".csv")
        try:
            n = exports.export_worklist(self.shown_items(), path, self.controller.audit,
                                        self.settings.show_identifiers, self.settings.anonymize_exports)
        except exports.ExportError as err:
            self._export_failed(str(err))
        else:
            self.settings.last_export_dir = str(path.parent)
            self.statusBar().showMessage(f"Exported {n} studies to {path}", 5000)

    def _export_default(self, name: str) -> str:
        """``name`` in the folder of the last export (the films' folder before the first one)."""
        return str(Path(self.settings.last_export_dir or self.settings.last_dir or ".") / name)

    # -- dialogs and export ------------------------------------------------------------------------
    def open_settings(self) -> None:
        from inference.providers import available_providers

        engine = self.controller.engine
        dlg = SettingsDialog(self.settings, available_providers(), engine.provider if engine else "",
                             self.controller.profile, self, worklist_path=self.controller.worklist_path,
                             audit_path=self.controller.audit_path,
                             shipped_profile=self.controller.shipped_profile,
                             profile_warning=self.controller.profile_warning)
        if dlg.exec():
            changed = dlg.apply()
            self.controller.apply_settings(changed)
            if "privacy" in changed:
                self.tags.set_show_identifiers(self.settings.show_identifiers)
            if changed & {"dicom_node", "decision", "profile"}:
                self.node_status.restart()  # the node decides as the window does
            if "profile" in changed:
                self._say_profile_in_use()

    # -- site calibration and reader verdicts ------------------------------------------------------
    def _key_on_screen(self, what: str) -> int | None:
        """The key of the study the reader sees, or None (and why, in the status bar) while the
        highlighted one is still loading: a verdict or an export given then landed on the
        highlighted study while the film, title and result on screen were still the one before."""
        key = self.study_list.current_key()
        ctx = self.controller.context
        if key and (ctx is None or ctx.key != key):
            item = self.controller.model.item(key)
            name = item.name if item is not None else "The study"
            self.statusBar().showMessage(f"{name} is not on screen yet: {what} not done. Try again once it is.", 6000)
            return None
        return key

    def give_verdict(self, verdict: str | None) -> None:
        """Store the reader's verdict on the study on screen (Shift+P, Shift+N, Shift+U; Shift+W withdraws it)."""
        key = self._key_on_screen("verdict")
        if key is None:
            return
        self._reader_acts()
        item = self.controller.model.item(key)
        record = item.record if item is not None else None
        before, before_at = (record.verdict, record.verdict_at) if record is not None else (None, None)
        if item is not None and record is not None and verdict is None and before is None:
            self.statusBar().showMessage(f"{item.name} has no verdict to withdraw", 4000)
            return
        problem = self.controller.set_verdict(key, verdict)
        if problem:
            self.statusBar().showMessage(problem, 6000)
        elif item is not None:
            self._push_undo(VerdictChange(item.path, before, before_at))
            said = f"Reader verdict on {item.name}: {verdict}" if verdict else f"Verdict on {item.name} withdrawn"
            self.statusBar().showMessage(f"{said} — Undo: Ctrl+Z", 4000)

    def open_calibration_wizard(self) -> None:
        """The wizard runs beside the window (not modal to it: reading goes on meanwhile)."""
        from .qt_calibration_wizard import CalibrationWizard

        model = self.controller.shipped_profile.model if self.controller.shipped_profile is not None else None
        if model is None:
            self.statusBar().showMessage("No model is loaded: nothing can be calibrated", 6000)
            return
        worklist = self.controller.worklist_path if self.controller.worklist is not None else None
        self.calibration_wizard = CalibrationWizard(self.settings, model, worklist, self)
        self.calibration_wizard.saved.connect(self._use_calibration)
        self.calibration_wizard.show()

    def _use_calibration(self, path: Path) -> None:
        """The wizard kept a profile: it is in use from now on, at the default point chosen there."""
        self.settings.site_profile = str(path)
        self.settings.operating_point = ""
        self.settings.sync()
        self.controller.apply_settings({"profile"})
        self.node_status.restart()
        self._say_profile_in_use()

    def _say_profile_in_use(self) -> None:
        """Which profile now decides, and how many results in the list keep another one's reading."""
        profile = self.controller.profile
        said = f"Site profile in use: {profile.name if profile else 'none'}"
        if n := self.controller.model.count_elsewhere():
            said += (f". {n} {'study keeps' if n == 1 else 'studies keep'} the reading of the profile "
                     f"{'it was' if n == 1 else 'they were'} made with: their chips name that threshold")
        self.statusBar().showMessage(said, 15000)

    def open_local_performance(self) -> None:
        from .qt_local_performance import LocalPerformanceDialog

        c = self.controller
        operating = c.operating_point()
        if c.worklist is None or c.profile is None or operating is None:
            self.statusBar().showMessage("No figures: the worklist or the model is not available", 6000)
            return
        LocalPerformanceDialog(c.worklist_path, c.profile, operating, self).exec()

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(what, keys) for every action with a key, read from the actions themselves, so the
        list can never differ from what the keys do."""
        rows = []
        for action in self.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            if not keys:
                continue
            what = action.text().replace("&", "").rstrip("…")
            # An item of a submenu says which ("Reader Verdict: Pneumonia", not "Pneumonia").
            submenus = [m for m in action.associatedObjects()
                        if isinstance(m, QMenu) and isinstance(m.parentWidget(), QMenu)]
            rows.append((f"{submenus[0].title().replace('&', '')}: {what}" if submenus else what, keys))
        return rows

    def open_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{escape(what)}</td><td style='padding-left:16px'><b>{escape(keys)}</b></td></tr>"
                       for what, keys in self.shortcut_rows())
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self)
        box.exec()

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
        if self._key_on_screen("export") is None:  # right-click → Export at once exported the study before
            return
        self._reader_acts()
        ctx = self.controller.context
        if ctx is None or ctx.study is None:
            why = (ctx.problem or ctx.item.error) if ctx is not None else ""
            why = why or "select a study first"
            self.statusBar().showMessage(f"Nothing to export: {why}", 6000)
            return
        first = next(iter(self.export_formats))
        suffix = (filter_suffixes(first) or [".png"])[0]
        # An anonymized export's suggested name must not carry the file's (often the patient's).
        stem = "lunglens-anonymized" if self.settings.anonymize_exports else f"{ctx.item.path.stem}-lunglens"
        default = self._export_default(f"{stem}{suffix}")
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
            self.settings.last_export_dir = str(path.parent)
            self.statusBar().showMessage(f"Exported {path}", 5000)
            return True
        return False

    def _export_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        QMessageBox.warning(self, "Export failed", message)

    def _export_pdf(self, ctx: ViewContext, path: Path) -> None:
        exports.export_report_pdf(ctx, path, self.controller.audit, self.settings.show_identifiers, self._on_screen(),
                                  self.settings.anonymize_exports)

    def _export_secondary_capture(self, ctx: ViewContext, path: Path) -> None:
        exports.export_secondary_capture(ctx, path, self.controller.audit, self._on_screen(),
                                         self.settings.anonymize_exports)

    def _on_screen(self) -> exports.OnScreen:
        d = self.controller.display
        return exports.OnScreen(heatmap_shown=d.overlay_visible, opacity=d.opacity)

    def _export_png(self, ctx: ViewContext, path: Path) -> None:
        exports.export_view_png(ctx, path, self.controller.audit, lambda: png_bytes(self.viewer.grab()))

    # -- closing ------------------------------------------------------------------------------------
    def _close_anyway(self, message: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Results not saved yet", message, parent=self)
        close = box.addButton("Close anyway", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton("Keep LungLens open", QMessageBox.ButtonRole.RejectRole))
        box.exec()
        return box.clickedButton() is close

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close, after a last try to save the results the worklist does not hold yet (it was
        locked): the window closed at once and a session's results were not in the list the
        next time, unsaid. The reader is asked whether to close anyway; a signal (logging out)
        is not kept waiting, and the number is logged."""
        unsaved = self.controller.save_before_closing(CLOSE_SAVE_WAIT_S)
        if unsaved:
            message = (f"{unsaved} result{'' if unsaved == 1 else 's'} of this session {'is' if unsaved == 1 else 'are'} "
                       f"not saved in the worklist, which another program keeps locked. {'It is' if unsaved == 1 else 'They are'} in "
                       "the audit log, but if LungLens closes now the list will not show "
                       f"{'it' if unsaved == 1 else 'them'} next time.")
            if self.ask_before_closing and not self._close_anyway(message):
                event.ignore()
                return
            log.warning("%s", message)
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.controller.shutdown()
        self.node_status.shutdown()
        super().closeEvent(event)


