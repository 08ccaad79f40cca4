"""``lunglens serve`` as a DICOM node, against real DCMTK peers on loopback ports chosen at run
time: C-ECHO and C-STORE of a JPEG-baseline and a JPEG 2000 film from an allowed AE title, an
unknown AE title refused, the films kept private, analysed into the worklist and the audit log,
an SR for each in its study at a DCMTK ``storescp`` PACS, garbage on the port survived, and
SIGTERM obeyed within seconds."""

from __future__ import annotations

import os
import re
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from desktop.main import main as lunglens
from inference.audit import AuditLog
from inference.dicom_node import (ACSE_TIMEOUT_S, MAX_ASSOCIATIONS, NATIVE_SYNTAXES, REQUEST_DEADLINE_S, STALL_TIMEOUT_S,
                                  BindRefused, check_bind, decodable_syntaxes, is_loopback)
from inference.thumbnail import THUMBNAIL_SIZE
from inference.worklist import Worklist
from tests.conftest import REPO
from tests.fixtures.dicom_factory import write_dicom
from tests.fixtures.dicom_peers import Serve, StoreScp, echo, need, store, wait_for

SAMPLES = REPO / "resources" / "samples"


def test_a_lan_bind_needs_an_allow_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert lunglens(["serve", "--bind", "0.0.0.0"]) == 2
    assert "--allow AET" in capsys.readouterr().err
    assert lunglens(["serve", "--bind", "192.168.1.20", "--send-to", "PACS@pacs"]) == 2  # no port
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    check_bind("0.0.0.0", frozenset({"MODALITY"}))  # allowed with an allow-list
    with pytest.raises(BindRefused):
        check_bind("10.0.0.5", frozenset())


def test_a_profile_or_operating_point_the_node_cannot_use_is_refused_before_it_listens(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(tmp_path / "data"))
    assert lunglens(["serve", "--port", "0", "--profile", str(tmp_path / "none.profile.json")]) == 2
    err = capsys.readouterr().err
    assert "none.profile.json: no such profile" in err and "Traceback" not in err
    assert lunglens(["serve", "--port", "0", "--operating-point", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown operating point 'nope'" in err and "listening" not in err
    assert lunglens(["serve", "--operating-point", "balanced", "--threshold", "0.4"]) == 2  # one or the other


def test_every_syntax_the_loaders_decode_is_accepted_with_uncompressed_fallbacks() -> None:
    offered = decodable_syntaxes()
    assert offered[:len(NATIVE_SYNTAXES)] == list(NATIVE_SYNTAXES)
    for sample in sorted((SAMPLES / "syntaxes").glob("*.dcm")):
        ts = pydicom.dcmread(sample, stop_before_pixels=True).file_meta.TransferSyntaxUID
        assert ts in offered, f"{sample.name}: {ts.name} is decoded by the loaders but not accepted"


@pytest.fixture(scope="module")
def j2k_film(tmp_path_factory: pytest.TempPathFactory, kermany_gray) -> Path:  # type: ignore[no-untyped-def]
    """A real radiograph as a JPEG 2000 (lossy) DX film."""
    return write_dicom(tmp_path_factory.mktemp("films") / "j2k.dcm", kermany_gray, "j2k",
                       tags={"PatientName": "Test^J2K", "AccessionNumber": "J2K1"})


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, StoreScp]]:
    """One node for the module, sending to a storescp PACS, with a hot folder."""
    need("echoscu")
    root = tmp_path_factory.mktemp("node")
    pacs = StoreScp(root / "pacs").start()
    (root / "hot").mkdir()
    serve = Serve(root / "data", ["--port", "0", "--allow", "MODALITY", "OTHER", "--send-to",
                                  f"PACS@127.0.0.1:{pacs.port}", "--hot-folder", str(root / "hot"),
                                  "--settle", "0.5", "--retry-max", "1"])
    try:
        serve.start()
        yield serve, pacs
        code, seconds = serve.stop()
        assert code == 0, serve.log()
        assert seconds < 10
    finally:
        serve.kill()
        pacs.stop()


