"""LungLens as a DICOM node: a Verification and Storage SCP (pynetdicom) for chest films.

It accepts CR, DX (for presentation and for processing) and Secondary Capture images in every
transfer syntax the loaders decode -- the compressed ones a modality or PACS prefers, and the
uncompressed ones any SCU can fall back to -- and keeps each film, exactly as received, in
the private data folder (0600), where the analysis thread (:mod:`inference.node_analysis`)
picks it up. The C-STORE is answered as soon as the file is safely written, not after the
analysis, so a modality never waits for the model.

Who may connect: the node listens on loopback unless told otherwise, answers only to its
own AE title, and with an allow-list only to those calling AE titles; a node on the LAN must
have one (:func:`check_bind`). What pynetdicom cannot parse (garbage bytes, a half-open
association) ends that association only.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.pixels import get_decoder
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

VERIFICATION = UID("1.2.840.10008.1.1")

from .dicom_sc import MANUFACTURER
from .userdirs import data_dir, private_dir, write_private

log = logging.getLogger("lunglens.serve")

DEFAULT_PORT = 11112
DEFAULT_AET = "LUNGLENS"
ACSE_TIMEOUT_S = 5.0  # from connecting to the association request: instant for any real SCU
REQUEST_DEADLINE_S = 10.0  # a connection not associated by then is closed, however it trickles
STALL_TIMEOUT_S = 10.0  # a peer that stops in the middle of a message: on a LAN, bytes follow in ms
IDLE_TIMEOUT_S = 30.0  # an association with nothing more to say (an SCU that forgot to release)
MAX_ASSOCIATIONS = 16
STORAGE_CLASSES: tuple[UID, ...] = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
)
# Uncompressed first: every SCU can fall back to them.
NATIVE_SYNTAXES: tuple[UID, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                                    ExplicitVRBigEndian)
# Status codes (PS3.4 B.2.3, C.4.2.1.4): success; out of resources; cannot understand.
SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class BindRefused(ValueError):
    """A bind address the node will not listen on as configured (see :func:`check_bind`)."""


def decodable_syntaxes() -> list[UID]:
    """The transfer syntaxes offered: the native ones, then every compressed syntax whose
    decoder is installed (the loaders decode through pydicom's plugins)."""
    from pydicom.uid import (HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL, JPEG2000TransferSyntaxes,
                             JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, RLELossless)

    compressed = [*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes, *JPEG2000TransferSyntaxes,
                  HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K, RLELossless]
    out = list(NATIVE_SYNTAXES)
    for ts in compressed:
        try:
            if get_decoder(ts).is_available and ts not in out:
                out.append(ts)
        except NotImplementedError:
            continue
    return out


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP or a host name) is this machine only."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def check_bind(address: str, allowed: frozenset[str]) -> None:
    """Refuse a bind on the LAN without an allow-list of calling AE titles: any machine that
    reaches the port could otherwise push films into the worklist."""
    if not is_loopback(address) and not allowed:
        raise BindRefused(f"--bind {address} is reachable from other machines: give the calling AE titles "
                          "allowed to send with --allow AET...")


@dataclass(frozen=True)
class NodeConfig:
    """How the node listens."""

    bind: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: any free port (see DicomNode.address)
    aet: str = DEFAULT_AET
    allowed: frozenset[str] = field(default_factory=frozenset)  # calling AE titles; empty: any (loopback only)


