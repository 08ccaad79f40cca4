"""Settings → DICOM node and the status-bar node line (desktop/widgets/qt_dicom_node_settings.py):
options kept in QSettings and checked, a C-ECHO "test connection" against a real DCMTK
``storescp`` that never blocks the GUI thread, and the node (``lunglens serve``) started,
shown and stopped by the window's status line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QProcess

from desktop.widgets.qt_dicom_node_settings import DicomNodePage, NodeOptions, NodeSettings, NodeStatus
from tests.fixtures.dicom_peers import StoreScp, echo, free_port
from tests.conftest import REPO

pytestmark = pytest.mark.gui


def test_options_are_checked_and_kept(qtbot, app_settings) -> None:  # type: ignore[no-untyped-def]
    page = DicomNodePage(app_settings)
    qtbot.addWidget(page)
    assert page.options() == NodeOptions()  # off, port 11112, LUNGLENS, this PC only
    page.lan.setChecked(True)
    assert "list the AE titles" in page.problem.text()
    assert page.apply() is False  # refused: a LAN node without an allow-list
    page.allowed.setText("XRAY1, PACS")
    page.destination.setText("PACS@pacs")
    assert "Destination" in page.problem.text()
    page.destination.setText("PACS@192.168.1.10:104")
    page.enabled.setChecked(True)
    assert page.problem.text() == ""
    assert page.apply() is True and page.apply() is False  # saved once; unchanged the second time
    kept = NodeSettings(app_settings).load()
    assert kept == NodeOptions(True, 11112, "LUNGLENS", True, ["XRAY1", "PACS"], "PACS@192.168.1.10:104")
    assert kept.serve_arguments() == ["serve", "--bind", "0.0.0.0", "--port", "11112", "--aet", "LUNGLENS",
                                      "--allow", "XRAY1", "PACS", "--send-to", "PACS@192.168.1.10:104"]


def test_test_connection_echoes_off_the_gui_thread(qtbot, app_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pacs = StoreScp(tmp_path / "pacs").start()
    try:
        page = DicomNodePage(app_settings)
        qtbot.addWidget(page)
        page.destination.setText(f"PACS@127.0.0.1:{pacs.port}")
        t0 = time.perf_counter()
        page.test_connection()
        assert time.perf_counter() - t0 < 0.5  # returned at once: the C-ECHO runs on the pool
        assert not page.test_button.isEnabled()
        qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=15000)
        assert page.test_result.text().startswith("Connected: PACS at 127.0.0.1")
    finally:
        pacs.stop()
    page.destination.setText(f"PACS@127.0.0.1:{free_port()}")  # nobody there
    page.test_connection()
    qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=15000)
    assert page.test_result.text().startswith("Failed: no DICOM answer")


@pytest.mark.slow
def test_the_status_line_runs_the_node_and_shows_its_outbox(qtbot, app_settings, isolated_user_dirs) -> None:  # type: ignore[no-untyped-def]
    status = NodeStatus(app_settings, poll_ms=200)
    qtbot.addWidget(status)
    assert status.text() == "DICOM node: off" and status.process is None
    port = free_port()
    NodeSettings(app_settings).save(NodeOptions(enabled=True, port=port, destination=f"PACS@127.0.0.1:{free_port()}"))
    status.restart()
    try:
        qtbot.waitUntil(lambda: status.state == "listening", timeout=60000)
        assert status.text() == f"DICOM node: listening on 127.0.0.1:{port} as LUNGLENS · outbox 0"
        assert echo(port, calling="ANY").returncode == 0
        outbox = isolated_user_dirs / "node" / "outbox"
        # A result waiting for the PACS, which is not there: the tooltip says why it waits.
        (outbox / "0001-sr.dcm").write_bytes((REPO / "resources" / "samples" / "sample-pneumonia.dcm").read_bytes())
        qtbot.waitUntil(lambda: status.text().endswith("outbox 1"), timeout=5000)
        qtbot.waitUntil(lambda: "Last try: could not send SR" in status.toolTip(), timeout=20000)
        assert status.toolTip().startswith("1 result waiting to be sent") and "did not answer" in status.toolTip()
        assert "attempt" not in status.toolTip()  # "next in 5 s" would stand still on screen
        (outbox / "0001-sr.dcm").unlink()  # sent: the line follows at its next count
        qtbot.waitUntil(lambda: status.text().endswith("outbox 0"), timeout=5000)

        # A restart (Settings changed the profile or the point) does not wait on the GUI thread:
        # the old node is told to stop and the new one starts, on the same port, once it has gone.
        old = status.process
        status.restart()
        status.restart()  # a second change meanwhile: still one new node, with the latest settings
        assert status.state == "restarting" and status.process is None
        assert old.state() != QProcess.ProcessState.NotRunning  # returned without waiting for it
        qtbot.waitUntil(lambda: status.state == "listening", timeout=60000)
        assert status.process is not old and echo(port, calling="ANY").returncode == 0
    finally:
        status.shutdown()
    assert status.process is None and status.text() == "DICOM node: off"
    assert echo(port, calling="ANY").returncode != 0


@pytest.mark.slow
def test_a_film_sent_to_the_node_shows_up_in_the_window(qtbot, app_settings, request, isolated_user_dirs) -> None:  # type: ignore[no-untyped-def]
    """The X-ray unit sends a film (storescu) to the node the window runs: it is analysed
    into the worklist and listed in the window, with its result. A film the node cannot
    analyse is listed too, as failed, with the reason (it reached only the node's log)."""
    import numpy as np
    import pydicom

    from desktop.models.study_item import Status
    from tests.fixtures.dicom_factory import write_dicom
    from tests.fixtures.dicom_peers import store

    port = free_port()
    NodeSettings(app_settings).save(NodeOptions(enabled=True, port=port, allowed=["XRAY1"]))
    window = request.getfixturevalue("window")  # started the node, as the app does
    qtbot.waitUntil(lambda: window.node_status.state == "listening", timeout=60000)
    film = Path(__file__).resolve().parents[2] / "resources" / "samples" / "sample-pneumonia.dcm"
    tiny = isolated_user_dirs.parent / "tiny.dcm"
    write_dicom(tiny, np.full((1, 1), 5, np.uint16))  # received fine, refused by the loader
    sent = store(port, [film, tiny], "-xs", calling="XRAY1")
    assert sent.returncode == 0, sent.stdout + sent.stderr

    def received(path: Path) -> Path:
        return isolated_user_dirs / "node" / "received" / f"{pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}.dcm"
    model = window.controller.model
    qtbot.waitUntil(lambda: model.key_of_path(received(film)) is not None
                    and model.key_of_path(received(tiny)) is not None, timeout=60000)
    item = model.item(model.key_of_path(received(film)))
    assert item.record is not None or item.prediction is not None
    failed = model.item(model.key_of_path(received(tiny)))
    assert failed.status is Status.ERROR and "too small" in failed.error


def test_the_node_decides_with_the_windows_site_profile_and_operating_point(qtbot, app_settings, request,  # type: ignore[no-untyped-def]
                                                                            isolated_user_dirs) -> None:
    """A clinic that calibrated LungLens and reads at the balanced point gets the same from the
    node: a film the X-ray unit sends is calibrated and thresholded with that profile, at that
    point (before, the node always used the shipped profile at its default point)."""
    from inference.paths import models_dir
    from inference.profile import SiteProfile
    from inference.profile_library import keep
    from tests.fixtures.dicom_peers import store

    clinic = SiteProfile.load(models_dir() / "lunglens-cxr.profile.json").chosen("Clinic A", "high_sensitivity")
    app_settings.site_profile = str(keep(clinic))
    app_settings.operating_point = "balanced"
    port = free_port()
    NodeSettings(app_settings).save(NodeOptions(enabled=True, port=port, allowed=["XRAY1"]))
    window = request.getfixturevalue("window")
    assert window.controller.node_arguments() == ["--profile", app_settings.site_profile,
                                                  "--operating-point", "balanced"]
    qtbot.waitUntil(lambda: window.node_status.state == "listening", timeout=60000)
    film = Path(__file__).resolve().parents[2] / "resources" / "samples" / "sample-pneumonia.dcm"
    assert store(port, [film], "-xs", calling="XRAY1").returncode == 0
    import pydicom

    uid = pydicom.dcmread(film, stop_before_pixels=True).SOPInstanceUID
    kept = isolated_user_dirs / "node" / "received" / f"{uid}.dcm"
    model = window.controller.model
    qtbot.waitUntil(lambda: model.key_of_path(kept) is not None
                    and model.item(model.key_of_path(kept)).record is not None, timeout=60000)
    record = model.item(model.key_of_path(kept)).record
    assert (record.profile.name, record.profile.sha256) == ("Clinic A", clinic.sha256)
    assert record.operating.name == "balanced"
    assert record.operating.threshold == clinic.operating_points["balanced"].threshold

    # A typed threshold reaches the node too, once the settings change (the node restarts).
    app_settings.operating_point, app_settings.custom_threshold = "custom", 0.4
    window.controller.apply_settings({"decision"})
    assert window.controller.node_arguments()[-2:] == ["--threshold", "0.4"]
    # One edited in the settings file to 0 or 1 is read within the dialog's 1-99 %: the node
    # refuses a threshold of 0 or 1 and would not have started.
    for edited, read in ((0.0, 0.01), (1.0, 0.99)):
        app_settings.q.setValue("decision/custom_threshold", edited)
        assert app_settings.custom_threshold == read


def test_the_status_line_counts_the_outbox_off_the_gui_thread(qtbot, app_settings, isolated_user_dirs,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    counted_on: list[threading.Thread] = []
    real = NodeStatus.outbox_length

    def recording() -> int:
        counted_on.append(threading.current_thread())
        return real()

    monkeypatch.setattr(NodeStatus, "outbox_length", staticmethod(recording))
    status = NodeStatus(app_settings, poll_ms=50)
    qtbot.addWidget(status)
    outbox = isolated_user_dirs / "node" / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "0001-sr.dcm").write_bytes(b"")
    qtbot.waitUntil(lambda: status.waiting == 1, timeout=5000)
    assert counted_on and threading.main_thread() not in counted_on
    assert status.text() == "DICOM node: off · outbox 1"  # a result still waits though the node is off


def test_a_count_that_raises_does_not_stop_the_counting(qtbot, app_settings, isolated_user_dirs,
                                                        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whatever goes wrong counting once (here a ValueError), the next poll counts again."""
    real = NodeStatus.outbox_length
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a path the file system would not take")
        return real()

    monkeypatch.setattr(NodeStatus, "outbox_length", staticmethod(flaky))
    outbox = isolated_user_dirs / "node" / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "0001-sr.dcm").write_bytes(b"")
    status = NodeStatus(app_settings, poll_ms=50)
    qtbot.addWidget(status)
    qtbot.waitUntil(lambda: status.waiting == 1, timeout=5000)
    assert len(calls) >= 2
