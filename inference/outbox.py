"""A persistent outbox: DICOM objects waiting to be sent to the PACS by C-STORE.

A PACS that is down, rebooting or refusing must never lose a result, and neither must a
LungLens that is stopped or crashes while results wait. So every object is written to a file
in the private data folder (0600) *before* anything is sent, and only deleted once the PACS
has answered Success (or a warning, which also means stored). Each file has a small JSON
state beside it (attempts, next attempt, last error), so the exponential backoff survives
restarts too. A crash between a successful send and the deletion sends the object again at
the next start; the PACS sees the same SOP Instance UID and keeps one copy.

Files: ``<folder>/<id>.dcm`` (the object, with its file meta) and ``<folder>/<id>.json``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .dicom_sc import dataset_bytes
from .userdirs import private_dir, write_private

log = logging.getLogger("lunglens.serve")

# Status codes of a C-STORE that mean the object was stored (PS3.4 B.2.3): Success, and the
# warnings "coercion of data elements", "elements discarded", "does not match SOP class".
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB007, 0xB006})


class DestinationError(ValueError):
    """``--send-to`` is not ``AET@HOST:PORT``."""


@dataclass(frozen=True)
class Destination:
    """Where results are sent: the PACS's AE title, host and port."""

    aet: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``AET@HOST:PORT`` (an IPv6 host in brackets: ``AET@[::1]:104``)."""
        match = re.fullmatch(r"([^@]{1,16})@(\[[0-9A-Fa-f:.]+\]|[^:@\[\]]+):(\d{1,5})", text.strip())
        if not match:
            raise DestinationError(f"not AET@HOST:PORT: {text!r}")
        aet, host, port = match.group(1).strip(), match.group(2).strip("[]"), int(match.group(3))
        if not aet or not aet.isprintable() or "\\" in aet:
            raise DestinationError(f"not a valid AE title: {aet!r}")
        if not 0 < port < 65536:
            raise DestinationError(f"port out of range: {port}")
        return cls(aet, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.aet}@{host}:{self.port}"


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after the n-th failed attempt: ``first * factor**(n-1)``, at most ``maximum``."""

    first: float = 5.0
    factor: float = 2.0
    maximum: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.maximum, self.first * self.factor ** max(0, attempts - 1))


@dataclass
class OutboxItem:
    """One object waiting to be sent, and how its attempts went so far."""

    id: str
    sop_class_uid: str
    sop_instance_uid: str
    what: str  # "sr" or "sc": what the audit log and the messages call it
    pixel_sha256: str = ""  # the film it is the result of, for the audit line written when it is stored
    attempts: int = 0
    next_attempt: float = 0.0  # time.time() when it is due
    last_error: str = ""


@dataclass(frozen=True)
class SendReport:
    """What one pass over the due items did."""

    sent: list[OutboxItem]
    failed: list[OutboxItem]


Sender = Callable[[Destination, list[tuple[OutboxItem, Path]]], dict[str, str]]