def test_echo_from_an_allowed_ae_title_succeeds_and_others_are_refused(node: tuple[Serve, StoreScp]) -> None:
    serve, _ = node
    assert echo(serve.port).returncode == 0
    stranger = echo(serve.port, calling="STRANGER")
    assert stranger.returncode != 0 and "Calling AE Title Not Recognized" in stranger.stdout + stranger.stderr
    wrong_node = echo(serve.port, called="NOTLUNGLENS")
    assert wrong_node.returncode != 0 and "Called AE Title Not Recognized" in wrong_node.stdout + wrong_node.stderr
    assert any("deciding with site profile 'LungLens default (site sample)', high sensitivity, threshold" in line
               for line in serve.out.lines)  # which profile and point decide, said at start
    assert wait_for(lambda: serve.count("refused an association") >= 2, 10, "the refusals to be logged")
    assert serve.count("'STRANGER', called AE 'LUNGLENS'): that calling AE title is not allowed") == 1
    assert serve.count("called AE 'NOTLUNGLENS'): this node is 'LUNGLENS'") == 1
    # Every line says when, with the UTC offset: a redirected log is read after the night it covers.
    stamped = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} lunglens serve: ")
    assert serve.log() and all(stamped.match(line) for line in serve.log().splitlines()), serve.log()


