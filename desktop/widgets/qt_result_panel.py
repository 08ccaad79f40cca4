"""The result: gauge, headline, finding, warnings, the population, the operating point and
its figures, the profile, model and provenance.

Every word comes from :func:`inference.presentation.present`, the same story the PDF, the
Secondary Capture and the CLI tell. Warnings sit in an amber box directly under the
headline -- never in a tooltip, a log or a collapsed section -- because a warning that can
be missed is a warning that will be. The population the model is validated for is stated
under every result: "< 1 %" on a film of an adult with tuberculosis means nothing, and the
panel must say so where the number is.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from inference import presentation
from inference.decision import OperatingPoint
from inference.prediction import Prediction
from inference.presentation import ResultText
from inference.providers import friendly_name

from .. import theme
from ..models.study_item import Status, StudyItem
from .qt_gauge import GaugeWidget

_WAITING = {Status.QUEUED: "Queued", Status.LOADING: "Loading…", Status.RUNNING: "Analysing…",
            Status.CANCELLED: "Cancelled"}
_DETAILS = (("reader", "Reader"), ("op", "Operating point"), ("figures", "Measured"), ("source", "On"),
            ("profile", "Site profile"), ("model", "Model"), ("provider", "Ran on"), ("time", "Inference time"), ("when", "Analysed"))


class ResultPanel(QWidget):
    """Shows one study's result (or why there is none yet)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gauge = GaugeWidget()
        self.headline = self._label("headline", Qt.AlignmentFlag.AlignCenter)
        self.finding = self._label("finding", Qt.AlignmentFlag.AlignCenter)

        self.warnings_frame = QFrame()
        self.warnings_frame.setObjectName("warnings")
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        wl = QVBoxLayout(self.warnings_frame)
        wl.setContentsMargins(10, 8, 10, 8)
        wl.addWidget(self.warnings_label)

        self.population = self._label("population", Qt.AlignmentFlag.AlignCenter)

        self.operating: OperatingPoint | None = None  # the active one: the empty gauge marks it
        self.current_model_sha256 = ""  # results of any other model (restored ones) are marked
        self.current_profile_sha256 = ""  # likewise for another site profile
        self._warnings: list[str] = []
        self._detail_values: dict[str, QLabel] = {}
        details = QGridLayout()
        details.setHorizontalSpacing(12)
        details.setVerticalSpacing(3)
        for row, (key, title) in enumerate(_DETAILS):
            t = QLabel(title)
            t.setObjectName("dim")
            t.setAlignment(Qt.AlignmentFlag.AlignTop)
            v = QLabel("—")
            v.setWordWrap(True)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            details.addWidget(t, row, 0)
            details.addWidget(v, row, 1)
            self._detail_values[key] = v
        details.setColumnStretch(1, 1)

        self.disclaimer = QLabel("Decision support only — not a diagnostic device.")
        self.disclaimer.setObjectName("dim")
        self.disclaimer.setAlignment(Qt.AlignmentFlag.AlignCenter)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(8)
        lay.addWidget(self.gauge)
        lay.addWidget(self.headline)
        lay.addWidget(self.finding)
        lay.addWidget(self.warnings_frame)
        lay.addWidget(self.population)
        lay.addLayout(details)
        lay.addWidget(self.disclaimer)
        self.show_item(None)

    @staticmethod
    def _label(name: str, align: Qt.AlignmentFlag) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setAlignment(align)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # -- state -> view -----------------------------------------------------------------------
    def set_operating_point(self, operating: OperatingPoint | None) -> None:
        """The operating point in use: what an empty gauge marks."""
        self.operating = operating
        if self.gauge.value is None:
            self.gauge.clear(self.gauge.pending_text, self._active_threshold())

    def _active_threshold(self) -> float | None:
        return None if self.operating is None else self.operating.threshold

    def show_item(self, item: StudyItem | None) -> None:
        pred = item.prediction if item is not None else None
        text = presentation.present(pred) if pred is not None else None
        if item is None:
            self.gauge.clear("Open a study", self._active_threshold())
            self._set_headline("", theme.TEXT_DIM)
        elif item.status is Status.ERROR:
            self.gauge.clear("Could not be analysed", self._active_threshold())
            self._set_headline(item.error, theme.ERROR, small=True)
        elif text is None:
            self.gauge.clear(_WAITING.get(item.status, ""), self._active_threshold())
            self._set_headline("", theme.TEXT_DIM)
        else:
            self.gauge.set_result(pred.probability, pred.threshold, pred.in_scope)
            self._set_headline(text.headline, theme.TONE[text.tone])
        self._set_text(self.finding, text.finding_line if text else "")
        self._set_text(self.population, text.population if text else "")
        self._set_warnings(list(text.warnings) if text else list(item.load_warnings) if item else [])
        self._set_details(pred, text)
        self._set_provenance(item)

    def headline_text(self) -> str:
        return _read(self.headline)

    def finding_text(self) -> str:
        return _read(self.finding)

    def warning_texts(self) -> list[str]:
        return list(self._warnings)

    def detail_text(self, key: str) -> str:
        return _read(self._detail_values[key])

    def _set_headline(self, text: str, colour: str, small: bool = False) -> None:
        size = "font-size: 10pt; font-weight: normal;" if small else ""
        self.headline.setStyleSheet(f"color: {colour}; {size}")
        self._set_text(self.headline, text)

    @staticmethod
    def _set_text(label: QLabel, text: str) -> None:
        label.setText(_unbroken(text))
        label.setVisible(bool(text))

    def _set_warnings(self, warnings: list[str]) -> None:
        self._warnings = list(warnings)
        if warnings:
            items = "".join(f"<li style='margin-bottom:3px'>{escape(w, quote=False)}</li>" for w in warnings)
            title = "Warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
            self.warnings_label.setText(
                f"<b>⚠ {title}</b><ul style='margin:4px 0 0 -20px; padding:0'>{items}</ul>")
        self.warnings_frame.setVisible(bool(warnings))

    def _set_details(self, pred: Prediction | None, text: ResultText | None) -> None:
        v = self._detail_values
        if pred is None or text is None:
            for label in v.values():
                label.setText("—")
                label.setToolTip("")
            return
        v["op"].setText(_unbroken(text.point))
        v["figures"].setText(_unbroken(text.figures))
        v["source"].setText(text.source or "—")
        other_profile = (bool(self.current_profile_sha256) and pred.profile is not None
                         and pred.profile.sha256 != self.current_profile_sha256)
        v["profile"].setText(text.profile + (" · not the profile in use now" if other_profile else ""))
        v["profile"].setToolTip("A stored result calibrated by another site profile: it keeps that profile's "
                                "threshold. Open the study again to read it with the profile in use."
                                if other_profile else "")
        other = bool(self.current_model_sha256) and pred.model.sha256 != self.current_model_sha256
        v["model"].setText(f"{pred.model.name} {pred.model.version}" + (" · not the model loaded now" if other else ""))
        v["model"].setToolTip(f"SHA-256 {pred.model.sha256}" + (
            "\nA stored result of an earlier model; open the study again to analyse it with the current one."
            if other else ""))
        v["provider"].setText(friendly_name(pred.provider))
        t = pred.timings_ms
        run = sum(t.get(k, 0.0) for k in ("preprocess", "inference", "attribution"))
        v["time"].setText(f"{run:.0f} ms" if run else "—")
        v["time"].setToolTip(", ".join(f"{k} {ms:.1f} ms" for k, ms in t.items()))

    def _set_provenance(self, item: StudyItem | None) -> None:
        """When the result was computed, whether it was taken from the worklist, and the
        reader's verdict on it ("pneumonia, 03:12")."""
        label = self._detail_values["when"]
        record = item.record if item is not None else None
        verdict = presentation.reader_text(record.verdict, record.verdict_at) if record is not None else ""
        reader = self._detail_values["reader"]
        reader.setText(verdict or "—")
        reader.setToolTip(f"Given {(record.verdict_at or '').replace('T', ' ')[:16]} UTC" if verdict else
                          "Mark the study: Shift+P pneumonia, Shift+N no pneumonia, Shift+U unsure")
        if record is None or item.prediction is None:
            label.setText("—")
            label.setToolTip("")
            return
        when = presentation.local_time_text(record.analysed_at)
        label.setText(f"{when} · from the worklist" if item.cached else when)
        utc = f"{record.analysed_at.replace('T', ' ')[:16]} UTC"
        label.setToolTip(f"{utc}. Stored result: this model had already analysed these exact pixels, "
                         "so it was not run again." if item.cached else utc)


def _unbroken(text: str) -> str:
    """Never wrap a line between a number and its "%" ("95\n% CI" reads as two things)."""
    return text.replace(" %", "\u00a0%")


def _read(label: QLabel) -> str:
    """A label's text as the presentation worded it (for tests and accessibility)."""
    return label.text().replace("\u00a0", " ")
