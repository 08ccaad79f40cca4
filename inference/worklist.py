"""The persistent worklist: every finished result, stored the moment it arrives.

SQLite in WAL mode with one commit per result, so a crash or ``kill -9`` in the middle of a
batch loses nothing that was reported finished, and reopening the app restores the list.
The (pixel SHA-256, model SHA-256) pair identifies a result, so a study already analysed by
the same model is looked up instead of recomputed -- whatever its file is called.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LungLensError
from .imageops import decode_png, encode_png
from .prediction import ModelInfo, Prediction
from .study import Study, StudyMetadata
from .userdirs import worklist_path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_path TEXT NOT NULL,
    pixel_sha256 TEXT NOT NULL,
    metadata TEXT NOT NULL,
    probability REAL NOT NULL,
    label TEXT NOT NULL,
    threshold REAL NOT NULL,
    operating_point TEXT NOT NULL,
    sensitivity REAL,
    specificity REAL,
    in_scope INTEGER NOT NULL,
    scope_reasons TEXT NOT NULL,
    warnings TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    provider TEXT NOT NULL,
    analysed_at TEXT NOT NULL,
    timings_ms TEXT NOT NULL,
    thumbnail BLOB,
    cam_small BLOB,
    UNIQUE (study_path, pixel_sha256, model_sha256)
);
CREATE INDEX IF NOT EXISTS results_by_hash ON results (pixel_sha256, model_sha256);
"""

_JSON_FIELDS = ("metadata", "scope_reasons", "warnings", "timings_ms")
_IMAGE_FIELDS = ("thumbnail", "cam_small")