def test_jpeg_baseline_and_jpeg2000_films_are_kept_analysed_audited_and_reported(
        node: tuple[Serve, StoreScp], real_dicom: Path, j2k_film: Path) -> None:
    serve, pacs = node
    dsrdump, dciodvfy = need("dsrdump"), need("dciodvfy")
    sent = store(serve.port, [real_dicom], "-xy")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    sent = store(serve.port, [j2k_film], "-xw")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    sources = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(f, stop_before_pixels=True)
                                                     for f in (real_dicom, j2k_film))}

    # Kept exactly as received (compressed), private, in the data folder.
    received = serve.data_dir / "node" / "received"
    for uid, ds in sources.items():
        film = received / f"{uid}.dcm"
        assert film.is_file()
        assert stat.S_IMODE(film.stat().st_mode) == 0o600
        kept = pydicom.dcmread(film, stop_before_pixels=True)
        assert kept.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    for folder in (serve.data_dir, received.parent, received):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    # Analysed into the worklist and the audit log, by the same code as the CLI.
    def stored() -> list:  # type: ignore[type-arg]
        with Worklist(serve.data_dir / "worklist.sqlite3") as worklist:
            return [r for r in worklist.records() if Path(r.study_path).parent == received]
    records = wait_for(lambda: len(stored()) == 2 and stored(), 60, "both films in the worklist")
    assert {Path(r.study_path).stem for r in records} == set(sources)
    assert all(r.thumbnail is not None and max(r.thumbnail.shape) == THUMBNAIL_SIZE for r in records)  # for the window
    audited = [e for e in AuditLog(serve.data_dir / "audit.jsonl").read().entries if e["event"] == "analysis"]
    assert {r.pixel_sha256 for r in records} <= {e["pixel_sha256"] for e in audited}

    # One SR per film at the PACS, in the film's study, referring to the film, valid.
    def reports() -> list[pydicom.Dataset]:
        out = []
        for f in pacs.files():
            ds = pydicom.dcmread(f)
            if ds.Modality == "SR" and ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[
                    0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID in sources:
                out.append(ds)
        return out
    srs = wait_for(lambda: len(reports()) == 2 and reports(), 60, "an SR for each film at the PACS")
    for sr in srs:
        ref = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
        source = sources[ref.ReferencedSOPInstanceUID]
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        assert sr.PatientID == source.PatientID
    for f in pacs.files():
        if pydicom.dcmread(f, stop_before_pixels=True).Modality != "SR":
            continue
        check = subprocess_run([dciodvfy, str(f)])
        assert "Error" not in check, check
        dump = subprocess_run([dsrdump, str(f)])
        assert "Probability of pneumonia" in dump and "Triage result" in dump
    # The overlay's SC goes only with in-scope results at or above the threshold.
    flagged = sum(r.in_scope and r.is_positive for r in records)
    wait_for(lambda: serve.count("sent SC") >= flagged, 30, "the SCs of the flagged films")
    assert not list((serve.data_dir / "node" / "outbox").glob("*.dcm"))
    # Audited once stored, one line per object, naming the film it is the result of.
    exports = [e for e in AuditLog(serve.data_dir / "audit.jsonl").read().entries if e["event"] == "export"]
    assert sorted((e["what"], e["pixel_sha256"][0]) for e in exports if e["pixel_sha256"][0] in
                  {r.pixel_sha256 for r in records}) == sorted(
        [("structured_report", r.pixel_sha256) for r in records]
        + [("secondary_capture", r.pixel_sha256) for r in records if r.in_scope and r.is_positive])
    assert {e["destination"] for e in exports} == {f"PACS@127.0.0.1:{pacs.port}"}


def test_a_film_that_cannot_be_analysed_gets_an_sr_saying_so_and_why(node: tuple[Serve, StoreScp],
                                                                      tmp_path: Path) -> None:
    """The PACS held nothing for such a film, which a reader cannot tell from a result still
    on its way; the reason was only in the node's log."""
    serve, pacs = node
    film = tmp_path / "tiny.dcm"
    write_dicom(film, np.full((1, 1), 5, np.uint16))  # received fine, refused by the loader
    source = pydicom.dcmread(film, stop_before_pixels=True)
    sent = store(serve.port, [film], "-xs")
    assert sent.returncode == 0, sent.stdout + sent.stderr

    def report() -> Path | None:
        for f in pacs.files():
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            if ds.Modality == "SR" and ds.StudyInstanceUID == source.StudyInstanceUID:
                return f
        return None
    sr = wait_for(report, 60, "the SR of the film that could not be analysed")
    ds = pydicom.dcmread(sr)
    assert ds.PatientID == source.PatientID
    ref = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert "Error" not in subprocess_run([need("dciodvfy"), str(sr)])
    dump = subprocess_run([need("dsrdump"), "+Pl", str(sr)])  # long texts whole
    assert "(LL0104,99LUNGLENS,\"Not analysed\")" in dump
    assert "Not analysed: image is too small (1x1 px)" in dump
    assert "Probability of pneumonia" not in dump  # no number where there is none
    assert any("could not analyse" in line and "too small" in line for line in serve.err.lines)
    with Worklist(serve.data_dir / "worklist.sqlite3") as worklist:  # for the window to list
        assert any("too small" in f.reason for f in worklist.failures())


def subprocess_run(argv: list[str]) -> str:
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return run.stdout + run.stderr


def test_a_peer_offering_only_films_the_node_refuses_is_named_in_the_log(
        node: tuple[Serve, StoreScp], tmp_path: Path, kermany_gray) -> None:  # type: ignore[no-untyped-def]
    """The modality reports "no presentation context" and sends nothing; the node's log must
    say what it was offered and why it refused, or the IT person has nothing to go on."""
    serve, _ = node
    ct = write_dicom(tmp_path / "ct.dcm", kermany_gray, tags={"Modality": "CT"})
    ds = pydicom.dcmread(ct)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
    ds.save_as(ct)
    sent = store(serve.port, [ct], "-xs")
    assert sent.returncode != 0 or "no presentation context" in (sent.stdout + sent.stderr).lower()
    assert wait_for(lambda: serve.count("stored nothing; it offered") == 1, 10, "the refusal to be logged")
    line = next(line for line in serve.err.lines if "stored nothing" in line)
    assert "(calling AE 'MODALITY') stored nothing; it offered kinds of object this node refuses: " in line
    assert line.endswith("more (it accepts CR, DX and Secondary Capture images only)")  # storescu offers ~60 kinds
    assert echo(serve.port).returncode == 0  # an echo stores nothing and is refused nothing: not logged
    dx = write_dicom(tmp_path / "dx.dcm", kermany_gray)  # the same offer, and a film stored: not logged
    assert store(serve.port, [dx], "-xs").returncode == 0
    assert wait_for(lambda: serve.count(f"received {pydicom.dcmread(dx).SOPInstanceUID}.dcm"), 10, "the film")
    time.sleep(0.5)
    assert serve.count("stored nothing; it offered") == 1


def test_garbage_and_broken_associations_leave_the_node_running(node: tuple[Serve, StoreScp]) -> None:
    serve, _ = node
    junk = [os.urandom(4096), b"\x01\x00" + struct.pack(">I", 2**31) + b"\x00" * 64, b"GET / HTTP/1.0\r\n\r\n",
            b"\x01\x00\x00\x00\x00\xcd\x00\x01\x00\x00LUNGLENS",  # an association request cut off
            b""]  # connect, then hang up
    for payload in junk:
        with socket.create_connection(("127.0.0.1", serve.port), timeout=5) as s:
            s.sendall(payload)
    assert serve.proc is not None and serve.proc.poll() is None
    assert echo(serve.port).returncode == 0  # at once: they hold no more than a few of the slots
    # Bytes that are no DICOM message are said (they left no trace); random bytes may begin
    # like a message by chance, the HTTP request cannot.
    wait_for(lambda: serve.count("that sent something that is not a DICOM message") >= 1, 10, "the log to name them")
    # A bounded flood takes every slot for at most the ACSE timeout, then the node answers again.
    for _ in range(MAX_ASSOCIATIONS + 4):
        with socket.create_connection(("127.0.0.1", serve.port), timeout=5):
            pass
    wait_for(lambda: echo(serve.port).returncode == 0, ACSE_TIMEOUT_S + 10, "the node to answer after a flood", 0.5)
    assert serve.proc.poll() is None


def test_connections_that_stall_mid_message_are_dropped_and_never_hold_a_stop(tmp_path: Path) -> None:
    """Each of these sends the start of an association request that announces 64 KB, then
    nothing, and stays open: enough of them took every association for as long as they liked
    (the X-ray unit refused as 'Local Limit Exceeded'), and SIGTERM waited for them."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    serve = Serve(tmp_path / "data", ["--port", "0"])
    held: list[socket.socket] = []
    idle = None
    try:
        serve.start()
        for _ in range(MAX_ASSOCIATIONS + 2):
            conn = socket.create_connection(("127.0.0.1", serve.port), timeout=5)
            conn.sendall(b"\x01\x00\x00\x00\xff\xff")
            held.append(conn)
        wait_for(lambda: echo(serve.port).returncode == 0, STALL_TIMEOUT_S + 15, "the node to answer again", 0.5)
        assert serve.count(f"all {MAX_ASSOCIATIONS} associations are in use") >= 1  # said as it is
        # A stop with a stalled connection and an idle association still open: within seconds.
        conn = socket.create_connection(("127.0.0.1", serve.port), timeout=5)
        conn.sendall(b"\x01\x00\x00\x00\xff\xff")
        held.append(conn)
        ae = AE(ae_title="ANY")
        ae.add_requested_context(Verification)
        idle = ae.associate("127.0.0.1", serve.port, ae_title="LUNGLENS")
        assert idle.is_established
        code, seconds = serve.stop()
        assert code == 0 and seconds < 10, serve.log()
    finally:
        for conn in held:
            conn.close()
        if idle is not None and idle.is_established:
            idle.abort()
        serve.kill()


def test_connections_that_trickle_a_byte_at_a_time_are_dropped(tmp_path: Path) -> None:
    """A byte every two seconds resets every per-read timer: twenty such connections held all
    the associations for as long as they trickled, and the modality was refused."""
    import threading

    serve = Serve(tmp_path / "data", ["--port", "0"])
    stop = threading.Event()
    ended: list[float] = []

    def trickle() -> None:
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", serve.port), timeout=5) as conn:
                conn.sendall(b"\x01\x00" + struct.pack(">I", 1000))  # an association request of 1000 bytes...
                while not stop.wait(2.0):
                    conn.sendall(b"\x00")  # ...that never ends
        except OSError:
            pass
        ended.append(time.monotonic() - t0)

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(MAX_ASSOCIATIONS + 4)]
    try:
        serve.start()
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        wait_for(lambda: echo(serve.port).returncode == 0, REQUEST_DEADLINE_S + 10, "the node to answer again", 0.5)
        wait_for(lambda: len(ended) == len(threads), REQUEST_DEADLINE_S + 10, "every trickle to be dropped")
        assert max(ended) < REQUEST_DEADLINE_S + 8
        assert serve.count("had not asked for an association within 10 s") >= MAX_ASSOCIATIONS
    finally:
        stop.set()
        serve.kill()


def test_a_film_in_the_hot_folder_is_analysed_once(node: tuple[Serve, StoreScp], tmp_path: Path) -> None:
    serve, _ = node
    hot = Path(serve.args[serve.args.index("--hot-folder") + 1])
    film = hot / "dropped.png"
    film.write_bytes((SAMPLES / "sample-pneumonia.png").read_bytes())
    before = film.stat()
    wait_for(lambda: serve.count(f"analysed {film} (hot-folder)") == 1, 30, "the hot-folder film")
    time.sleep(2.0)  # several more polls
    assert serve.count("dropped.png (hot-folder)") == 1
    # The log line carries the result's warnings, as every other output does (a PNG has no age).
    assert serve.count("[Small image (224x224 px): detail may be lost.; Patient age not recorded") == 1
    assert sorted(p.name for p in hot.iterdir()) == ["dropped.png"]
    assert film.stat().st_mtime_ns == before.st_mtime_ns


def test_an_old_cds_film_without_file_meta_and_a_japanese_name_reaches_the_pacs_and_the_node_goes_on(
        node: tuple[Serve, StoreScp], kermany_gray: np.ndarray) -> None:
    """A film with no preamble and no file meta (an old CD's export) is read by the loader; its
    SR had read the file again without that leniency, and the error stopped all analysis in
    the node for good, which still answered C-STORE. A header in the Japanese character set
    (ISO 2022 IR 87) gave no SR and no capture at all."""
    serve, pacs = node
    hot = Path(serve.args[serve.args.index("--hot-folder") + 1])
    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    film = write_dicom(hot.parent / "old-cd.dcm", kermany_gray, "implicit", no_file_meta=True,
                       tags={"SpecificCharacterSet": ["", "ISO 2022 IR 87"], "PatientName": name,
                             "PatientID": "OLDCD1"})
    film.rename(hot / "old-cd.dcm")
    wait_for(lambda: serve.count(f"analysed {hot / 'old-cd.dcm'} (hot-folder)") == 1, 30, "the old CD's film")

    def sr() -> pydicom.Dataset | None:
        return next((ds for ds in map(pydicom.dcmread, pacs.files())
                     if ds.Modality == "SR" and ds.PatientID == "OLDCD1"), None)
    report = wait_for(sr, 30, "its SR at the PACS")
    assert str(report.PatientName) == name and report.SpecificCharacterSet == "ISO_IR 192"
    assert serve.count("could not be queued") == 0
    (hot / "after.png").write_bytes((SAMPLES / "sample-normal.png").read_bytes())
    wait_for(lambda: serve.count(f"analysed {hot / 'after.png'} (hot-folder)") == 1, 30, "the next film")


def test_its_own_secondary_capture_routed_back_is_taken_not_analysed(node: tuple[Serve, StoreScp],
                                                                     tmp_path: Path) -> None:
    """A PACS that routes every new object back had had the heat-map picture analysed as a film,
    and a "Not reliable ... 96 %" SR filed in the patient's study."""
    from inference.dicom_sc import write_secondary_capture
    from inference.engine import Engine
    from inference.loaders import load_study

    serve, _ = node
    study = load_study(SAMPLES / "sample-pneumonia.dcm")
    capture = write_secondary_capture(study, Engine.load(provider="cpu", threads=1).predict(study),
                                      tmp_path / "capture.dcm")
    uid = pydicom.dcmread(capture, stop_before_pixels=True).SOPInstanceUID
    sent = store(serve.port, [capture], "-xe")  # explicit VR little endian
    assert sent.returncode == 0, sent.stdout + sent.stderr
    wait_for(lambda: serve.count(f"received {uid}.dcm, LungLens's own Secondary Capture") == 1, 30,
             "the capture to be taken")
    time.sleep(1.0)
    assert serve.count(f"analysed {uid}.dcm") == 0 and serve.count(f"could not analyse {uid}.dcm") == 0


def test_a_read_only_data_folder_stops_the_node_at_start_saying_why(tmp_path: Path) -> None:
    """It had crashed with a traceback (a folder left 0755 could not be tightened), or said
    "ready", answered C-ECHO and then refused every film."""
    from tests.inference.test_worklist_safety import _can_mount_read_only

    reason = _can_mount_read_only()
    if reason:
        pytest.skip(f"a read-only mount is needed (as root in CI, chmod does not stop writes): {reason}")
    data = tmp_path / "data"
    (data / "node" / "received").mkdir(parents=True)
    (data / "node").chmod(0o755)  # as an older LungLens or a lax umask left it
    script = (f"mount --bind {data} {data} && mount -o remount,ro,bind {data} {data} && "
              f"exec {sys.executable} -m desktop.main serve --port 0")
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "LUNGLENS_DATA_DIR": str(data)})
    assert run.returncode == 1, run.stdout + run.stderr
    said = run.stdout + run.stderr
    assert f"cannot keep received films in {data / 'node'} (Read-only file system): the node did not start" in said
    assert "Traceback" not in said and "ready" not in said