@dataclass(frozen=True)
class NodeFolders:
    """Where received films and their pending markers are kept, inside the data folder."""

    root: Path

    @classmethod
    def default(cls) -> NodeFolders:
        return cls(data_dir() / "node")

    def unwritable(self) -> str:
        """Why films cannot be kept here ("" when they can): a node on a read-only data folder
        had said "ready" and answered C-ECHO, then refused every film it was sent."""
        try:
            probe = self.received / f".write-test-{os.getpid()}"
            write_private(probe, b"")
            probe.unlink()
        except OSError as exc:
            return exc.strerror or str(exc)
        return ""

    def _sub(self, name: str) -> Path:
        private_dir(self.root)  # mkdir's parents would get the umask's mode
        return private_dir(self.root / name)

    @property
    def received(self) -> Path:
        return self._sub("received")

    @property
    def pending(self) -> Path:
        return self._sub("pending")

    @property
    def outbox(self) -> Path:
        return self._sub("outbox")

    def parked(self) -> list[tuple[Path, Path]]:
        """(film, marker) of every received film not analysed yet (e.g. the node stopped first)."""
        out = []
        for marker in sorted(self.pending.glob("*.pending")):
            film = self.received / marker.name.removesuffix(".pending")
            if film.is_file():
                out.append((film, marker))
            else:
                marker.unlink(missing_ok=True)
        return out

    def expire(self, days: float, now: float | None = None) -> int:
        """Delete the received films kept longer than ``days`` that have been analysed (those
        still pending stay); returns how many. Their results stay in the worklist, the audit log
        and the PACS; the window can no longer show the film itself."""
        cutoff = (time.time() if now is None else now) - days * 86400
        pending = {m.name.removesuffix(".pending") for m in self.pending.glob("*.pending")}
        removed = 0
        for film in self.received.glob("*.dcm"):
            try:
                if film.name not in pending and film.stat().st_mtime < cutoff:
                    film.unlink()
                    removed += 1
            except OSError:
                continue  # gone meanwhile, or not ours to delete: tried again next time
        return removed


Received = Callable[[Path, Path], None]  # (film, pending marker)


