"""The result: gauge, plain sentence, operating point, model and provenance, warnings.

Warnings sit in an amber box directly under the sentence -- never in a tooltip, a log or
a collapsed section -- because a warning that can be missed is a warning that will be.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from inference.prediction import Prediction

from .. import theme
from ..models.study_item import Status, StudyItem, result_sentence
from .qt_gauge import GaugeWidget


def _provider_name(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider") or provider


def collect_warnings(item: StudyItem) -> list[str]:
    """Every warning about this study, each once, scope reasons first."""
    out: list[str] = []
    pred = item.prediction
    sources = [*(pred.scope_reasons if pred and not pred.in_scope else []),
               *(pred.warnings if pred else item.load_warnings)]
    for w in sources:
        if w and w not in out:
            out.append(w)
    return out


class ResultPanel(QWidget):
    """Shows one study's result (or why there is none yet)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gauge = GaugeWidget()
        self.sentence = QLabel()
        self.sentence.setObjectName("sentence")
        self.sentence.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sentence.setWordWrap(True)

        self.warnings_frame = QFrame()
        self.warnings_frame.setObjectName("warnings")
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        wl = QVBoxLayout(self.warnings_frame)
        wl.setContentsMargins(10, 8, 10, 8)
        wl.addWidget(self.warnings_label)

        self.current_model_sha256 = ""  # results of any other model (restored ones) are marked
        self._detail_values: dict[str, QLabel] = {}
        details = QGridLayout()
        details.setHorizontalSpacing(12)
        details.setVerticalSpacing(3)
        for row, (key, title) in enumerate(
            (("op", "Operating point"), ("sens", "Sensitivity"), ("spec", "Specificity"),
             ("model", "Model"), ("provider", "Ran on"), ("time", "Inference time"), ("when", "Analysed"))
        ):
            t = QLabel(title)
            t.setObjectName("dim")
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
        lay.addWidget(self.sentence)
        lay.addWidget(self.warnings_frame)
        lay.addLayout(details)
        lay.addWidget(self.disclaimer)
        self.show_item(None)

    # -- state -> view -----------------------------------------------------------------------
    def show_item(self, item: StudyItem | None) -> None:
        if item is None:
            self.gauge.clear("Open a study")
            self._set_sentence("", theme.TEXT_DIM)
            self._set_warnings([])
            self._set_details(None)
            return
        pred = item.prediction
        if item.status is Status.ERROR:
            self.gauge.clear("Could not be analysed")
            self._set_sentence(item.error, theme.ERROR, small=True)
        elif pred is None:
            waiting = {Status.QUEUED: "Queued", Status.LOADING: "Loading…",
                       Status.RUNNING: "Analysing…", Status.CANCELLED: "Cancelled"}
            self.gauge.clear(waiting.get(item.status, ""))
            self._set_sentence("", theme.TEXT_DIM)
        else:
            self.gauge.set_result(pred.probability, pred.threshold, pred.in_scope)
            colour = (theme.UNRELIABLE if not pred.in_scope
                      else theme.LIKELY if pred.is_positive else theme.UNLIKELY)
            self._set_sentence(result_sentence(pred.probability, pred.is_positive, pred.in_scope), colour)
        self._set_warnings(collect_warnings(item))
        self._set_details(pred)
        self._set_provenance(item)

    def sentence_text(self) -> str:
        return self.sentence.text()

    def warning_texts(self) -> list[str]:
        return list(self._warnings)

    def detail_text(self, key: str) -> str:
        return self._detail_values[key].text()

    def _set_sentence(self, text: str, colour: str, small: bool = False) -> None:
        self.sentence.setText(text)
        size = "font-size: 10pt; font-weight: normal;" if small else ""
        self.sentence.setStyleSheet(f"color: {colour}; {size}")
        self.sentence.setVisible(bool(text))

    def _set_warnings(self, warnings: list[str]) -> None:
        self._warnings = list(warnings)
        if warnings:
            items = "".join(f"<li style='margin-bottom:3px'>{_escape(w)}</li>" for w in warnings)
            title = "Warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
            self.warnings_label.setText(
                f"<b>⚠ {title}</b><ul style='margin:4px 0 0 -20px; padding:0'>{items}</ul>")
        self.warnings_frame.setVisible(bool(warnings))

    def _set_details(self, pred: Prediction | None) -> None:
        v = self._detail_values
        if pred is None:
            for label in v.values():
                label.setText("—")
            return
        op = pred.operating_point.replace("_", " ")
        v["op"].setText(f"{op} · threshold {pred.threshold * 100:.1f} %")
        v["sens"].setText("—" if pred.sensitivity is None else f"{pred.sensitivity * 100:.1f} % on validation")
        v["spec"].setText("—" if pred.specificity is None else f"{pred.specificity * 100:.1f} % on validation")
        other = bool(self.current_model_sha256) and pred.model.sha256 != self.current_model_sha256
        v["model"].setText(f"{pred.model.name} {pred.model.version}" + (" · not the model loaded now" if other else ""))
        v["model"].setToolTip(f"SHA-256 {pred.model.sha256}" + (
            "\nA stored result of an earlier model; open the study again to analyse it with the current one."
            if other else ""))
        v["provider"].setText(_provider_name(pred.provider))
        t = pred.timings_ms
        run = sum(t.get(k, 0.0) for k in ("preprocess", "inference", "gradcam"))
        v["time"].setText(f"{run:.0f} ms" if run else "—")
        v["time"].setToolTip(", ".join(f"{k} {ms:.1f} ms" for k, ms in t.items()))


    def _set_provenance(self, item: StudyItem) -> None:
        """When the result was computed, and whether it was taken from the worklist."""
        label = self._detail_values["when"]
        record = item.record
        if record is None or item.prediction is None:
            label.setText("—")
            label.setToolTip("")
            return
        when = record.analysed_at.replace("T", " ")[:16] + " UTC"
        label.setText(f"{when} · from the worklist" if item.cached else when)
        label.setToolTip("Stored result: this model had already analysed these exact pixels, "
                         "so it was not run again." if item.cached else "")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