def utc_now() -> str:
    """ISO 8601 UTC time, second precision, as stored in the worklist and the audit log."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WorklistRecord:
    """One analysed study: what the list, the exports and a restored session show.

    No full-size pixels or Grad-CAM are stored, only what the list shows: an optional
    thumbnail and a reduced Grad-CAM (uint8 0..255, e.g. 128 px a side), both kept as PNG.
    The study on screen is re-read from ``study_path`` when the user opens it.
    """

    study_path: str
    pixel_sha256: str
    metadata: dict[str, Any]  # StudyMetadata as a dict, for display
    probability: float
    label: str
    threshold: float
    operating_point: str
    sensitivity: float | None
    specificity: float | None
    in_scope: bool
    scope_reasons: list[str]
    warnings: list[str]
    model_name: str
    model_version: str
    model_sha256: str
    provider: str
    analysed_at: str = field(default_factory=utc_now)
    timings_ms: dict[str, float] = field(default_factory=dict)
    thumbnail: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint8 2-D
    cam_small: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint8 2-D, 255 = 1.0
    id: int | None = None  # row id once stored

    @classmethod
    def from_prediction(
        cls,
        study: Study,
        prediction: Prediction,
        pixel_sha256: str,
        thumbnail: np.ndarray | None = None,
        cam_small: np.ndarray | None = None,
    ) -> WorklistRecord:
        """The record of ``prediction`` for ``study`` (pixel hash from inference.hashing)."""
        return cls(
            study_path=str(study.path),
            pixel_sha256=pixel_sha256,
            metadata=asdict(study.metadata),
            probability=float(prediction.probability),
            label=prediction.label,
            threshold=float(prediction.threshold),
            operating_point=prediction.operating_point,
            sensitivity=prediction.sensitivity,
            specificity=prediction.specificity,
            in_scope=bool(prediction.in_scope),
            scope_reasons=list(prediction.scope_reasons),
            warnings=list(prediction.warnings),
            model_name=prediction.model.name,
            model_version=prediction.model.version,
            model_sha256=prediction.model.sha256,
            provider=prediction.provider,
            timings_ms={k: float(v) for k, v in prediction.timings_ms.items()},
            thumbnail=thumbnail,
            cam_small=cam_small,
        )

    def to_prediction(self) -> Prediction:
        """The stored result as a Prediction without its Grad-CAM (an empty map; use
        ``cam_small`` for display), e.g. to restore the list or skip a recompute."""
        return Prediction(
            probability=self.probability,
            label=self.label,
            threshold=self.threshold,
            operating_point=self.operating_point,
            sensitivity=self.sensitivity,
            specificity=self.specificity,
            cam=np.zeros((0, 0), np.float32),
            model=ModelInfo(self.model_name, self.model_version, self.model_sha256),
            provider=self.provider,
            timings_ms=dict(self.timings_ms),
            warnings=list(self.warnings),
            in_scope=self.in_scope,
            scope_reasons=list(self.scope_reasons),
        )

    @property
    def study_metadata(self) -> StudyMetadata:
        known = {f.name for f in fields(StudyMetadata)}
        return StudyMetadata(**{k: v for k, v in self.metadata.items() if k in known})

    @property
    def is_positive(self) -> bool:
        return self.label == "PNEUMONIA"

    def with_threshold(
        self,
        threshold: float,
        operating_point: str,
        sensitivity: float | None = None,
        specificity: float | None = None,
    ) -> WorklistRecord:
        """The same result read at another threshold: the probability does not change,
        so a new operating point never needs the model again."""
        label = "PNEUMONIA" if self.probability >= threshold else "NORMAL"
        return replace(
            self,
            threshold=float(threshold),
            operating_point=operating_point,
            sensitivity=sensitivity,
            specificity=specificity,
            label=label,
        )


class WorklistError(LungLensError):
    """The worklist cannot be used as it is (e.g. written by a newer LungLens)."""


class Worklist:
    """The results database. Safe to share between the GUI thread and a worker thread."""

    def __init__(self, path: str | Path | None = None) -> None:
        """Open (or create) the database. A damaged file is moved aside -- its name is then in
        :attr:`damaged_copy` for the app to tell the user -- and a new list is started, so a
        broken worklist never stops the app. A list written by a newer LungLens is refused
        (:class:`WorklistError`) rather than touched."""
        self.path = Path(path) if path is not None else worklist_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.damaged_copy: Path | None = None
        self._lock = threading.Lock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:
            self.damaged_copy = self._move_aside()
            self._conn = self._open()
        version = self.schema_version
        if version > SCHEMA_VERSION:
            self._conn.close()
            raise WorklistError(
                f"{self.path.name}: worklist schema {version} is newer than this LungLens "
                f"understands ({SCHEMA_VERSION}); use a newer version or another data directory"
            )

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when add() returns (kill -9 and power loss alike).
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            # One statement, so two processes creating the list at once still write one row.
            conn.execute(
                "INSERT INTO schema_version (version) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
                (SCHEMA_VERSION,),
            )
            conn.execute("SELECT COUNT(*) FROM results").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.replace(Path(str(target) + suffix))
        return target

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT version FROM schema_version").fetchone()["version"])

    def add(self, record: WorklistRecord) -> WorklistRecord:
        """Store ``record`` and commit. The same file, pixels and model replace the old row
        (keeping its place in the list). Returns the record with its row id."""
        values = {f.name: getattr(record, f.name) for f in fields(WorklistRecord) if f.name != "id"}
        for key in _JSON_FIELDS:
            values[key] = json.dumps(values[key], ensure_ascii=False)
        for key in _IMAGE_FIELDS:
            values[key] = _png(values[key], key)
        values["in_scope"] = int(values["in_scope"])
        cols = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        updates = ", ".join(f"{k}=excluded.{k}" for k in values)
        sql = (
            f"INSERT INTO results ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (study_path, pixel_sha256, model_sha256) DO UPDATE SET {updates} RETURNING id"
        )
        with self._lock:
            # Autocommit: stepping the statement to its end commits it (fetchall, not fetchone).
            row_id = self._conn.execute(sql, values).fetchall()[0][0]
        return replace(record, id=int(row_id))

    def lookup(self, pixel_sha256: str, model_sha256: str) -> WorklistRecord | None:
        """The latest stored result for these pixels and this model, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM results WHERE pixel_sha256=? AND model_sha256=? ORDER BY id DESC LIMIT 1",
                (pixel_sha256, model_sha256),
            ).fetchone()
        return _record(row) if row is not None else None

    def records(self) -> list[WorklistRecord]:
        """Every stored result, in the order they were first added."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM results ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def remove(self, record_id: int) -> bool:
        """Delete one row; True if it existed."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM results WHERE id=?", (record_id,))
        return cur.rowcount > 0

    def remove_path(self, study_path: str | Path) -> int:
        """Delete every result stored for one file (any pixels, any model); returns how many."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM results WHERE study_path=?", (str(study_path),))
        return cur.rowcount

    def clear(self) -> None:
        """Empty the worklist (the audit log keeps its history)."""
        with self._lock:
            self._conn.execute("DELETE FROM results")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Worklist:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _png(image: np.ndarray | None, name: str) -> bytes | None:
    if image is None:
        return None
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D uint8 image, got {image.dtype} {image.shape}")
    return encode_png(image)


def _unpng(data: bytes | None) -> np.ndarray | None:
    if data is None:
        return None
    return decode_png(data)


def _record(row: sqlite3.Row) -> WorklistRecord:
    data = dict(row)
    for key in _JSON_FIELDS:
        data[key] = json.loads(data[key])
    for key in _IMAGE_FIELDS:
        data[key] = _unpng(data[key])
    data["in_scope"] = bool(data["in_scope"])
    return WorklistRecord(**data)