def test_the_hot_folder_log_names_films_by_their_whole_path(node: tuple[Serve, StoreScp]) -> None:
    """Each child's folder of an export often holds a file of the same name: by its base name
    alone the log could not say whose film failed."""
    serve, _ = node
    hot = Path(serve.args[serve.args.index("--hot-folder") + 1])
    for child in ("child-a", "child-b"):
        (hot / child).mkdir()
    (hot / "child-a" / "IM-0001-0001.png").write_bytes((SAMPLES / "sample-normal.png").read_bytes())
    (hot / "child-b" / "IM-0001-0001.png").write_bytes(b"%PDF-1.4 not a film")
    good, bad = hot / "child-a" / "IM-0001-0001.png", hot / "child-b" / "IM-0001-0001.png"
    wait_for(lambda: serve.count(f"analysed {good} (hot-folder): ") == 1, 30, "the readable film")
    line = wait_for(lambda: next((x for x in serve.err.lines if f"could not analyse {bad} (hot-folder): " in x), None),
                    30, "the unreadable film")
    assert "IM-0001-0001.png:" not in line.split("(hot-folder): ")[1]  # the reason, not the name again


def test_sigterm_stops_the_node_within_seconds_and_parked_films_are_analysed_next_time(
        tmp_path: Path, j2k_film: Path) -> None:
    data = tmp_path / "data"
    received, pending = data / "node" / "received", data / "node" / "pending"
    received.mkdir(parents=True)
    pending.mkdir()
    uid = str(pydicom.dcmread(j2k_film, stop_before_pixels=True).SOPInstanceUID)
    (received / f"{uid}.dcm").write_bytes(j2k_film.read_bytes())
    (pending / f"{uid}.dcm.pending").write_bytes(b"")
    serve = Serve(data, ["--port", "0"]).start()
    try:
        wait_for(lambda: serve.count(f"analysed {uid}.dcm") == 1, 30, "the parked film to be analysed")
        assert not (pending / f"{uid}.dcm.pending").exists()
        assert echo(serve.port, calling="ANYONE").returncode == 0  # loopback without --allow: any AE title
        code, seconds = serve.stop()
    finally:
        serve.kill()
    assert code == 0 and seconds < 10, serve.log()
    assert "stopped (1 analysed, 0 parked" in serve.log()


