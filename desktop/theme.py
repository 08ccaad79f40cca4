"""A calm dark theme: low-glare greys, one blue accent, result colours used sparingly.

Reading rooms are dim; a bright UI around a radiograph hurts contrast perception. Colours
that carry meaning (above / below the review threshold, not reliable, warning) are defined
once here and used by the gauge, the list chips and the warnings panel alike.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from inference.paths import resources_dir
from inference.presentation import Tone

BACKGROUND = "#1b1e23"
SURFACE = "#22262c"
BASE = "#16181c"
BORDER = "#323842"
TEXT = "#dde2e8"
TEXT_DIM = "#8d96a0"
ACCENT = "#4a86c5"
# The keyboard focus ring: lighter than the accent (hover, checked) so it is never mistaken
# for either, and on every control, so a reader working by keyboard in a dim room sees at a
# glance where the next key goes -- the study list first.
FOCUS = "#7ab8f5"

ABOVE = "#e06c5f"  # above the review threshold
BELOW = "#4faf87"  # below it
UNRELIABLE = "#9aa0a6"  # out of scope: grey, never a verdict colour
WARNING = "#e0a43a"
ERROR = "#d9534f"


TONE = {Tone.ABOVE: ABOVE, Tone.BELOW: BELOW, Tone.UNRELIABLE: UNRELIABLE}


def color(name: str) -> QColor:
    return QColor(name)


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and a small stylesheet for the panels."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: SURFACE,
        QPalette.ColorRole.ToolTipBase: SURFACE,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.Mid: BORDER,
        QPalette.ColorRole.Dark: BASE,
        QPalette.ColorRole.Light: "#3a414b",
    }
    for role, value in roles.items():
        pal.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c636c"))
    app.setPalette(pal)
    app.setStyleSheet(STYLESHEET + spin_arrows(resources_dir() / "icons"))


def spin_arrows(icons: Path) -> str:
    """The up/down buttons of spin boxes, with arrows: once the stylesheet gives a spin box a
    border, Qt draws its buttons from the stylesheet too, and without these rules they were
    empty dark squares (the wizard's target sensitivity). The arrows are PNGs (no SVG plugin
    needed in a frozen build), in quotes for a folder with spaces."""
    up, down = ((icons / name).as_posix() for name in ("spin-up.png", "spin-down.png"))
    return f"""
QSpinBox::up-button, QDoubleSpinBox::up-button {{ subcontrol-origin: border; subcontrol-position: top right;
    width: 18px; border-left: 1px solid {BORDER}; border-top-right-radius: 4px; }}
QSpinBox::down-button, QDoubleSpinBox::down-button {{ subcontrol-origin: border; subcontrol-position: bottom right;
    width: 18px; border-left: 1px solid {BORDER}; border-bottom-right-radius: 4px; }}
QSpinBox::up-button:hover, QDoubleSpinBox::up-button:hover,
QSpinBox::down-button:hover, QDoubleSpinBox::down-button:hover {{ background: {SURFACE}; }}
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {{ image: url("{up}"); width: 10px; height: 7px; }}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow {{ image: url("{down}"); width: 10px; height: 7px; }}
QSpinBox::up-arrow:disabled, QDoubleSpinBox::up-arrow:disabled,
QSpinBox::down-arrow:disabled, QDoubleSpinBox::down-arrow:disabled {{ image: none; }}
"""


STYLESHEET = f"""
QMainWindow::separator {{ background: {BORDER}; width: 1px; height: 1px; }}
QDockWidget {{ color: {TEXT_DIM}; }}
QDockWidget::title {{ background: {BACKGROUND}; padding: 4px 8px; text-transform: uppercase; }}
QToolTip {{ color: {TEXT}; background: {SURFACE}; border: 1px solid {BORDER}; padding: 4px; }}
QStatusBar {{ color: {TEXT_DIM}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ color: {TEXT_DIM}; }}
QListView, QTableView, QTreeView {{ border: 2px solid transparent; background: {BASE}; }}
QListView:focus, QTableView:focus, QTreeView:focus, QTextBrowser:focus {{ border: 2px solid {FOCUS}; }}
FitWidthScrollArea, ViewerWidget {{ border: 2px solid transparent; }}
FitWidthScrollArea:focus, ViewerWidget:focus {{ border: 2px solid {FOCUS}; }}
QHeaderView::section {{ background: {SURFACE}; color: {TEXT_DIM}; border: none; padding: 3px 6px; }}
QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: {BASE}; border: 1px solid {BORDER};
    border-radius: 4px; padding: 3px 6px; }}
QLineEdit:focus, QComboBox:focus, QSpinBox:focus, QDoubleSpinBox:focus {{ border: 2px solid {FOCUS};
    padding: 2px 5px; }}
QPushButton, QToolButton {{ background: {SURFACE}; border: 1px solid {BORDER}; border-radius: 4px;
    padding: 4px 10px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT}; }}
QToolButton:checked {{ background: #2b3c52; border-color: {ACCENT}; }}
QPushButton:focus, QToolButton:focus {{ border: 2px solid {FOCUS}; padding: 3px 9px; }}
QCheckBox:focus, QRadioButton:focus {{ color: {FOCUS}; }}
QSlider {{ border: 2px solid transparent; border-radius: 4px; }}
QSlider:focus {{ border-color: {FOCUS}; }}
QTabBar::tab {{ background: {BACKGROUND}; color: {TEXT_DIM}; border: 1px solid {BORDER}; border-radius: 4px;
    padding: 4px 12px; margin: 2px; }}
QTabBar::tab:selected {{ background: {SURFACE}; color: {TEXT}; border-color: {ACCENT}; }}
QTabBar::tab:hover {{ color: {TEXT}; }}
QTabBar::tab:focus {{ border: 2px solid {FOCUS}; padding: 3px 11px; }}
QToolBar {{ border: none; spacing: 4px; padding: 2px 6px; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 6px; margin-top: 10px; padding: 10px 4px 4px 4px; }}
QGroupBox::title {{ subcontrol-origin: margin; subcontrol-position: top left; left: 10px; top: 0px;
    padding: 0 4px; color: {TEXT_DIM}; }}
QLabel#dim {{ color: {TEXT_DIM}; }}
QLabel#headline {{ font-size: 14pt; font-weight: 600; }}
QLabel#finding {{ font-size: 11pt; }}
QLabel#population {{ color: {TEXT_DIM}; font-style: italic; }}
QLabel#alarm {{ color: {ERROR}; font-weight: 600; }}
QFrame#warnings {{ background: #3a2e16; border: 1px solid {WARNING}; border-radius: 6px; }}
QFrame#warnings QLabel {{ color: #f3d9a6; }}
QFrame#banner {{ background: #3b1f1f; border: 1px solid {ERROR}; border-radius: 6px; }}
QFrame#banner QLabel {{ color: #f4c7c3; }}
QScrollArea {{ border: none; }}
"""
