"""The persistent worklist: every finished result, stored the moment it arrives.

SQLite in WAL mode with one commit per result, so a crash or ``kill -9`` in the middle of a
batch loses nothing that was reported finished, and reopening the app restores the list.
The (pixel SHA-256, model SHA-256) pair identifies a result, so a study already analysed by
the same model is looked up instead of recomputed -- whatever its file is called.

Schema 2 stores each result's raw logit, the operating point it was read at (with its
confidence intervals), the site profile that calibrated it, and the reader's verdict. The
logit is what makes a stored result outlive a change of profile: under another profile the
probability is that profile's calibration of the same logit, no model run needed
(:meth:`WorklistRecord.under`). A schema-1 list is upgraded in place (new columns, NULL in
the old rows); its rows have no logit and are analysed again when met.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .decision import OperatingPoint, ReadAtOperatingPoint
from .attribution import Attribution
from .errors import LungLensError
from .imageops import decode_png, encode_png
from .prediction import ModelInfo, Prediction
from .profile import ProfileInfo, SiteProfile
from .study import Study, StudyMetadata
from .userdirs import create_private, private_dir, tighten, worklist_path

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 10.0  # how long to wait for another process's write to finish before giving up on the list

# Columns added since schema 1; an older list gets them by ALTER TABLE (NULL in old rows).
_ADDED_COLUMNS = (
    ("logit", "REAL"),  # the model's raw output, before any profile's calibration
    ("operating", "TEXT"),  # JSON OperatingPoint: name, threshold, sensitivity/specificity with CIs
    ("profile", "TEXT"),  # JSON {name, sha256, source} of the site profile behind the probability
    ("verdict", "TEXT"),  # the reader's: "pneumonia", "no pneumonia", "unsure", or NULL
    ("verdict_at", "TEXT"),  # when it was given (ISO 8601 UTC)
    # Schema 3: JSON Attribution (the native grid in logit units and its full scale), which
    # replaced schema 2's reduced Grad-CAM picture (column cam_small, left unread in old files).
    ("attribution", "TEXT"),
)

_SCHEMA = f"""
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
    {", ".join(f"{name} {kind}" for name, kind in _ADDED_COLUMNS)},
    UNIQUE (study_path, pixel_sha256, model_sha256)
);
CREATE INDEX IF NOT EXISTS results_by_hash ON results (pixel_sha256, model_sha256);
-- Files that could not be analysed, until they are (the trigger, in the result's own commit)
-- or removed. Not a schema version of its own: an older LungLens reads the file as before.
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_path TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS a_result_ends_its_files_failure AFTER INSERT ON results
BEGIN DELETE FROM failures WHERE study_path = NEW.study_path; END;
CREATE TRIGGER IF NOT EXISTS a_new_result_ends_its_files_failure AFTER UPDATE OF analysed_at ON results
BEGIN DELETE FROM failures WHERE study_path = NEW.study_path; END;
"""

_JSON_FIELDS = ("metadata", "scope_reasons", "warnings", "timings_ms")

# The reader's verdicts, and the label each gives a calibration ("unsure" gives none).
VERDICTS = ("pneumonia", "no pneumonia", "unsure")
_VERDICT_LABELS = {"pneumonia": 1, "no pneumonia": 0}
# Schema-1 rows kept their operating point's figures without intervals.
_V1_POINT = "stored by LungLens 1: the operating point's figures were not recorded with their intervals"


def utc_now() -> str:
    """ISO 8601 UTC time, second precision, as stored in the worklist and the audit log."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def verdict_label(verdict: str | None) -> int | None:
    """1 for "pneumonia", 0 for "no pneumonia"; None for "unsure" or no verdict."""
    return _VERDICT_LABELS.get(verdict or "")


@dataclass(frozen=True)
class Failure:
    """A file that could not be analysed. It is kept until the file is analysed or removed
    from the list, so that after a restart the list still shows a film that needs a look
    (and the DICOM node's failures reach the window at all)."""

    study_path: str
    reason: str  # as the list shows it: the file's name, then why
    failed_at: str = field(default_factory=utc_now)
    id: int | None = None  # row id once stored (ids of failures and of results are apart)


class WorklistError(LungLensError):
    """The worklist cannot be used as it is (e.g. written by a newer LungLens)."""


class WorklistUnavailable(WorklistError):
    """The worklist cannot be written now, and nothing says it is damaged: it is left exactly
    as it is -- never moved, never replaced -- and LungLens carries on without it. The
    subclasses say why, so the message can say what to do about it."""


def locked_text(path: Path, seconds: float) -> str:
    return (f"{path}: another program has kept the worklist locked for more than {seconds:g} s (another "
            "LungLens busy with it, or a tool that opened it)")


class WorklistLocked(WorklistUnavailable):
    """Another process held a write lock on the worklist for longer than the busy timeout."""

    def carrying_on(self) -> str:
        """What the app and the CLI say when they go on without the list."""
        return (f"{self}. Results are not saved in it yet: LungLens carries on without it (they are shown, "
                "exported and audited) and saves them in it once it is free. Nothing in it was changed.")


class WorklistReadOnly(WorklistUnavailable):
    """The worklist lies on a read-only file system."""


class WorklistNoPermission(WorklistUnavailable):
    """This account may not write the worklist, or create its journal files beside it."""


@dataclass(frozen=True)
class SetAside:
    """A worklist that failed its integrity check, kept under another name for whoever can
    rescue it; a new, empty list took its place."""

    problem: str  # what the integrity check found
    files: tuple[Path, ...]  # the database as kept, and its -wal when it had one

    def message(self) -> str:
        """What the user is told: what was wrong, and what was kept where."""
        kept = " and ".join(str(f) for f in self.files) or "nothing (no file was left)"
        return (f"The worklist failed its integrity check ({self.problem}). It was kept as {kept}, "
                f"and a new, empty worklist was started.")


@dataclass(frozen=True)
class WorklistRecord(ReadAtOperatingPoint):
    """One analysed study: what the list, the exports and a restored session show.

    No full-size pixels are stored, only what the list shows: an optional thumbnail (kept as
    PNG) and the attribution grid (a few hundred numbers) the heat-map is drawn from.
    The study on screen is re-read from ``study_path`` when the user opens it. The label is
    not stored but asked of :mod:`inference.decision`, like a Prediction's.
    """

    study_path: str
    pixel_sha256: str
    metadata: dict[str, Any]  # StudyMetadata as a dict, for display
    probability: float
    operating: OperatingPoint  # the threshold the result is read at, with that point's figures
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
    # The thumbnail as stored (PNG) instead, when read undecoded (Worklist.records_by_id): a
    # long worklist's window decodes only the rows it draws.
    thumbnail_png: bytes | None = field(default=None, compare=False, repr=False)
    attribution: Attribution | None = field(default=None, compare=False, repr=False)
    logit: float | None = None  # None for results stored by LungLens 1
    profile: ProfileInfo | None = None  # the site profile whose calibration made ``probability``
    verdict: str | None = None  # the reader's (VERDICTS), set with Worklist.set_verdict
    verdict_at: str | None = None
    id: int | None = None  # row id once stored

    @classmethod
    def from_prediction(
        cls,
        study: Study,
        prediction: Prediction,
        pixel_sha256: str,
        thumbnail: np.ndarray | None = None,
    ) -> WorklistRecord:
        """The record of ``prediction`` for ``study`` (pixel hash from inference.hashing)."""
        logit = float(prediction.logit)
        return cls(
            study_path=str(study.path),
            pixel_sha256=pixel_sha256,
            metadata=asdict(study.metadata),
            probability=float(prediction.probability),
            operating=prediction.operating,
            in_scope=bool(prediction.in_scope),
            scope_reasons=list(prediction.scope_reasons),
            warnings=list(prediction.warnings),
            model_name=prediction.model.name,
            model_version=prediction.model.version,
            model_sha256=prediction.model.sha256,
            provider=prediction.provider,
            timings_ms={k: float(v) for k, v in prediction.timings_ms.items()},
            thumbnail=thumbnail,
            attribution=prediction.attribution,
            logit=logit if math.isfinite(logit) else None,
            profile=prediction.profile,
        )

    def to_prediction(self) -> Prediction:
        """The stored result as a Prediction, e.g. to restore the list or skip a recompute. A
        result stored without its logit (LungLens 1) gets a NaN logit, one stored without its
        attribution (before schema 3) no heat-map."""
        return Prediction(
            probability=self.probability,
            operating=self.operating,
            model=self.model,
            provider=self.provider,
            timings_ms=dict(self.timings_ms),
            warnings=list(self.warnings),
            logit=self.logit if self.logit is not None else math.nan,
            in_scope=self.in_scope,
            scope_reasons=list(self.scope_reasons),
            profile=self.profile,
            attribution=self.attribution,
        )

    @property
    def model(self) -> ModelInfo:
        return ModelInfo(self.model_name, self.model_version, self.model_sha256)

    @property
    def study_metadata(self) -> StudyMetadata:
        known = {f.name for f in fields(StudyMetadata)}
        return StudyMetadata(**{k: v for k, v in self.metadata.items() if k in known})

    def under(self, profile: SiteProfile, operating: OperatingPoint | None = None) -> WorklistRecord:
        """The same result under another site profile: that profile's calibration of the stored
        logit, read at ``operating`` (default: the profile's default point). No model run.

        Refused (:class:`inference.profile.ProfileError`) for a profile of another model, and
        (:class:`WorklistError`) for a result stored without its logit by LungLens 1.
        """
        profile.check_model(self.model)
        if self.logit is None:
            raise WorklistError(
                f"{Path(self.study_path).name}: stored by LungLens 1 without the model's logit, so it cannot be "
                f"read under profile {profile.name!r}; analyse the study again")
        return replace(self, probability=profile.probability(self.logit),
                       operating=operating or profile.operating_point(), profile=profile.info)


class Worklist:
    """The results database. Safe to share between the GUI thread and a worker thread."""

    def __init__(self, path: str | Path | None = None, *, open_timeout: float | None = None,
                 wait: float = BUSY_TIMEOUT_S, read_only: bool = False) -> None:
        """Open (or create) the database, 0600 from its creation (``inference.userdirs``).

        A list that cannot be written is refused with the reason -- :class:`WorklistLocked`
        (another process held a write lock for more than ``open_timeout`` seconds, default
        :data:`BUSY_TIMEOUT_S`: the window tries briefly and polls with its window up; every
        operation after opening waits ``wait`` seconds, which the window keeps short: its
        thread must not stand still for another program's lock),
        :class:`WorklistReadOnly`, :class:`WorklistNoPermission`, a
        :class:`WorklistError` for a newer schema or a failed upgrade -- and left exactly as it
        is. Only a file that is not a database or fails ``PRAGMA integrity_check`` is set aside
        (:attr:`set_aside` says what was kept where) and replaced by a new list, so a broken
        worklist never stops the app. A schema-1 list is upgraded in place.

        ``read_only`` only reads (``lunglens calibrate --from-worklist``): no file is created,
        upgraded or set aside, and another process's write lock does not block it (WAL).
        """
        self.path = Path(path) if path is not None else worklist_path(create=False)
        self.busy_timeout = BUSY_TIMEOUT_S if open_timeout is None else open_timeout  # what a lock is waited for
        self.set_aside: SetAside | None = None
        self._lock = threading.Lock()
        if read_only:
            self._conn = self._open_read_only()
        else:
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as exc:
                self.set_aside = self._move_aside(self._diagnose(exc))
                self._conn = self._open()
        version = self.schema_version
        if version > SCHEMA_VERSION:
            self._conn.close()
            raise WorklistError(
                f"{self.path.name}: worklist schema {version} is newer than this LungLens "
                f"understands ({SCHEMA_VERSION}); use a newer version or another data directory"
            )
        if version < SCHEMA_VERSION:
            if read_only:
                self._conn.close()
                raise WorklistError(f"{self.path.name}: the worklist was written by an older LungLens; "
                                    f"open LungLens once to upgrade it, then try again")
            self._upgrade()
        self._wait_for_locks(wait)

    def _wait_for_locks(self, seconds: float) -> None:
        self.busy_timeout = seconds
        with self._session():
            self._conn.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")

    def _connect(self, target: str | Path, uri: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(target, uri=uri, timeout=self.busy_timeout, check_same_thread=False,
                               isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            private_dir(self.path.parent)  # patient names and IDs: the folder is the user's alone
            # The file exists, 0600, before SQLite writes a byte: its -wal and -shm take its mode.
            create_private(self.path)
            for suffix in ("-wal", "-shm"):
                tighten(Path(f"{self.path}{suffix}"))  # an older LungLens's, still open to others
        except OSError as exc:
            raise self._unwritable(exc) or WorklistUnavailable(
                f"{self.path}: the worklist cannot be opened ({exc.strerror or exc})") from exc
        conn = self._connect(self.path)
        try:
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

    def _open_read_only(self) -> sqlite3.Connection:
        """A reading connection. On a read-only file system without a -wal, SQLite cannot make
        the -shm a WAL reader needs; nothing can change the file there, so it is read as
        immutable. With a -wal left by a crash it is not: that would skip the results in it."""
        read_only_fs = _read_only_fs(self.path.parent)
        immutable = read_only_fs and not Path(f"{self.path}-wal").exists()
        conn = self._connect(f"{self.path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}", uri=True)
        try:
            conn.execute("SELECT COUNT(*) FROM results").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_lock(exc):
                raise WorklistLocked(self._locked_text()) from exc
            raise self._unwritable(exc) or WorklistError(
                f"{self.path}: the worklist cannot be read ({exc})") from exc
        return conn

    def _locked_text(self) -> str:
        return locked_text(self.path, self.busy_timeout)

    def _unwritable(self, exc: BaseException) -> WorklistUnavailable | None:
        """Why ``exc`` may be the file system's or the account's doing rather than the file's:
        a read-only mount, or no permission on the file or its folder; None otherwise."""
        if _read_only_fs(self.path.parent):
            return WorklistReadOnly(f"{self.path}: the worklist is on a read-only file system ({exc})")
        folder_ok = os.access(self.path.parent, os.W_OK | os.X_OK)
        file_ok = not self.path.exists() or os.access(self.path, os.R_OK | os.W_OK)
        if not (folder_ok and file_ok) or isinstance(exc, PermissionError):
            what = "the worklist" if not file_ok else f"its folder {self.path.parent}"
            return WorklistNoPermission(f"{self.path}: this account may not write {what} ({exc})")
        return None

    def _diagnose(self, exc: sqlite3.DatabaseError) -> str:
        """Why the list could not be opened. A list that may be healthy -- locked, read-only, not
        permitted, or passing its integrity check -- raises :class:`WorklistUnavailable`; for a
        damaged one, returns what the integrity check found (the file is then set aside)."""
        if _is_lock(exc):
            raise WorklistLocked(self._locked_text()) from exc
        unwritable = self._unwritable(exc)
        if unwritable is not None:
            raise unwritable from exc
        problem = integrity_problem(self.path, self.busy_timeout)
        if not problem:
            raise WorklistUnavailable(f"{self.path}: the worklist cannot be opened ({exc}), yet it passes its "
                                      f"integrity check; it was left as it is") from exc
        return problem

    def _upgrade(self) -> None:
        """An older schema to this one in one transaction: add the new columns (NULL in existing
        rows), then record the version. Two processes upgrading at once: the second finds it done."""
        try:
            with self._session():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    version = int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])
                    if version < SCHEMA_VERSION:
                        have = {row["name"] for row in self._conn.execute("PRAGMA table_info(results)")}
                        for name, kind in _ADDED_COLUMNS:
                            if name not in have:
                                self._conn.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
                        self._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except WorklistLocked:
            self._conn.close()
            raise
        except sqlite3.Error as exc:
            self._conn.close()
            raise WorklistError(
                f"{self.path.name}: the worklist could not be upgraded to schema {SCHEMA_VERSION} ({exc}); "
                f"it was left unchanged"
            ) from exc

    def _move_aside(self, problem: str) -> SetAside:
        """Keep a damaged list (and its -wal, when that holds anything) under a dated name. Its
        -shm only indexes the -wal and is rebuilt from it, so it is removed rather than kept."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        wal = Path(f"{self.path}-wal")
        kept = []
        try:
            for part, as_kept in ((self.path, target), (wal, Path(f"{target}-wal"))):
                if part.exists() and (part == self.path or part.stat().st_size):
                    part.replace(as_kept)
                    kept.append(as_kept)
            for leftover in (wal, Path(f"{self.path}-shm")):
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise WorklistUnavailable(f"{self.path}: the worklist failed its integrity check ({problem}) but "
                                      f"could not be set aside ({exc.strerror or exc}); it was left as it is") from exc
        return SetAside(problem, tuple(kept))

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """The connection, for one thread at a time; a write lock another process held past
        the busy timeout becomes :class:`WorklistLocked` (the caller carries on without the list)."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.OperationalError as exc:
                if _is_lock(exc):
                    raise WorklistLocked(self._locked_text()) from exc
                raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection (see :meth:`_session`) in one write transaction: all of it or none."""
        with self._session() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._session():
            return int(self._conn.execute("SELECT version FROM schema_version").fetchone()["version"])

    def add(self, record: WorklistRecord) -> WorklistRecord:
        """Store ``record`` and commit. The same file, pixels and model replace the old row
        (keeping its place in the list, and the reader's verdict unless the record brings
        one: analysing a study again does not undo what the reader said). Returns the
        record with its row id."""
        values = _columns(record)
        cols = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        kept = {"verdict", "verdict_at"}
        updates = ", ".join(f"{k}=excluded.{k}" for k in values if k not in kept)
        sql = (
            f"INSERT INTO results ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (study_path, pixel_sha256, model_sha256) DO UPDATE SET {updates}, "
            f"verdict_at=CASE WHEN excluded.verdict IS NULL THEN verdict_at ELSE excluded.verdict_at END, "
            f"verdict=COALESCE(excluded.verdict, verdict) "
            f"RETURNING id, verdict, verdict_at"
        )
        with self._session():
            # Autocommit: stepping the statement to its end commits it (fetchall, not fetchone).
            row_id, verdict, verdict_at = self._conn.execute(sql, values).fetchall()[0]
        return replace(record, id=int(row_id), verdict=verdict, verdict_at=verdict_at)

    def lookup(self, pixel_sha256: str, model_sha256: str) -> WorklistRecord | None:
        """The latest stored result for these pixels and this model, or None.

        The key is the pixels and the model, not the site profile: the model's logit does not
        depend on the profile, so a result stored under one profile is read under the active
        one with ``record.under(profile)`` -- the probability is re-derived from the stored
        logit (``profile.probability(logit)``), no model run. Rows stored by LungLens 1 have
        no logit and are never returned: their probability cannot be re-derived, so the
        study is analysed again (and the new result replaces the row).
        """
        with self._session():
            row = self._conn.execute(
                "SELECT * FROM results WHERE pixel_sha256=? AND model_sha256=? AND logit IS NOT NULL "
                "ORDER BY id DESC LIMIT 1",
                (pixel_sha256, model_sha256),
            ).fetchone()
        return _record(row) if row is not None else None

    def recall(self, pixel_sha256: str, profile: SiteProfile, metadata: StudyMetadata) -> WorklistRecord | None:
        """The stored result to answer a study with instead of running the model: the latest
        one of these pixels, of ``profile``'s model, made under ``profile`` itself and from
        the same header (``metadata``), or None. Another profile's probability is on another
        scale; another header can change the input gate's verdict and the warnings (the same
        pixels under a lateral view are out of scope): such a study is analysed again."""
        header = asdict(metadata)
        with self._session():
            rows = self._conn.execute(
                "SELECT * FROM results WHERE pixel_sha256=? AND model_sha256=? AND logit IS NOT NULL "
                "ORDER BY id DESC", (pixel_sha256, profile.model.sha256)).fetchall()
        for row in rows:
            stored = _record(row)
            if stored.profile is not None and stored.profile.sha256 == profile.sha256 and stored.metadata == header:
                return stored
        return None

    def fingerprints_of(self, study_path: str | Path, model_sha256: str) -> set[str]:
        """The pixel fingerprints stored for one file and model (any profile)."""
        with self._session():
            rows = self._conn.execute("SELECT DISTINCT pixel_sha256 FROM results WHERE study_path=? AND "
                                      "model_sha256=?", (str(study_path), model_sha256)).fetchall()
        return {str(r[0]) for r in rows}

    def rekey(self, old_sha256: str, new_sha256: str) -> int:
        """Store the rows of pixels fingerprinted ``old_sha256`` under ``new_sha256`` (the same
        pixels under a newer fingerprint version, inference.hashing); a row whose file already
        has one under the new key keeps the old. Returns how many rows were changed."""
        with self._session():
            return self._conn.execute("UPDATE OR IGNORE results SET pixel_sha256=? WHERE pixel_sha256=?",
                                      (new_sha256, old_sha256)).rowcount

    def records(self) -> list[WorklistRecord]:
        """Every stored result, in the order they were first added."""
        with self._session():
            rows = self._conn.execute("SELECT * FROM results ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def count(self, after_id: int = 0) -> int:
        """How many results were added since the row of ``after_id`` (ids are never reused:
        AUTOINCREMENT; rows :meth:`put_back` returns keep their old ids). Nothing is decoded."""
        with self._session():
            return int(self._conn.execute("SELECT COUNT(*) FROM results WHERE id > ?", (after_id,)).fetchone()[0])

    def last_id(self) -> int:
        """The id of the newest row (0 when empty)."""
        with self._session():
            return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM results").fetchone()[0])

    def latest_ids(self, after_id: int = 0, up_to_id: int | None = None) -> list[int]:
        """The id of each file's newest result among the rows added since ``after_id`` (up to
        ``up_to_id``; see :meth:`count`), the most probable first. A window lists a long
        worklist in this order (:meth:`records_by_id`, a batch at a time), so the top of its
        list is there, and stays put, long before the rest is read. Nothing is decoded."""
        with self._session():
            rows = self._conn.execute(
                "SELECT id FROM results WHERE id IN (SELECT MAX(id) FROM results WHERE id > ? AND id <= ? "
                "GROUP BY study_path) ORDER BY probability DESC, id",
                (after_id, up_to_id if up_to_id is not None else 2**63 - 1)).fetchall()
        return [int(r[0]) for r in rows]

    def records_by_id(self, ids: Sequence[int], decode_thumbnails: bool = True) -> list[WorklistRecord]:
        """The results of the rows ``ids``, in that order; a row deleted meanwhile is left out.
        Without ``decode_thumbnails`` the thumbnails stay PNG (``thumbnail_png``): decoding
        them was half the time of reading a row."""
        if not ids:
            return []
        with self._session():
            rows = self._conn.execute(f"SELECT * FROM results WHERE id IN ({', '.join('?' * len(ids))})",
                                      tuple(ids)).fetchall()
        by_id = {int(r["id"]): r for r in rows}
        return [_record(by_id[i], decode_thumbnails) for i in ids if i in by_id]

    def with_verdicts(self) -> list[WorklistRecord]:
        """The results the reader has given a verdict, in the order they were first added
        (what ``lunglens calibrate --from-worklist`` and the local performance figures read)."""
        with self._session():
            rows = self._conn.execute("SELECT * FROM results WHERE verdict IS NOT NULL ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def set_verdict(self, record_id: int, verdict: str | None, at: str | None = None) -> WorklistRecord | None:
        """Store the reader's verdict ("pneumonia", "no pneumonia", "unsure") with the time it
        was given (now, or ``at``: a verdict put back by an undo keeps its first time); None
        withdraws it. Returns the updated record, or None if there is no such row."""
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(map(repr, VERDICTS))}, not {verdict!r}")
        with self._session():
            row = self._conn.execute(
                "UPDATE results SET verdict=?, verdict_at=? WHERE id=? RETURNING *",
                (verdict, (at or utc_now()) if verdict is not None else None, record_id),
            ).fetchall()
        return _record(row[0]) if row else None

    def __len__(self) -> int:
        with self._session():
            return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def remove(self, record_id: int) -> bool:
        """Delete one row; True if it existed."""
        with self._session():
            cur = self._conn.execute("DELETE FROM results WHERE id=?", (record_id,))
        return cur.rowcount > 0

    def take_path(self, study_path: str | Path) -> list[WorklistRecord]:
        """Delete every result stored for one file (any pixels, any model) and its failure,
        and return the results, so that the window can offer to undo the removal (:meth:`put_back`)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM failures WHERE study_path=?", (str(study_path),))
            rows = conn.execute("DELETE FROM results WHERE study_path=? RETURNING *", (str(study_path),)).fetchall()
        return sorted((_record(r) for r in rows), key=lambda r: r.id or 0)

    def add_failure(self, failure: Failure) -> Failure:
        """Keep that a file could not be analysed (replacing an earlier failure of it, under a
        new id: :meth:`failures` after an id finds it). Its results, if any, stay."""
        with self._session():
            (row_id,) = self._conn.execute(
                "INSERT OR REPLACE INTO failures (study_path, reason, failed_at) VALUES (?, ?, ?) RETURNING id",
                (failure.study_path, failure.reason, failure.failed_at)).fetchall()[0]
        return replace(failure, id=int(row_id))

    def failures(self, after_id: int = 0) -> list[Failure]:
        """The files that could not be analysed (since the failure of id ``after_id``), oldest first."""
        with self._session():
            rows = self._conn.execute("SELECT * FROM failures WHERE id > ? ORDER BY id", (after_id,)).fetchall()
        return [Failure(r["study_path"], r["reason"], r["failed_at"], int(r["id"])) for r in rows]

    def put_back(self, records: list[WorklistRecord]) -> int:
        """Store records taken out by :meth:`take_path` again under their own row ids: the list
        keeps its order and the ids the window holds (e.g. for the reader's verdict) stay
        valid. A result stored again meanwhile for the same file, pixels and model is kept
        instead. Returns how many were put back."""
        done = 0
        with self._session():
            for record in records:
                values = {"id": record.id, **_columns(record)}
                sql = (f"INSERT INTO results ({', '.join(values)}) VALUES ({', '.join(f':{k}' for k in values)}) "
                       f"ON CONFLICT DO NOTHING")
                done += self._conn.execute(sql, values).rowcount
        return done

    def clear(self) -> None:
        """Empty the worklist (the audit log keeps its history)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM failures")
            conn.execute("DELETE FROM results")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Worklist:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error_name(exc: sqlite3.Error) -> str:
    """SQLite's name for an error ("SQLITE_BUSY"...); Python 3.10 has only the message."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return str(name)
    text = str(exc)
    for fragment, fallback in (("locked", "SQLITE_BUSY"), ("not a database", "SQLITE_NOTADB"),
                               ("malformed", "SQLITE_CORRUPT")):
        if fragment in text:
            return fallback
    return ""


