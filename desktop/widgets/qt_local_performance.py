"""Help → Local performance…: the profile in use against the reader's verdicts, with n and CIs.

The figures come from :func:`inference.local_performance.local_performance`, computed in the
background (it reads the worklist and bootstraps); this dialog only words them. With too few
verdicts it says so instead of showing numbers, because a percentage over a handful of
studies looks more certain than it is.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from inference.decision import OperatingPoint
from inference.local_performance import LocalPerformance, local_performance
from inference.presentation import point_text, profile_text
from inference.profile import SiteProfile
from inference.worklist import Worklist

from .. import theme
from ..background import BackgroundTask
from ..platform_quirks import fit_top_level


def read_and_measure(worklist_path: Path, profile: SiteProfile, operating: OperatingPoint) -> LocalPerformance:
    """The background job: the worklist's verdicts, measured (its own connection, read-only: another
    thread, and a program that holds the write lock does not stop a read)."""
    with Worklist(worklist_path, read_only=True) as worklist:
        records = worklist.with_verdicts()
    return local_performance(records, profile, operating)


def performance_html(result: LocalPerformance) -> str:
    """The figures in words: what was measured, on how many studies, or why nothing was."""
    dim = theme.TEXT_DIM
    left = ", ".join(f"{n} {reason}" for reason, n in result.skipped.items())
    lines = [
        f"<p><span style='color:{dim}'>Site profile</span> {escape(profile_text(result.profile))}<br>"
        f"<span style='color:{dim}'>Operating point</span> {escape(point_text(result.operating))}<br>"
        f"<span style='color:{dim}'>Verdicts</span> {result.n} studies: {result.n_pneumonia} “pneumonia”, "
        f"{result.n_no_pneumonia} “no pneumonia”"
        + (f"<br><span style='color:{dim}'>Left out: {escape(left)}</span>" if left else "") + "</p>",
    ]
    if result.caveat:
        lines.append(f"<p style='color:{theme.WARNING}'>{escape(result.caveat)}</p>")
    if result.too_few:
        lines.append(f"<p style='font-size:12pt'>{escape(result.too_few)}</p>")
        return "".join(lines)
    unit = "patients" if result.grouping == "patient" else "studies"
    rows = [("AUC", result.auc.plain() if result.auc else "—", ""),
            ("Sensitivity", result.sensitivity.percent() if result.sensitivity else "—",
             f"{result.flagged_pneumonia} of the {result.n_pneumonia} “pneumonia” studies were at or above the "
             f"threshold"),
            ("Specificity", result.specificity.percent() if result.specificity else "—",
             f"{result.cleared_no_pneumonia} of the {result.n_no_pneumonia} “no pneumonia” studies were below it")]
    cells = "".join(f"<tr><td style='padding:0 16px 10px 0'>{k}</td><td style='padding:0 16px 10px 0;font-size:13pt'>"
                    f"<b>{v}</b></td><td style='color:{dim};padding-bottom:10px'>{escape(w)}</td></tr>"
                    for k, v, w in rows)
    lines.append(f"<table cellspacing='0'>{cells}</table>".replace(" %", "&nbsp;%"))
    width = ": the width follows the patients, not the studies" if unit == "patients" else ""
    lines.append(f"<p style='color:{dim}'>95 % confidence intervals by bootstrap over {unit} "
                 f"({result.groups_pneumonia} with “pneumonia”, {result.groups_no_pneumonia} with “no pneumonia”; "
                 f"1000 resamples){width}. The reference is the reader's verdict, not a confirmed diagnosis.</p>")
    return "".join(lines)


class LocalPerformanceDialog(QDialog):
    """Measures in the background on opening; ``result`` holds the figures once shown."""

    def __init__(self, worklist_path: Path, profile: SiteProfile, operating: OperatingPoint,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Local performance")
        self.result: LocalPerformance | None = None
        intro = QLabel("How the site profile in use does on this site's studies, measured against the verdicts "
                       "the reader gave in this app (Shift+P pneumonia, Shift+N no pneumonia; Shift+U unsure is "
                       "left out).")
        intro.setWordWrap(True)
        intro.setObjectName("dim")
        self.body = QLabel("Measuring…")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.body, 1)
        lay.addWidget(buttons)
        fit_top_level(self)
        self.resize(640, 420)
        self.task = BackgroundTask(lambda _control: read_and_measure(worklist_path, profile, operating),
                                   name="lunglens-local-performance")
        self.task.succeeded.connect(self._show)
        self.task.failed.connect(lambda reason: self.body.setText(
            f"<p style='color:{theme.WARNING}'>The verdicts could not be read: {escape(reason)}</p>"))
        self.task.start()

    def _show(self, result: LocalPerformance) -> None:
        self.result = result
        self.body.setText(performance_html(result))

    def done(self, code: int) -> None:
        self.task.cancel()  # nothing to stop mid-way, but a late result must not be shown
        super().done(code)
