"""CSV and JSON export of results, one row per study -- shared by the app and the CLI.

One column list for both so a spreadsheet made from the app and one made by
``lunglens classify --csv`` line up. Patient identifiers are left out unless asked for.
The label is the decision rule's (:mod:`inference.decision`) at the row's threshold; the
profile columns say which site calibration made the probability, and the logit lets it be
re-read under another one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .decision import Estimate, tidy_number
from .presentation import source_text, tone
from .userdirs import write_private
from .worklist import WorklistRecord

COLUMNS: tuple[str, ...] = (
    "file",
    "path",
    "status",  # "done" or "error"
    "error",
    "probability",
    "label",  # PNEUMONIA at or above the threshold, else NORMAL
    "result",  # above, below, or unreliable: out of scope, where the label does not apply
    "threshold",
    "operating_point",
    "sensitivity",
    "specificity",
    "sensitivity_ci95",  # [low, high]; "low; high" in the CSV
    "specificity_ci95",
    "figures_source",  # the films the operating point's figures were measured on
    "in_scope",
    "scope_reasons",
    "warnings",
    "modality",
    "view_position",
    "study_date",
    "patient_sex",
    "patient_age",
    "model_name",
    "model_version",
    "model_sha256",
    "profile_name",
    "profile_sha256",
    "logit",
    "provider",
    "pixel_sha256",
    "analysed_at",
    "verdict",  # the reader's: pneumonia, no pneumonia, unsure
    "verdict_at",
)
# Only with include_identifiers=True (the user chose to show them).
IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "patient_name",
    "patient_id",
    "accession_number",
    "study_instance_uid",
)


def columns(include_identifiers: bool = False) -> tuple[str, ...]:
    """The export's columns, in order."""
    return COLUMNS + IDENTIFIER_COLUMNS if include_identifiers else COLUMNS


def record_row(record: WorklistRecord, include_identifiers: bool = False) -> dict[str, Any]:
    """One finished study as an export row (JSON-ready: lists stay lists, None stays None)."""
    meta = record.metadata
    row: dict[str, Any] = {key: None for key in columns(include_identifiers)}
    row.update(
        file=Path(record.study_path).name,
        path=record.study_path,
        status="done",
        error="",
        probability=tidy_number(record.probability),
        label=record.label,
        result=tone(record.probability, record.threshold, record.in_scope).value,
        threshold=record.threshold,
        operating_point=record.operating_point,
        sensitivity=record.sensitivity,
        specificity=record.specificity,
        sensitivity_ci95=_interval(record.operating.sensitivity),
        specificity_ci95=_interval(record.operating.specificity),
        figures_source=source_text(record.operating, record.profile.source if record.profile else ""),
        in_scope=record.in_scope,
        scope_reasons=list(record.scope_reasons),
        warnings=list(record.warnings),
        modality=meta.get("modality", ""),
        view_position=meta.get("view_position", ""),
        study_date=meta.get("study_date", ""),
        patient_sex=meta.get("patient_sex", ""),
        patient_age=meta.get("patient_age", ""),
        model_name=record.model_name,
        model_version=record.model_version,
        model_sha256=record.model_sha256,
        profile_name=record.profile.name if record.profile else None,
        profile_sha256=record.profile.sha256 if record.profile else None,
        logit=record.logit,
        provider=record.provider,
        pixel_sha256=record.pixel_sha256,
        analysed_at=record.analysed_at,
        verdict=record.verdict,
        verdict_at=record.verdict_at,
    )
    if include_identifiers:
        for key in IDENTIFIER_COLUMNS:
            row[key] = meta.get(key, "")
    return row


def anonymized(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` for teaching or a demonstration: no identifier columns, no file name or folder
    (names of files often carry the patient's), no study date. A result is named by the start
    of its pixel hash instead -- the name the audit log knows it by -- and a failure's reason,
    which names its file, is left out."""
    out = {key: row.get(key) for key in COLUMNS}
    out.update(file=(row.get("pixel_sha256") or "")[:12], path="", study_date="")
    if row.get("status") == "error":
        out["error"] = "could not be analysed"
    return out


def error_row(path: str | Path, reason: str, include_identifiers: bool = False) -> dict[str, Any]:
    """A study that could not be analysed: the row says which file and why."""
    row: dict[str, Any] = {key: None for key in columns(include_identifiers)}
    row.update(file=Path(path).name, path=str(path), status="error", error=reason, scope_reasons=[], warnings=[])
    return row


def _interval(estimate: Estimate | None) -> list[float] | None:
    return None if estimate is None else [tidy_number(estimate.lo), tidy_number(estimate.hi)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(tidy_number(value))
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    # A file name starting with "=" must not become a spreadsheet formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(rows: Iterable[dict[str, Any]], dest: str | Path | IO[str], include_identifiers: bool = False) -> int:
    """Write rows as CSV (UTF-8 with BOM for Excel when ``dest`` is a path). Returns the row count."""
    if not isinstance(dest, (str, Path)):
        return _write_csv_stream(rows, dest, include_identifiers)
    buffer = io.StringIO()
    count = _write_csv_stream(rows, buffer, include_identifiers)
    write_private(Path(dest), buffer.getvalue().encode("utf-8-sig"))
    return count


class CsvStream:
    """Writes export rows to an open text stream as they come (the CLI's ``--csv``), flushed
    per row so an interrupted batch keeps every finished line."""

    def __init__(self, stream: IO[str], include_identifiers: bool = False) -> None:
        self._stream = stream
        self._writer = csv.DictWriter(
            stream, fieldnames=columns(include_identifiers), extrasaction="ignore", lineterminator="\n"
        )
        self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _cell(row.get(k)) for k in self._writer.fieldnames})
        self._stream.flush()


def _write_csv_stream(rows: Iterable[dict[str, Any]], stream: IO[str], include_identifiers: bool) -> int:
    out = CsvStream(stream, include_identifiers)
    count = 0
    for row in rows:
        out.write(row)
        count += 1
    return count


def write_json(rows: Iterable[dict[str, Any]], dest: str | Path | IO[str]) -> int:
    """Write rows as a JSON array of objects. Returns the row count."""
    items = list(rows)
    text = json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    if isinstance(dest, (str, Path)):
        write_private(Path(dest), text.encode("utf-8"))
    else:
        dest.write(text)
    return len(items)


def export_records(
    records: Iterable[WorklistRecord], dest: str | Path, include_identifiers: bool = False
) -> int:
    """Export finished results to ``dest``; the format follows the suffix (.csv or .json)."""
    suffix = Path(dest).suffix.lower()
    rows = (record_row(r, include_identifiers) for r in records)
    if suffix == ".csv":
        return write_csv(rows, dest, include_identifiers)
    if suffix == ".json":
        return write_json(rows, dest)
    raise ValueError(f"{Path(dest).name}: export format must be .csv or .json, not {suffix or 'none'!r}")