class Outbox:
    """The queue of objects for one destination. Thread-safe: the analysis thread puts, the
    sending thread (:meth:`run`) sends; any number of restarts in between."""

    def __init__(self, folder: Path, destination: Destination, calling_aet: str = "LUNGLENS",
                 backoff: Backoff = Backoff(), sender: Sender | None = None,
                 on_sent: Callable[[OutboxItem], None] | None = None) -> None:
        self.folder = private_dir(folder)
        self.destination = destination
        self.calling_aet = calling_aet
        self.backoff = backoff
        self._send = sender or c_store_sender(calling_aet)
        self._on_sent = on_sent
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # ------------------------------------------------------------------ queue
    def put(self, ds: Dataset, what: str, pixel_sha256: str = "") -> OutboxItem:
        """Keep ``ds`` (with its file meta) until it is sent; it is due at once."""
        item = OutboxItem(id=f"{time.time_ns():020d}-{what}", sop_class_uid=str(ds.SOPClassUID),
                          sop_instance_uid=str(ds.SOPInstanceUID), what=what, pixel_sha256=pixel_sha256)
        data = dataset_bytes(ds)
        with self._lock:
            try:  # the state first: the sender lists objects, and must never meet one without its state
                write_private(self._state_path(item), _state_bytes(item))
                write_private(self._object_path(item), data)
            except OSError:  # a full disk: nothing half-kept; the caller keeps the film to try again
                self._object_path(item).unlink(missing_ok=True)
                self._state_path(item).unlink(missing_ok=True)
                raise
        self._wake.set()
        return item

    def items(self) -> list[OutboxItem]:
        """Every object waiting, oldest first (a state file lost in a crash means "due now"). An
        object that cannot be read at all is moved to ``unreadable/`` and said: it had stopped
        every pass, and every result behind it."""
        out = []
        for path in sorted(self.folder.glob("*.dcm")):
            try:
                out.append(self._read_state(path.stem))
            except OSError as exc:  # this time only (a file being written, a passing I/O error)
                log.warning("outbox: %s cannot be read now (%s); tried again later", path.name, exc.strerror or exc)
            except Exception as exc:  # noqa: BLE001 -- pydicom raises many types for a damaged file
                try:
                    self._set_aside(path, exc)
                except OSError as moving:
                    log.error("outbox: %s cannot be read (%s) nor set aside (%s)", path.name, exc, moving)
        return out

    def _set_aside(self, path: Path, exc: Exception) -> None:
        aside = private_dir(self.folder / "unreadable")
        log.error("outbox: %s cannot be read (%s); moved to %s, not sent", path.name, exc, aside)
        with self._lock:
            for stray in (path, path.with_suffix(".json")):
                if stray.exists():
                    stray.replace(aside / stray.name)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*.dcm"))

    # ---------------------------------------------------------------- sending
    def send_due(self, now: float | None = None) -> SendReport:
        """Try every item that is due, in one association; delete those the PACS stored and
        push the others' next attempt back."""
        now = time.time() if now is None else now
        due = [item for item in self.items() if item.next_attempt <= now]
        if not due:
            return SendReport([], [])
        errors = self._send(self.destination, [(item, self._object_path(item)) for item in due])
        sent, failed = [], []
        with self._lock:
            for item in due:
                error = errors.get(item.id)
                if error is None:
                    self._object_path(item).unlink(missing_ok=True)
                    self._state_path(item).unlink(missing_ok=True)
                    sent.append(item)
                    continue
                item.attempts += 1
                item.last_error = error
                item.next_attempt = time.time() + self.backoff.delay(item.attempts)
                try:
                    write_private(self._state_path(item), _state_bytes(item))
                except OSError as exc:  # a full disk: it is tried again at the next pass (run waits a while)
                    log.warning("outbox: could not note the next try of %s (%s)", item.id, exc.strerror or exc)
                failed.append(item)
        if sent:  # the PACS takes objects again: the others waiting go next, oldest first
            try:
                self._due_now({item.id for item in due}, now)
            except OSError as exc:  # a full disk: they keep their own times
                log.warning("outbox: could not bring the waiting results forward (%s)", exc.strerror or exc)
        for item in sent:
            log.info("sent %s %s to %s", item.what.upper(), item.sop_instance_uid, self.destination)
            if self._on_sent is not None:
                self._on_sent(item)
        for item in failed:
            log.warning("could not send %s %s to %s (attempt %d, next in %.0f s): %s", item.what.upper(),
                        item.sop_instance_uid, self.destination, item.attempts,
                        max(0.0, item.next_attempt - time.time()), item.last_error)
        return SendReport(sent, failed)

    def _due_now(self, but: set[str], now: float) -> None:
        """Every item waiting (but ``but``) due at ``now``: after an outage each kept its own
        backoff, and results came in after newer ones, up to 5 minutes late."""
        waiting = self.items()
        with self._lock:
            for item in waiting:
                if item.id not in but and item.next_attempt > now and self._object_path(item).exists():
                    item.next_attempt = now
                    write_private(self._state_path(item), _state_bytes(item))
        self._wake.set()

    def next_due(self) -> float | None:
        """When the next item is due (time.time()), or None when the outbox is empty."""
        items = self.items()
        return min(item.next_attempt for item in items) if items else None

    def run(self, stop: threading.Event, idle: float = 1.0) -> None:
        """Send until ``stop`` is set, sleeping until the next item is due (or something is put).
        A start tries everything waiting at once, oldest first: a restart is a retry."""
        try:
            self._due_now(set(), time.time())
        except OSError:
            log.exception("outbox: could not read what is waiting")
        while not stop.is_set():
            due, stalled = None, True
            try:
                report = self.send_due()
                due, stalled = self.next_due(), bool(report.failed) and not report.sent
            except Exception:  # a bug in one pass must not end the sending for good
                log.exception("outbox: sending failed")
            # After a pass that sent nothing, never sooner than ``idle``: a backoff the disk could
            # not keep would otherwise be retried twenty times a second.
            wait = idle if due is None or stalled else min(idle, max(0.05, due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    # ---------------------------------------------------------------- files
    def _object_path(self, item: OutboxItem) -> Path:
        return self.folder / f"{item.id}.dcm"

    def _state_path(self, item: OutboxItem) -> Path:
        return self.folder / f"{item.id}.json"

    def _read_state(self, item_id: str) -> OutboxItem:
        try:
            data = json.loads((self.folder / f"{item_id}.json").read_text(encoding="utf-8"))
            return OutboxItem(**data)
        except (OSError, ValueError, TypeError):
            ds = pydicom.dcmread(self.folder / f"{item_id}.dcm", stop_before_pixels=True, force=True)
            if not ds.get("SOPInstanceUID"):
                raise ValueError("not a DICOM object LungLens made (no SOP Instance UID)") from None
            what = item_id.rsplit("-", 1)[-1]
            return OutboxItem(id=item_id, sop_class_uid=str(ds.get("SOPClassUID", "")),
                              sop_instance_uid=str(ds.get("SOPInstanceUID", "")), what=what)


def _state_bytes(item: OutboxItem) -> bytes:
    return json.dumps(asdict(item), indent=1).encode("utf-8")


def c_store_sender(calling_aet: str, timeout: float = 10.0) -> Sender:
    """A sender that C-STOREs the files over one association with pynetdicom; returns
    {item id: error} for those not stored (all of them when the PACS cannot be reached)."""

    def send(destination: Destination, batch: list[tuple[OutboxItem, Path]]) -> dict[str, str]:
        from pynetdicom import AE
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        ae = AE(ae_title=calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.connection_timeout = timeout
        for sop_class in sorted({item.sop_class_uid for item, _ in batch}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        errors: dict[str, str] = {}
        assoc = ae.associate(destination.host, destination.port, ae_title=destination.aet)
        if not assoc.is_established:
            why = ("the PACS rejected the association (is LungLens's AE title known to it, and its own right?)"
                   if assoc.is_rejected else "the PACS did not answer (is it running, and is the address right?)")
            return {item.id: why for item, _ in batch}
        attempted: set[str] = set()
        try:
            for item, path in batch:
                attempted.add(item.id)
                try:
                    ds = pydicom.dcmread(path)
                    status = assoc.send_c_store(ds)
                except Exception as exc:  # noqa: BLE001 -- one object's fault is its own, not the others'
                    errors[item.id] = f"{type(exc).__name__}: {exc}"
                    continue
                code = getattr(status, "Status", None)
                if code not in STORED_STATUSES:
                    errors[item.id] = "no answer" if code is None else f"C-STORE status 0x{code:04X}"
                if not assoc.is_established:
                    break
        finally:
            if assoc.is_established:
                assoc.release()
        for item, _ in batch:
            if item.id not in attempted:
                errors[item.id] = "the association ended before it was sent"
        return errors

    return send
