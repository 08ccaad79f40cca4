"""The one-page PDF report: image with heat-map, gauge, result, warnings, model, intended use.

Painted with QPainter on a QPdfWriter so it needs no window (works offscreen, from the
``lunglens report`` command as from the app). Every word about the result comes from
:func:`inference.presentation.present`, so the page tells the story the window tells. Patient
identifiers appear only when the user chose to show them; otherwise the page says they were
left out. Anonymized (teaching, demonstrations), the page also leaves out the file name and
the study date, and says so.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen, QTextOption

from inference import __version__
from inference.overlay import Picture, render_picture
from inference.prediction import Prediction
from inference.presentation import ResultText, Tone, present
from inference.providers import friendly_name
from inference.study import Study
from inference.userdirs import write_private

INTENDED_USE = (
    "Intended use: LungLens points a reader at frontal chest X-rays that may show pneumonia. "
    "It is decision support, not a diagnostic device: it does not diagnose, it was trained on "
    "pediatric (1-5 years) frontal chest X-rays only, and every result must be read by a "
    "qualified clinician."
)

DPI = 300
GREEN = QColor(46, 139, 87)
AMBER = QColor(214, 140, 0)
RED = QColor(200, 40, 40)
INK = QColor(20, 20, 20)
MUTED = QColor(100, 100, 100)
GREY = QColor(130, 130, 130)
TONE = {Tone.ABOVE: RED, Tone.BELOW: GREEN, Tone.UNRELIABLE: GREY}  # not reliable: never a verdict colour


def _mm(value: float) -> float:
    return value * DPI / 25.4


def write_report_pdf(
    out: str | Path,
    study: Study,
    prediction: Prediction,
    *,
    picture: Picture | None = None,
    show_identifiers: bool = False,
    anonymize: bool = False,
    intended_use: str = INTENDED_USE,
    generated_at: datetime | None = None,
) -> Path:
    """Write the report to ``out``. Needs a QGuiApplication (fonts); no window.

    ``picture`` (what the window showed) defaults to :func:`inference.overlay.render_picture`.
    ``anonymize`` wins over ``show_identifiers``: a teaching copy never names the patient.
    """
    show_identifiers = show_identifiers and not anonymize
    if picture is None:
        picture = render_picture(study, prediction)
    out = Path(out)
    when = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    buffer = QBuffer()  # painted in memory, then written 0600 at once: it names the patient
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    writer.setTitle(f"LungLens report — {study.path.name if show_identifiers else 'chest X-ray'}")
    writer.setCreator(f"LungLens {__version__}")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"{out.name}: the PDF could not be started")
    try:
        _Page(painter, study, prediction, picture, show_identifiers, anonymize, intended_use, when).paint()
    finally:
        painter.end()
    try:
        return write_private(out, bytes(buffer.data()))
    except OSError as exc:
        raise OSError(f"{out.name}: cannot write the PDF there ({exc.strerror or exc})") from exc


class _Page:
    """Lays out one A4 page in millimetres (converted to device pixels at DPI)."""

    WIDTH, LEFT, RIGHT = 210.0, 14.0, 196.0

    def __init__(self, painter, study, prediction, picture, show_identifiers, anonymize, intended_use, when) -> None:
        self.p: QPainter = painter
        self.study: Study = study
        self.pred: Prediction = prediction
        self.words: ResultText = present(prediction)
        self.picture: Picture = picture
        self.overlay = np.ascontiguousarray(picture.rgb, dtype=np.uint8)
        self.show_identifiers = show_identifiers
        self.anonymize = anonymize
        self.intended_use = intended_use
        self.when = when
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)

    # -------------------------------------------------------------- primitives
    def font(self, size: float, bold: bool = False, mono: bool = False) -> None:
        f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
        if mono:
            f.setStyleHint(QFont.StyleHint.Monospace)
        f.setPointSizeF(size)
        f.setBold(bold)
        self.p.setFont(f)

    def text(self, x: float, y: float, w: float, h: float, s: str, flags=None, color: QColor = INK) -> float:
        """Draw wrapped text in a box (mm); returns the height it used (mm). A number keeps its
        "%" on its line ("> 99" with "%" below it); a word longer than a line may break (a
        patient name of 80 letters without a space ran off the page)."""
        option = QTextOption(flags if flags is not None else (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop))
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # the text itself unchanged
        s = s.replace(" %", "\u00a0%").replace("> ", ">\u00a0").replace("< ", "<\u00a0")
        self.p.setPen(color)
        rect = QRectF(_mm(x), _mm(y), _mm(w), _mm(h))
        used = self.p.boundingRect(rect, s, option)
        self.p.drawText(rect, s, option)
        return used.height() * 25.4 / DPI

    # ------------------------------------------------------------------- page
    def paint(self) -> None:
        y = 12.0
        self.font(17, bold=True)
        y += self.text(self.LEFT, y, 182, 12, "LungLens — chest X-ray pneumonia triage")
        self.font(10, bold=True)
        y += self.text(self.LEFT, y, 182, 8, "AI-generated result: decision support, not a diagnosis", color=RED) + 3
        img_bottom = self.image(self.LEFT, y, 112, 112)
        result_bottom = self.result(131, y, 65)
        y = max(img_bottom, y + 112, result_bottom) + 5
        y = self.warnings(y)
        y = self.study_block(y)
        y = self.model_block(y)
        self.footer()

    def image(self, x: float, y: float, w: float, h: float) -> float:
        rows, cols = self.overlay.shape[:2]
        qimg = QImage(self.overlay.data, cols, rows, 3 * cols, QImage.Format.Format_RGB888).copy()
        scale = min(w / cols, h / rows)
        dw, dh = cols * scale, rows * scale
        target = QRectF(_mm(x + (w - dw) / 2), _mm(y), _mm(dw), _mm(dh))
        self.p.fillRect(QRectF(_mm(x), _mm(y), _mm(w), _mm(dh)), QColor(0, 0, 0))
        self.p.drawImage(target, qimg)
        self.font(7)
        return y + dh + 1 + self.text(x, y + dh + 1, w, 12, self.picture.caption, color=MUTED) + 1

    def result(self, x: float, y: float, w: float) -> float:
        """The result column; returns its bottom (mm)."""
        words = self.words
        y += self.gauge(x, y, w) + 2
        self.font(11.5, bold=True)
        y += self.text(x, y, w, 14, words.headline, Qt.AlignmentFlag.AlignHCenter, TONE[words.tone]) + 1.5
        self.font(9.5)
        y += self.text(x, y, w, 10, words.finding_line, Qt.AlignmentFlag.AlignHCenter) + 3
        self.font(8.5)
        for line in (f"Probability of pneumonia (calibrated): {words.probability}",
                     f"Operating point: {words.operating_point}",
                     f"Site profile: {words.profile}"):
            y += self.text(x, y, w, 40, line) + 1.5
        self.font(8.5, bold=True)
        return y + 1 + self.text(x, y + 1, w, 12, words.population)

    def gauge(self, x: float, y: float, w: float) -> float:
        """A half dial 0-100 % with coloured bands, the threshold tick and a needle."""
        p, pred = self.p, self.pred
        r = w / 2 - 4
        cx, cy = x + w / 2, y + r + 4
        arc = QRectF(_mm(cx - r), _mm(cy - r), _mm(2 * r), _mm(2 * r))
        thr = min(max(pred.threshold, 0.0), 1.0)
        unreliable = self.words.tone is Tone.UNRELIABLE
        bands = [(0.0, thr, GREY if unreliable else GREEN), (thr, 1.0, GREY if unreliable else RED)]
        for lo, hi, colour in bands:
            if hi <= lo:
                continue
            pen = QPen(colour, _mm(5))
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            # Qt angles: 1/16 degree, counter-clockwise from 3 o'clock; 0 % sits at 180 degrees.
            p.drawArc(arc, int((180 - 180 * hi) * 16), int(180 * (hi - lo) * 16))

        def at(frac: float, radius: float) -> QPointF:
            a = math.radians(180 - 180 * frac)
            return QPointF(_mm(cx + radius * math.cos(a)), _mm(cy - radius * math.sin(a)))

        p.setPen(QPen(INK, _mm(0.6)))
        for tick in range(0, 101, 10):
            p.drawLine(at(tick / 100, r - 3.2), at(tick / 100, r - 4.8 if tick % 50 else r - 6))
        p.setPen(QPen(INK, _mm(1.0)))
        p.drawLine(at(thr, r + 3.5), at(thr, r - 3.5))
        self.font(7)
        label_pt = at(thr, r + 6)
        lx, ly = label_pt.x() * 25.4 / DPI, label_pt.y() * 25.4 / DPI
        # Kept inside the result column (near 0 or 100 % it ran over the film): there, above the
        # dial's end, clear of the arc; worded as the headline words it.
        left = min(max(lx - 12, x), x + w - 24)
        top = ly - 3 if left == lx - 12 else y - 1
        self.text(left, top, 24, 5, f"threshold {self.words.threshold}", Qt.AlignmentFlag.AlignHCenter)
        # 0 and 100 under the ends of the dial, 50 inside it: clear of the needle's ends.
        for frac, label, radius, drop in ((0.0, "0", r, 3.5), (0.5, "50", r - 9, -2), (1.0, "100", r, 3.5)):
            pt = at(frac, radius)
            self.text(pt.x() * 25.4 / DPI - 5, pt.y() * 25.4 / DPI + drop, 10, 5, label, Qt.AlignmentFlag.AlignHCenter, MUTED)
        needle = QPen(INK, _mm(1.2))
        needle.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(needle)
        p.drawLine(at(0, 0), at(min(max(pred.probability, 0.0), 1.0), r - 5))
        p.setBrush(INK)
        p.drawEllipse(at(0, 0), _mm(2), _mm(2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        self.font(22, bold=True)
        self.text(cx - 20, cy + 2, 40, 12, self.words.probability, Qt.AlignmentFlag.AlignHCenter, TONE[self.words.tone])
        return (cy + 14) - y

    def heading(self, y: float, title: str) -> float:
        self.font(10, bold=True)
        used = self.text(self.LEFT, y, 182, 7, title)
        self.p.setPen(QPen(MUTED, _mm(0.2)))
        self.p.drawLine(QPointF(_mm(self.LEFT), _mm(y + used + 0.5)), QPointF(_mm(self.RIGHT), _mm(y + used + 0.5)))
        return y + used + 2

    def rows(self, y: float, rows: list[tuple[str, str]], mono_keys: tuple[str, ...] = ()) -> float:
        for key, value in rows:
            self.font(8.5, bold=True)
            self.text(self.LEFT, y, 40, 6, key)
            self.font(7.5 if key in mono_keys else 8.5, mono=key in mono_keys)
            y += max(self.text(self.LEFT + 42, y, 140, 12, value or "—"), 4.2) + 0.8
        return y + 2

    def warnings(self, y: float) -> float:
        items = self.words.warnings
        y = self.heading(y, f"Warnings ({len(items)})")
        if not items:
            self.font(8.5)
            return y + self.text(self.LEFT, y, 182, 6, "None.", color=MUTED) + 3
        self.font(9, bold=True)
        top = y
        for item in items:
            y += self.text(self.LEFT + 3, y + 1, 176, 20, f"⚠ {item}", color=AMBER.darker(130)) + 1.5
        self.p.setPen(QPen(AMBER, _mm(0.6)))
        self.p.drawRect(QRectF(_mm(self.LEFT), _mm(top - 0.5), _mm(182), _mm(y - top + 2)))
        return y + 5

    def study_block(self, y: float) -> float:
        m = self.study.metadata
        y = self.heading(y, "Study")
        rows = [
            ("File", self.study.path.name if self.show_identifiers else "(hidden with the patient identifiers)"),
            ("Format", " ".join(dict.fromkeys(v for v in (m.source_format, m.transfer_syntax) if v))),  # not "PNG PNG"
            ("Image", f"{self.study.shape[1]} × {self.study.shape[0]} pixels" + (f", {m.photometric_interpretation}" if m.photometric_interpretation else "")),
            ("Modality / view", " / ".join(v for v in (m.modality, m.body_part, m.view_position) if v)),
            ("Study date", m.study_date),
        ]
        if self.anonymize:
            rows = [row for row in rows if row[0] not in ("File", "Study date")]
            rows += [
                ("Sex / age", " / ".join(v for v in (m.patient_sex, m.patient_age) if v)),
                ("Patient", "Anonymized for teaching or demonstration: no name, ID, birth date, accession "
                            "number, institution, study date or file name."),
            ]
        elif self.show_identifiers:
            rows += [
                ("Patient name", m.patient_name),
                ("Patient ID", m.patient_id),
                ("Sex / age", " / ".join(v for v in (m.patient_sex, m.patient_age) if v)),
                ("Accession", m.accession_number),
                ("Institution", m.institution),
            ]
        else:  # sex and age identify no one, and the validated population is an age
            rows += [
                ("Sex / age", " / ".join(v for v in (m.patient_sex, m.patient_age) if v)),
                ("Patient", "Identifiers not shown (the user did not choose to show them)."),
            ]
        return self.rows(y, rows)

    def model_block(self, y: float) -> float:
        pred = self.pred
        y = self.heading(y, "Model and run")
        timing = pred.timings_ms
        run_ms = sum(timing.get(k, 0.0) for k in ("preprocess", "inference", "attribution"))
        rows = [
            ("Model", f"{pred.model.name} {pred.model.version}"),
            ("Model SHA-256", pred.model.sha256),
            ("Provider", friendly_name(pred.provider) + (f", {run_ms:.0f} ms" if run_ms else "")),
            ("Generated", f"{self.when:%Y-%m-%d %H:%M:%S} UTC by LungLens {__version__}"),
        ]
        return self.rows(y, rows, mono_keys=("Model SHA-256",))

    def footer(self) -> None:
        self.p.setPen(QPen(MUTED, _mm(0.2)))
        self.p.drawLine(QPointF(_mm(self.LEFT), _mm(270)), QPointF(_mm(self.RIGHT), _mm(270)))
        self.font(8)
        self.text(self.LEFT, 271.5, 182, 20, self.intended_use, color=INK)
