"""Help -> Audit log: every analysis and export, newest first, as the log file has them.

Read-only. Damaged lines are skipped and counted, never fatal; the file's path is shown so
it can be handed to an auditor, with the state of its chain (``lunglens audit verify``):
intact, unchained up to a line written before the chain existed, or broken at the first
line that was changed, removed or inserted. Studies appear by pixel hash only: the log
holds no patient identifiers, so neither does this dialog.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inference.audit import AuditLog, ChainReport
from inference.decision import point_name, probability_text, threshold_text
from inference.presentation import headline

from ..platform_quirks import fit_top_level

COLUMNS = ("Time (UTC)", "Event", "User", "Details", "Study (pixel SHA-256)", "Model (SHA-256)")


def describe(entry: dict[str, Any]) -> str:
    """One line saying what happened, in the words the window used for that result, e.g.
    "Above the review threshold (35 %) · 87 % · cached"."""
    if entry.get("event") == "analysis":
        try:
            p, t = float(entry["probability"]), float(entry["threshold"])
        except (KeyError, TypeError, ValueError):
            text = str(entry.get("label", ""))
        else:
            reasons = entry.get("scope_reasons") or []
            in_scope = entry.get("in_scope") is not False
            text = f"{headline(p, t, in_scope, reasons)} · {probability_text(p, t if in_scope else None)}"
        if entry.get("cached"):
            text += " · cached"
        if entry.get("warnings"):
            n = len(entry["warnings"])
            text += f" · {n} warning{'s' if n != 1 else ''}"
        return text
    if entry.get("event") == "export":
        n = len(entry.get("pixel_sha256") or [])
        ids = (" with patient identifiers" if entry.get("with_identifiers")
               else " anonymized" if entry.get("anonymized") else "")
        studies = f"{n} studies" if n != 1 else "1 study"
        return f"{entry.get('what', '')} as {entry.get('format', '')} → {entry.get('destination', '')} ({studies}){ids}"
    if entry.get("event") == "verdict":
        return f"reader's verdict: {entry['verdict']}" if entry.get("verdict") else "reader's verdict withdrawn"
    if entry.get("event") == "decision_rule":
        try:
            threshold = threshold_text(float(entry["threshold"]))
        except (KeyError, TypeError, ValueError):
            threshold = "?"
        return (f"decides with profile {entry.get('profile_name', '')} ({str(entry.get('profile_sha256') or '')[:12]}), "
                f"{point_name(str(entry.get('operating_point', '')))}, threshold {threshold}")
    return ""


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_short(v) for v in value[:3]) + (" …" if len(value) > 3 else "")
    return str(value or "")[:16]



def _n(count: int, one: str, many: str) -> str:
    """ "1 entry", "2 entries": the dialog read "1 entries"."""
    return f"{count} {one if count == 1 else many}"

class AuditDialog(QDialog):
    def __init__(self, audit: AuditLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit log")
        self.resize(980, 560)
        self.audit = audit
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.horizontalHeaderItem(3).setToolTip(
            "\"cached\": the result came from the worklist -- this model had already analysed "
            "these exact pixels, so it was not run again")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel()
        self.chain = QLabel()
        self.chain.setWordWrap(True)
        self.chain.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label = QLabel(f"Log file: {audit.path}")
        self.path_label.setObjectName("dim")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        refresh = buttons.addButton("Refresh", QDialogButtonBox.ButtonRole.ActionRole)
        refresh.clicked.connect(self.reload)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.chain)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.path_label)
        lay.addWidget(buttons)
        self.entries: list[dict[str, Any]] = []
        self.damaged = 0
        self.chain_report: ChainReport | None = None
        self.reload()
        fit_top_level(self)

    def reload(self) -> None:
        """Read the log again (it is append-only: other LungLens windows may have added to it)."""
        try:
            found = self.audit.read()
            self.chain_report = self.audit.verify()
            entries, damaged, error = found.entries, found.damaged, ""
        except OSError as err:
            entries, damaged, error = [], 0, f"The audit log cannot be read: {err.strerror or err}"
            self.chain_report = None
        self._show_chain()
        self.entries = list(reversed(entries))  # newest first
        self.damaged = damaged
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            values = (str(entry.get("time", "")).replace("T", " ").removesuffix("+00:00"),
                      str(entry.get("event", "")), str(entry.get("user", "")), describe(entry),
                      _short(entry.get("pixel_sha256")), _short(entry.get("model_sha256")))
            for col, value in enumerate(values):
                cell = QTableWidgetItem(value)
                if col == 3:
                    cell.setToolTip(value)
                if col == 4 and entry.get("pixel_sha256"):
                    cell.setToolTip("\n".join(entry["pixel_sha256"]) if isinstance(entry["pixel_sha256"], list)
                                    else str(entry["pixel_sha256"]))
                self.table.setItem(row, col, cell)
        analyses = sum(e.get("event") == "analysis" for e in entries)
        exports = sum(e.get("event") == "export" for e in entries)
        parts = [error] if error else [f"{_n(len(entries), 'entry', 'entries')}: {_n(analyses, 'analysis', 'analyses')}, "
                                       f"{_n(exports, 'export', 'exports')}"]
        if damaged:
            parts.append(f"{damaged} damaged line{'s' if damaged != 1 else ''} skipped")
        self.summary.setText(" · ".join(parts))

    def _show_chain(self) -> None:
        """The chain's state, in the warning colour when a line was changed, removed or inserted."""
        report = self.chain_report
        if report is None:
            self.chain.setText("")
            return
        text = f"Chain: {report.summary()}"
        if report.head:
            text += f" SHA-256 of the last line: {report.head}"
        self.chain.setText(text)
        self.chain.setObjectName("" if report.ok else "alarm")
        self.chain.style().unpolish(self.chain)
        self.chain.style().polish(self.chain)

    def cell_text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""