def test_received_films_are_deleted_after_the_days_asked_for_once_analysed(tmp_path: Path) -> None:
    """They piled up in the data folder for ever, each with the patient's whole header: a clinic
    can now say how long to keep them (the results stay in the worklist, the log and the PACS)."""
    from inference.dicom_node import NodeFolders

    folders = NodeFolders(tmp_path / "unit" / "node")
    old, fresh, waiting = (folders.received / f"1.2.{i}.dcm" for i in range(3))
    for film in (old, fresh, waiting):
        film.write_bytes(b"DICM")
    (folders.pending / f"{waiting.name}.pending").write_bytes(b"")
    three_days_ago = time.time() - 3 * 86400
    for film in (old, waiting):
        os.utime(film, (three_days_ago, three_days_ago))
    assert folders.expire(30) == 0
    assert folders.expire(2) == 1 and not old.exists() and fresh.exists() and waiting.exists()  # pending: kept

    data = tmp_path / "data"
    served = NodeFolders(data / "node").received / "1.2.9.dcm"
    served.write_bytes(b"DICM")
    os.utime(served, (three_days_ago, three_days_ago))
    serve = Serve(data, ["--port", "0", "--keep-received", "2"])
    try:
        serve.start()
        wait_for(lambda: serve.count("deleted 1 received film kept over 2 days (--keep-received)"), 20,
                 "the old film to be deleted")
    finally:
        serve.stop()
    assert not served.exists()
