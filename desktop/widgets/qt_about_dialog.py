"""About / Model: what the model is for, what it is not, where its data came from, what it
measured on which films (the site profile in use), versions."""

from __future__ import annotations

import platform
from html import escape
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QSize, Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from inference import __version__ as app_version
from inference.manifest import ModelManifest
from inference.presentation import POPULATION, SAME_FILMS, figures_text, point_text, profile_text
from inference.profile import SiteProfile

from ..platform_quirks import fit_top_level
from .qt_fit_scroll import scrolling, within_screen
from .qt_reliability_plot import ReliabilityPlot

INTENDED_USE = (
    "LungLens flags frontal chest radiographs that may show pneumonia so they can be read "
    "first. It is <b>decision support, not a diagnostic device</b>: every study still needs "
    "a qualified reader, and a low probability does not rule pneumonia out."
)
DATA_CREDIT = (
    "Trained on chest X-rays of children aged 1–5 from Kermany, Zhang, Goldbaum, "
    "<i>Labeled Optical Coherence Tomography (OCT) and Chest X-Ray Images for Classification</i>, "
    "Mendeley Data v2 (2018), doi:10.17632/rscbjbr9sj.2; Kermany et al., Cell 172(5):1122–1131 "
    "(2018). Licence CC BY 4.0."
)


def figures_html(profile: SiteProfile | None) -> str:
    """The profile's figures with their 95 % CIs, and the films they were measured on (said once)."""
    if profile is None:
        return "<p>No site profile is loaded: no figures can be shown.</p>"
    rows = [f"<li>{escape(point_text(op))}: {escape(figures_text(op))}</li>"
            for op in profile.operating_points.values()]
    if "auc" in profile.metrics:  # the calibration error is the diagram's title
        rows.append(f"<li>AUC {profile.metrics['auc'].plain()}, 95 % CI</li>")
    return f"<p>Measured on {escape(profile.source)}, {SAME_FILMS}:</p><ul>{''.join(rows)}</ul>"


def versions(manifest: ModelManifest | None, profile: SiteProfile | None) -> dict[str, str]:
    """Every version a support request needs."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover -- a broken installation, reported as such
        ort_version = "not installed"
    return {
        "LungLens": app_version,
        "Model": f"{manifest.name} {manifest.version}" if manifest else "not loaded",
        "Model SHA-256": manifest.sha256 if manifest else "—",
        "Site profile": profile_text(profile.info) if profile else "not loaded",
        "ONNX Runtime": ort_version,
        "Qt": qVersion(),
        "PySide6": pyside_version,
        "Python": platform.python_version(),
    }


class AboutDialog(QDialog):
    def __init__(self, manifest: ModelManifest | None, profile: SiteProfile | None, model_card: Path | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LungLens and its model")
        head = QLabel(f"<h2>LungLens</h2><p>{INTENDED_USE} <b>{POPULATION}.</b></p>"
                      f"<p style='color:#8d96a0'>{DATA_CREDIT}</p>")
        head.setWordWrap(True)
        rows = "".join(f"<tr><td style='color:#8d96a0;padding-right:12px'>{k}</td><td>{v}</td></tr>"
                       for k, v in versions(manifest, profile).items())
        table = QLabel(f"<table>{rows}</table>")
        table.setWordWrap(True)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)  # offline: never follow links out
        if model_card is not None and model_card.is_file():
            self.card.setMarkdown(model_card.read_text(encoding="utf-8"))
        else:
            self.card.setPlainText(f"The model card is missing ({model_card}).")
        # The profile in use: its figures, and is "80 %" right 80 % of the time? Not recomputed.
        self.figures = QLabel(figures_html(profile))
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reliability = ReliabilityPlot()
        self.reliability.set_profile(profile)
        calibration = QWidget()
        cl = QVBoxLayout(calibration)
        note = QLabel("Each bar: those films whose calibrated probability fell in that range, and the fraction "
                      "of them that really had pneumonia. A well-calibrated model follows the diagonal.")
        note.setObjectName("dim")
        note.setWordWrap(True)
        cl.addWidget(self.figures)
        cl.addWidget(note)
        cl.addWidget(self.reliability, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(scrolling(calibration), "Site profile")
        self.tabs.addTab(self.card, "Model card")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(table)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(buttons)
        fit_top_level(self)
        self.resize(within_screen(self, QSize(720, 780)))
