"""The persistent outbox (inference/outbox.py): results wait in private files until the PACS
has them, attempts back off, and nothing is lost across restarts or while the PACS is down --
against a DCMTK ``storescp`` and an Orthanc started by the tests on loopback ports."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pydicom
import pytest

from inference.audit import AuditLog
from inference.dicom_sr import build_sr
from inference.engine import Engine
from inference.loaders import load_study
from inference.node_analysis import audit_delivery
from inference.outbox import Backoff, Destination, DestinationError, Outbox, OutboxItem, c_store_sender
from tests.conftest import REPO
from tests.fixtures.dicom_peers import Orthanc, StoreScp, free_port, need, wait_for

SOURCE = REPO / "resources" / "samples" / "sample-pneumonia.dcm"


@pytest.fixture(scope="module")
def sr() -> pydicom.Dataset:
    """A real SR of the sample film (the outbox's usual cargo)."""
    engine = Engine.load(provider="cpu", threads=1)
    study = load_study(SOURCE)
    return build_sr(study, engine.predict(study))


def test_destinations_are_parsed_strictly() -> None:
    assert Destination.parse("PACS@127.0.0.1:104") == Destination("PACS", "127.0.0.1", 104)
    assert Destination.parse("ORTHANC@pacs.local:4242").host == "pacs.local"
    assert Destination.parse("A@[::1]:11112") == Destination("A", "::1", 11112)
    assert str(Destination("A", "::1", 11112)) == "A@[::1]:11112"
    for bad in ("PACS", "PACS@host", "@host:104", "PACS@host:0", "PACS@host:70000", "WAY_TOO_LONG_AE_TITLE@h:1"):
        with pytest.raises(DestinationError):
            Destination.parse(bad)


def test_backoff_doubles_up_to_its_maximum() -> None:
    b = Backoff(first=5, factor=2, maximum=60)
    assert [b.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [5, 10, 20, 40, 60, 60]


class FakePacs:
    """A sender that fails while ``down``; records what it stored."""

    def __init__(self) -> None:
        self.down = True
        self.stored: list[str] = []

    def __call__(self, destination: Destination, batch: list[tuple[OutboxItem, Path]]) -> dict[str, str]:
        if self.down:
            return {item.id: "no answer" for item, _ in batch}
        self.stored.extend(pydicom.dcmread(path).SOPInstanceUID for _, path in batch)
        return {}


def test_a_result_waits_privately_backs_off_and_survives_a_restart(sr: pydicom.Dataset, tmp_path: Path) -> None:
    pacs, where = FakePacs(), Destination("PACS", "127.0.0.1", 1)
    box = Outbox(tmp_path / "outbox", where, sender=pacs, backoff=Backoff(first=10, maximum=100))
    item = box.put(sr, "sr")
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.suffix for f in files] == [".dcm", ".json"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700

    report = box.send_due()
    assert report.failed and not report.sent and len(box) == 1
    waiting = box.items()[0]
    assert waiting.attempts == 1 and waiting.last_error == "no answer"
    assert box.send_due().failed == []  # not due yet: 10 s backoff

    # A restart: a new outbox on the same folder knows the attempts and the next attempt.
    pacs.down = False
    again = Outbox(tmp_path / "outbox", where, sender=pacs, backoff=Backoff(first=10, maximum=100))
    assert [(i.id, i.attempts) for i in again.items()] == [(item.id, 1)]
    assert again.send_due(now=waiting.next_attempt + 1).sent[0].id == item.id
    assert pacs.stored == [sr.SOPInstanceUID] and len(again) == 0
    assert list((tmp_path / "outbox").iterdir()) == []


def test_once_the_pacs_takes_objects_again_everything_waiting_goes_oldest_first(sr: pydicom.Dataset,
                                                                              tmp_path: Path) -> None:
    """After an outage each result kept its own backoff: a new result went at once while older
    ones waited up to 5 minutes more."""
    pacs, where = FakePacs(), Destination("PACS", "127.0.0.1", 1)
    box = Outbox(tmp_path / "outbox", where, sender=pacs, backoff=Backoff(first=300, maximum=300))
    older = box.put(sr, "sr")
    assert box.send_due().failed  # the PACS is down: next try in 300 s
    pacs.down = False
    newer = box.put(sr, "sc")
    assert [i.id for i in box.send_due().sent] == [newer.id]  # due at once, and taken
    assert [i.id for i in box.send_due().sent] == [older.id]  # the one waiting goes next, not in 300 s
    # A restart tries everything waiting at once, whatever its backoff said.
    pacs.down = True
    box.put(sr, "sr")
    box.send_due()
    pacs.down = False
    stop = threading.Event()
    runner = threading.Thread(target=box.run, args=(stop, 0.05))
    runner.start()
    try:
        wait_for(lambda: len(box) == 0, 10, "the restarted outbox to send what waited")
    finally:
        stop.set()
        runner.join(5)


def test_an_unreadable_object_is_set_aside_and_the_others_are_sent(sr: pydicom.Dataset, tmp_path: Path) -> None:
    """One such file (a disk error, a hand-placed file) had stopped every pass and every result behind it."""
    pacs, where = FakePacs(), Destination("PACS", "127.0.0.1", 1)
    pacs.down = False
    box = Outbox(tmp_path / "outbox", where, sender=pacs)
    (tmp_path / "outbox" / "00000000000000000001-sr.dcm").write_bytes(b"not DICOM at all")
    good = box.put(sr, "sr")
    assert [i.id for i in box.send_due().sent] == [good.id] and len(box) == 0
    assert (tmp_path / "outbox" / "unreadable" / "00000000000000000001-sr.dcm").exists()


def test_a_result_that_cannot_be_kept_leaves_nothing_half_written(sr: pydicom.Dataset, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk had left a state file without its object (the object's write failing after
    the state's)."""
    from inference import outbox

    box = Outbox(tmp_path / "outbox", Destination("PACS", "127.0.0.1", 1), sender=FakePacs())
    real = outbox.write_private

    def full(path: Path, data: bytes) -> Path:
        if path.suffix == ".dcm":
            raise OSError(28, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(outbox, "write_private", full)
    with pytest.raises(OSError):
        box.put(sr, "sr")
    assert list((tmp_path / "outbox").iterdir()) == []


def test_pacs_down_then_up_delivers_to_storescp(sr: pydicom.Dataset, tmp_path: Path) -> None:
    port = free_port()
    box = Outbox(tmp_path / "outbox", Destination("PACS", "127.0.0.1", port), calling_aet="LUNGLENS",
                 backoff=Backoff(first=0.1, maximum=0.2), sender=c_store_sender("LUNGLENS", timeout=5))
    box.put(sr, "sr")
    failed = box.send_due().failed  # nobody listening: queued, never lost
    assert failed and "did not answer" in failed[0].last_error and len(box) == 1
    pacs = StoreScp(tmp_path / "pacs", port=port).start()
    try:
        wait_for(lambda: box.send_due().sent or len(box) == 0, 20, "the outbox to deliver")
        assert len(box) == 0
        stored = [pydicom.dcmread(f) for f in wait_for(pacs.files, 10, "the stored file, written whole")]
        assert [ds.SOPInstanceUID for ds in stored] == [sr.SOPInstanceUID]
        assert stored[0].StudyInstanceUID == pydicom.dcmread(SOURCE, stop_before_pixels=True).StudyInstanceUID
    finally:
        pacs.stop()


def test_the_audit_log_records_an_export_when_the_pacs_has_stored_it_not_when_it_is_queued(
        sr: pydicom.Dataset, tmp_path: Path) -> None:
    """It recorded the export when the SR was queued: a PACS down for a day, or an outbox
    emptied by hand, left the audit log saying that a result had left the PC."""
    port = free_port()
    where = Destination("PACS", "127.0.0.1", port)
    audit = AuditLog(tmp_path / "audit.jsonl")
    box = Outbox(tmp_path / "outbox", where, backoff=Backoff(first=0.1, maximum=0.2),
                 sender=c_store_sender("LUNGLENS", timeout=5), on_sent=audit_delivery(audit, where))
    box.put(sr, "sr", "ab" * 32)
    assert box.send_due().failed  # nobody listening
    assert audit.read().entries == []
    pacs = StoreScp(tmp_path / "pacs", port=port).start()
    try:
        wait_for(lambda: box.send_due().sent or len(box) == 0, 20, "the outbox to deliver")
    finally:
        pacs.stop()
    [entry] = audit.read().entries
    assert (entry["event"], entry["what"], entry["format"]) == ("export", "structured_report", "dicom")
    assert entry["destination"] == "PACS@127.0.0.1:%d" % port and entry["pixel_sha256"] == ["ab" * 32]
    assert audit.verify().ok


def test_a_pacs_refusing_the_association_keeps_the_result(sr: pydicom.Dataset, tmp_path: Path) -> None:
    pacs = StoreScp(tmp_path / "pacs", refuse=True).start()
    try:
        box = Outbox(tmp_path / "outbox", Destination("PACS", "127.0.0.1", pacs.port),
                     backoff=Backoff(first=0.1, maximum=0.2), sender=c_store_sender("LUNGLENS", timeout=5))
        box.put(sr, "sr")
        errors = []
        # On a loaded machine storescp sometimes closes the socket before pynetdicom has read its
        # A-ASSOCIATE-RJ ("did not answer"): the result is kept either way, and a later try says why.
        for attempt in range(5):
            time.sleep(0.2 * attempt)
            report = box.send_due(now=time.time() + 1.0)  # past the short back-off: due now
            assert report.failed and len(box) == 1 and not pacs.files()  # never sent, never lost
            errors.append(report.failed[0].last_error)
            if "rejected the association" in errors[-1]:
                break
        assert "rejected the association" in errors[-1], errors
    finally:
        pacs.stop()


@pytest.mark.slow
def test_serve_sends_sr_and_sc_to_orthanc(tmp_path: Path) -> None:
    """lunglens serve -> Orthanc (own config and storage, loopback), read back over its REST API."""
    from tests.fixtures.dicom_peers import Serve, store

    need("storescu")
    orthanc = Orthanc(tmp_path / "orthanc").start()
    serve = Serve(tmp_path / "data", ["--port", "0", "--send-to", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"])
    try:
        serve.start()
        sent = store(serve.port, [SOURCE], "-xs")  # JPEG lossless SV1, the sample's syntax
        assert sent.returncode == 0, sent.stdout + sent.stderr
        source = pydicom.dcmread(SOURCE, stop_before_pixels=True)
        # The sample is flagged (in scope, above the threshold): an SR and an SC.
        instances = wait_for(lambda: len(orthanc.get("/instances")) == 2 and orthanc.get("/instances"), 60,
                             "the SR and the SC in Orthanc")
        tags = [orthanc.get(f"/instances/{i}/simplified-tags") for i in instances]
        assert sorted(t["Modality"] for t in tags) == ["OT", "SR"]
        assert {t["StudyInstanceUID"] for t in tags} == {source.StudyInstanceUID}
        # The modality sends the film again: the node answers again, and the PACS files the
        # same result once (the same UIDs), not a second copy in the patient's study.
        assert store(serve.port, [SOURCE], "-xs").returncode == 0
        wait_for(lambda: serve.count("sent S") >= 4, 60, "the SR and the SC sent a second time")
        assert sorted(orthanc.get("/instances")) == sorted(instances)
        code, _ = serve.stop()
        assert code == 0
    finally:
        serve.kill()
        orthanc.stop()


@pytest.mark.slow
def test_serve_keeps_results_for_a_pacs_that_is_down_across_a_restart(tmp_path: Path) -> None:
    """PACS down -> the outbox holds the SR through a restart of the node -> PACS up -> delivered."""
    from tests.fixtures.dicom_peers import Serve, store

    need("storescu")
    port = free_port()
    args = ["--port", "0", "--send-to", f"PACS@127.0.0.1:{port}", "--retry-max", "1"]
    serve = Serve(tmp_path / "data", args)
    try:
        serve.start()
        assert store(serve.port, [SOURCE], "-xs").returncode == 0
        wait_for(lambda: serve.count("could not send SR") >= 1, 60, "a failed attempt to send the SR")
        code, _ = serve.stop()
        assert code == 0
    finally:
        serve.kill()
    waiting = sorted((tmp_path / "data" / "node" / "outbox").glob("*.dcm"))
    assert len(waiting) == 2  # the SR and the SC of the flagged sample, kept
    pacs = StoreScp(tmp_path / "pacs", port=port).start()
    again = Serve(tmp_path / "data", args)
    try:
        again.start()
        assert "(2 waiting in the outbox)" in again.log()
        wait_for(lambda: len(pacs.files()) == 2, 60, "the kept results at the PACS")
        wait_for(lambda: not list((tmp_path / "data" / "node" / "outbox").glob("*.dcm")), 10, "an empty outbox")
        modalities = sorted(pydicom.dcmread(f, stop_before_pixels=True).Modality for f in pacs.files())
        assert modalities == ["OT", "SR"]
        assert again.stop()[0] == 0
    finally:
        again.kill()
        pacs.stop()