class DicomNode:
    """The SCP; :meth:`start` listens in the background, :meth:`stop` closes the port."""

    def __init__(self, config: NodeConfig, folders: NodeFolders, on_received: Received) -> None:
        check_bind(config.bind, config.allowed)
        self.config = config
        self.folders = folders
        self._on_received = on_received
        self._server: object | None = None
        self._lock = threading.Lock()
        self._storing: set[int] = set()  # associations (by id) that have stored a film
        self._not_dicom: set[int] = set()  # connections (by association id) that sent bytes that are not DICOM
        self.received = 0

    def start(self) -> tuple[str, int]:
        """Listen; returns the address really bound (the port chosen when it was 0). Raises
        OSError when the port cannot be bound (in use, no permission)."""
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.config.aet)
        ae.require_called_aet = True  # an association meant for another node is refused
        if self.config.allowed:
            ae.require_calling_aet = sorted(self.config.allowed)
        # A connection that never sends its association request (a port scan, garbage, a peer
        # that died) holds one of the associations until the ACSE timeout: keep that short and
        # the pool large enough that a few of them never lock out the X-ray unit.
        ae.acse_timeout = ACSE_TIMEOUT_S
        ae.network_timeout = IDLE_TIMEOUT_S
        ae.dimse_timeout = 60
        ae.maximum_associations = MAX_ASSOCIATIONS
        ae.add_supported_context(VERIFICATION)
        syntaxes = decodable_syntaxes()
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, syntaxes)
        handlers = [(evt.EVT_C_ECHO, self._on_echo), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_REJECTED, self._on_rejected), (evt.EVT_CONN_CLOSE, self._on_closed),
                    (evt.EVT_CONN_OPEN, self._on_connected), (evt.EVT_FSM_TRANSITION, self._on_transition)]
        self._server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        host, port = self._server.server_address[:2]  # type: ignore[attr-defined]
        return str(host), int(port)

    def stop(self) -> None:
        """Close the port and end open associations at once: closing the server waits for
        every association's thread, and one held open by a peer (idle, or stalled mid-message)
        would hold the stop for as long as the peer likes."""
        if self._server is not None:
            for assoc in list(self._server.active_associations):  # type: ignore[attr-defined]
                _shut(assoc)
                assoc.kill()
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server = None

    # ---------------------------------------------------------------- handlers
    def _on_connected(self, event: object) -> None:
        """Bound how long a connection may take, so that a few can never lock the X-ray unit out.

        A connection that stalls in the middle of a message is closed after
        :data:`STALL_TIMEOUT_S` (pynetdicom reads a message to its end without a time limit).
        One that never stalls but trickles a byte every few seconds resets that timer and
        pynetdicom's ACSE timeout too; so any connection not associated within
        :data:`REQUEST_DEADLINE_S` is closed (twenty such connections held every slot)."""
        assoc = event.assoc  # type: ignore[attr-defined]
        try:
            assoc.dul.socket.socket.settimeout(STALL_TIMEOUT_S)
        except (AttributeError, OSError):
            log.debug("could not limit a connection's stall time", exc_info=True)
        timer = threading.Timer(REQUEST_DEADLINE_S, self._close_if_unassociated, args=(assoc,))
        timer.daemon = True
        timer.start()

    def _close_if_unassociated(self, assoc: object) -> None:
        if assoc.is_established or not assoc.is_alive():  # type: ignore[attr-defined]
            return
        peer = assoc.requestor  # type: ignore[attr-defined]
        log.warning("closed a connection from %s:%s that had not asked for an association within %.0f s",
                    peer.address, peer.port, REQUEST_DEADLINE_S)
        _shut(assoc)
        assoc.kill()  # type: ignore[attr-defined]

    def _on_echo(self, event: object) -> int:
        return SUCCESS

    def _on_rejected(self, event: object) -> None:
        """Say why, as pynetdicom decided it (``acse._negotiate_as_acceptor``): an IT person
        chasing a refused X-ray unit must not be sent to the AE titles when the node was full."""
        requestor = event.assoc.requestor  # type: ignore[attr-defined]
        called = str(getattr(requestor.primitive, "called_ae_title", "") or "").strip()
        if called != self.config.aet:
            why = f"this node is {self.config.aet!r}"
        elif self.config.allowed and requestor.ae_title not in self.config.allowed:
            why = "that calling AE title is not allowed"
        else:
            why = f"all {MAX_ASSOCIATIONS} associations are in use"
        log.warning("refused an association from %s:%s (calling AE %r, called AE %r): %s", requestor.address,
                    requestor.port, requestor.ae_title, called, why)

    def _on_transition(self, event: object) -> None:
        """Note a peer whose bytes are not a DICOM message (the state machine's Evt19), so that
        its going is logged: a modality set up for DICOM over TLS, or a web browser, pointed
        at the port otherwise left no trace at all, and the IT person had nothing to go on."""
        if event.fsm_event == "Evt19":  # type: ignore[attr-defined]
            with self._lock:
                self._not_dicom.add(id(event.assoc))  # type: ignore[attr-defined]

    def _on_closed(self, event: object) -> None:
        """Name what a peer offered and the node refused, when it went away having stored nothing.

        The modality then reports "no presentation context" and sends nothing, and without
        this line the node's log said nothing at all. A peer that stored films is not logged,
        however much else it offered (a PACS proposes every storage class it knows)."""
        assoc = event.assoc  # type: ignore[attr-defined]
        with self._lock:
            stored = id(assoc) in self._storing
            self._storing.discard(id(assoc))
            not_dicom = id(assoc) in self._not_dicom
            self._not_dicom.discard(id(assoc))
        requestor = assoc.requestor
        if not_dicom:
            log.warning("closed a connection from %s:%s that sent something that is not a DICOM message it could "
                        "read (a client using TLS, or HTTP? this node speaks DICOM without TLS)",
                        requestor.address, requestor.port)
        refused = sorted({UID(str(cx.abstract_syntax)).name for cx in assoc.rejected_contexts})
        if stored or not refused:
            return
        named = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
        log.warning("%s:%s (calling AE %r) stored nothing; it offered kinds of object this node refuses: %s "
                    "(it accepts CR, DX and Secondary Capture images only)",
                    requestor.address, requestor.port, requestor.ae_title, named)

    def _on_store(self, event: object) -> int:
        """Keep the film as received (0600) with a pending marker, then hand it to the analysis."""
        try:
            sop_instance = str(event.request.AffectedSOPInstanceUID)  # type: ignore[attr-defined]
            data = event.encoded_dataset(include_meta=True)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - whatever a broken request raises, answer it
            log.warning("could not read a C-STORE request: %s", exc)
            return CANNOT_UNDERSTAND
        name = f"{sop_instance}.dcm" if _UID.fullmatch(sop_instance) and len(sop_instance) <= 64 else None
        if name is None:
            log.warning("refused a C-STORE with an invalid SOP Instance UID %r", sop_instance[:80])
            return CANNOT_UNDERSTAND
        if _made_here(event):  # a PACS routing everything back: taken, not analysed as a film
            log.info("received %s, LungLens's own Secondary Capture, from %s: not analysed", name,
                     event.assoc.requestor.ae_title)  # type: ignore[attr-defined]
            with self._lock:
                self._storing.add(id(event.assoc))  # type: ignore[attr-defined]
            return SUCCESS
        film = self.folders.received / name
        marker = self.folders.pending / f"{name}.pending"
        try:
            with self._lock:
                write_private(film, data)
                write_private(marker, b"")
                self._storing.add(id(event.assoc))  # type: ignore[attr-defined]
        except OSError as exc:
            log.error("could not keep a received film (%s): %s", name, exc)
            with self._lock:  # a film was offered: not "it offered kinds of object this node refuses"
                self._storing.add(id(event.assoc))  # type: ignore[attr-defined]
            return OUT_OF_RESOURCES
        calling = event.assoc.requestor.ae_title  # type: ignore[attr-defined]
        log.info("received %s from %s", name, calling)
        self.received += 1
        self._on_received(film, marker)
        return SUCCESS