def _is_lock(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock this one waited for (past its busy timeout)."""
    return _error_name(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _read_only_fs(folder: Path) -> bool:
    """True when ``folder`` is on a file system mounted read-only (POSIX; False elsewhere)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows), or the folder is gone
        return False


def integrity_problem(path: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> str:
    """What ``PRAGMA integrity_check`` finds wrong with the database at ``path`` ("" when it is
    sound), read without writing. Raises :class:`WorklistLocked` when another process keeps it
    locked and :class:`WorklistUnavailable` when it cannot be read at all -- neither proves damage."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
        try:
            rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        name = _error_name(exc)
        if _is_lock(exc):
            raise WorklistLocked(f"{path}: another program keeps the worklist locked") from exc
        if name == "SQLITE_NOTADB":
            return "not an SQLite database"
        if name.startswith("SQLITE_CORRUPT"):
            return str(exc)
        raise WorklistUnavailable(f"{path}: the worklist cannot be checked ({exc}); it was left as it is") from exc
    return "" if rows == ["ok"] else "; ".join(rows)


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


def _columns(record: WorklistRecord) -> dict[str, Any]:
    """The row of ``record``. Label, threshold, operating point name and figures are written
    out as schema 1 had them, for anyone reading the database with SQL."""
    values: dict[str, Any] = {
        f.name: getattr(record, f.name) for f in fields(WorklistRecord)
        if f.name not in ("id", "operating", "profile", "attribution", "thumbnail_png")
    }
    for key in _JSON_FIELDS:
        values[key] = json.dumps(values[key], ensure_ascii=False)
    values["thumbnail"] = _png(record.thumbnail, "thumbnail") if record.thumbnail is not None else record.thumbnail_png
    values.update(
        in_scope=int(record.in_scope),
        label=record.label,
        threshold=record.threshold,
        operating_point=record.operating_point,
        sensitivity=record.sensitivity,
        specificity=record.specificity,
        operating=json.dumps(record.operating.to_dict(), ensure_ascii=False),
        profile=json.dumps(asdict(record.profile), ensure_ascii=False) if record.profile is not None else None,
        attribution=json.dumps(record.attribution.to_dict()) if record.attribution is not None else None,
    )
    return values


def _record(row: sqlite3.Row, decode_thumbnails: bool = True) -> WorklistRecord:
    data = dict(row)
    for key in _JSON_FIELDS:
        data[key] = json.loads(data[key])
    if decode_thumbnails:
        data["thumbnail"] = _unpng(data["thumbnail"])
    else:
        data["thumbnail_png"] = data.pop("thumbnail")
    data["in_scope"] = bool(data["in_scope"])
    if data["operating"] is not None:
        data["operating"] = OperatingPoint.from_dict(json.loads(data["operating"]))
    else:  # a schema-1 row
        data["operating"] = OperatingPoint(data["operating_point"], float(data["threshold"]), None, None, _V1_POINT)
    data["profile"] = ProfileInfo(**json.loads(data["profile"])) if data["profile"] is not None else None
    data["attribution"] = Attribution.from_dict(json.loads(data["attribution"])) if data["attribution"] else None
    data.pop("cam_small", None)  # a schema-2 file's max-normalized Grad-CAM picture: not drawn any more
    for derived in ("label", "threshold", "operating_point", "sensitivity", "specificity"):
        del data[derived]
    return WorklistRecord(**data)