def _shut(assoc: object) -> None:
    """Wake a reader blocked in the middle of a message, so that its thread can end."""
    try:
        assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        pass  # already closed


@dataclass(frozen=True)
class EchoResult:
    """The answer to a C-ECHO: Settings' "Test connection" shows it as it is."""

    ok: bool
    message: str
    milliseconds: float


def echo(host: str, port: int, called_aet: str, calling_aet: str = DEFAULT_AET, timeout: float = 5.0) -> EchoResult:
    """C-ECHO ``called_aet`` at ``host:port`` (blocking for at most about ``timeout`` seconds:
    call it off the GUI thread)."""
    import time

    from pynetdicom import AE

    t0 = time.perf_counter()
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(host, port, ae_title=called_aet)
    ms = (time.perf_counter() - t0) * 1000.0
    if not assoc.is_established:
        if assoc.is_rejected:
            return EchoResult(False, f"{called_aet} at {host}:{port} refused the association: check both AE titles "
                                     "(is LungLens's known to it?)", ms)
        return EchoResult(False, f"no DICOM answer from {host}:{port}: is the PACS running, and the address right?",
                          ms)
    try:
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    ms = (time.perf_counter() - t0) * 1000.0
    code = getattr(status, "Status", None)
    if code == SUCCESS:
        return EchoResult(True, f"{called_aet} at {host}:{port} answered the C-ECHO in {ms:.0f} ms", ms)
    return EchoResult(False, f"{called_aet} at {host}:{port} answered the C-ECHO with status "
                             f"{'none' if code is None else f'0x{code:04X}'}", ms)


def _made_here(event: object) -> bool:
    """A Secondary Capture LungLens made (its heat-map picture), sent back by a PACS that routes
    every new object: analysed as a film, it had put a "Not reliable ... 96 %" SR in the study."""
    try:
        # The request names its SOP class: a film (CR, DX) is not decoded a second time to learn it.
        if not str(event.request.AffectedSOPClassUID).startswith("1.2.840.10008.5.1.4.1.1.7"):  # type: ignore[attr-defined]
            return False
        return str(event.dataset.get("Manufacturer", "")) == MANUFACTURER  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 -- a request that cannot be read is kept, and its analysis says why
        return False

