"""Study list model and its sort proxy: rows follow worker results; most suspicious first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop.models.study_item import Status
from desktop.models.study_list import ItemRole, KeyRole, SentenceRole, StudyListModel, StudySortProxy
from inference.decision import OperatingPoint, custom_point
from inference.prediction import Prediction
from inference.study import Study, StudyMetadata
from tests.desktop.gui_helpers import make_prediction, shipped_profile

PROFILE = shipped_profile()


def _pred(p: float, in_scope: bool = True) -> Prediction:
    return make_prediction(p, OperatingPoint("balanced", 0.5), in_scope=in_scope, model=PROFILE.model,
                           profile=PROFILE.info)


def _order(proxy: StudySortProxy) -> list[str]:
    return [proxy.index(r, 0).data(ItemRole).name for r in range(proxy.rowCount())]


@pytest.fixture
def model_and_proxy(qapp):
    model = StudyListModel()
    proxy = StudySortProxy()
    proxy.setSourceModel(model)
    return model, proxy


def test_rows_follow_results_and_sort_by_suspicion(model_and_proxy):
    model, proxy = model_and_proxy
    jobs = model.add_paths([Path(f"/x/{n}.png") for n in "abcde"])
    keys = {p.stem: k for k, p in jobs}
    assert [model.item(k).status for k, _ in jobs] == [Status.QUEUED] * 5
    model.set_result(keys["a"], _pred(0.20))
    model.set_result(keys["b"], _pred(0.91))
    model.set_result(keys["c"], _pred(0.99, in_scope=False))
    model.set_failed(keys["d"], "d.png: truncated")
    # Above the threshold, not reliable, failed, still queued -- and below the threshold last.
    assert _order(proxy) == ["b.png", "c.png", "d.png", "e.png", "a.png"]
    # A later, more suspicious result moves to the top while the list is shown.
    model.set_result(keys["e"], _pred(0.97))
    assert _order(proxy)[0] == "e.png"
    proxy.set_mode("opened")
    assert _order(proxy) == [f"{n}.png" for n in "abcde"]
    proxy.set_mode("name")
    assert _order(proxy) == [f"{n}.png" for n in "abcde"]


def test_error_reason_is_the_tooltip_and_sentence_follows_result(model_and_proxy):
    from PySide6.QtCore import Qt

    model, _ = model_and_proxy
    (k1, _), (k2, _) = model.add_paths([Path("/x/bad.dcm"), Path("/x/ok.png")])
    model.set_failed(k1, "bad.dcm: the file ends before its pixel data")
    idx = model.index(model.row_of(k1))
    assert idx.data(Qt.ItemDataRole.ToolTipRole) == "bad.dcm: the file ends before its pixel data"
    model.set_result(k2, _pred(0.87))
    idx = model.index(model.row_of(k2))
    assert idx.data(SentenceRole) == "Above the review threshold (50 %)"
    assert idx.data(Qt.ItemDataRole.ToolTipRole) == (
        "/x/ok.png\nAbove the review threshold (50 %) — pneumonia pattern: needs review — probability of pneumonia 87 %")


def test_keys_never_repeat_after_clear(model_and_proxy):
    model, _ = model_and_proxy
    first = [k for k, _ in model.add_paths([Path("/x/a.png")])]
    model.clear()
    second = [k for k, _ in model.add_paths([Path("/x/b.png")])]
    assert set(first).isdisjoint(second)
    model.set_result(first[0], _pred(0.9))  # a late result of the old batch
    assert model.item(second[0]).status is Status.QUEUED


def test_as_opened_stays_a_strict_order_after_removals(model_and_proxy):
    model, proxy = model_and_proxy
    proxy.set_mode("opened")
    keys = [k for k, _ in model.add_paths([Path(f"/x/{n}.png") for n in "abc"])]
    removed = model.remove(keys[0])
    model.add_paths([Path("/x/d.png"), Path("/x/e.png")])
    orders = [it.order for it in model.items()]
    assert len(set(orders)) == len(orders)  # no place in the opening order is given twice
    assert _order(proxy) == ["b.png", "c.png", "d.png", "e.png"]
    model.put_back([removed])  # undo: back in its own place
    assert _order(proxy) == ["a.png", "b.png", "c.png", "d.png", "e.png"]


def test_cancelled_rows_do_not_overwrite_results(model_and_proxy):
    model, _ = model_and_proxy
    (k, _), = model.add_paths([Path("/x/a.png")])
    model.set_result(k, _pred(0.3))
    model.set_cancelled(k)
    assert model.item(k).status is Status.DONE


def test_new_operating_point_relabels_without_inference(model_and_proxy):
    from dataclasses import replace

    model, _ = model_and_proxy
    (k, _), (other, _) = model.add_paths([Path("/x/a.png"), Path("/x/other-site.png")])
    model.set_result(k, _pred(0.35))
    elsewhere = replace(_pred(0.35), profile=replace(PROFILE.info, sha256="1" * 64))
    model.set_result(other, elsewhere)
    low = replace(PROFILE.operating_point(), threshold=0.2)
    model.apply_operating_point(PROFILE, low)
    pred = model.item(k).prediction
    assert (pred.label, pred.operating, pred.probability) == ("PNEUMONIA", low, 0.35)
    assert model.item(other).prediction.threshold == 0.5  # another profile's result keeps its reading
    # ... and says which threshold it is read at, so a list mixing two thresholds can be read.
    from desktop.widgets.qt_study_list import chip_text_and_colour

    assert not model.reads_elsewhere(model.item(k)) and model.reads_elsewhere(model.item(other))
    assert model.count_elsewhere() == 1
    assert chip_text_and_colour(model.item(k), False)[0] == "35 % · above threshold"
    assert chip_text_and_colour(model.item(other), True)[0] == "35 % · below 50 %"
    model.apply_operating_point(PROFILE, custom_point(0.5))
    pred = model.item(k).prediction
    assert (pred.label, pred.operating_point, pred.sensitivity) == ("NORMAL", "custom", None)


def test_identifier_display_is_a_model_setting(model_and_proxy):
    from desktop.models.study_list import MetaLineRole

    model, _ = model_and_proxy
    (k, _), = model.add_paths([Path("/x/a.dcm")])
    model.set_loaded(k, np.zeros((8, 8), np.uint8), StudyMetadata(patient_name="DOE^JANE", modality="CR"), [])
    idx = model.index(model.row_of(k))
    assert "DOE" not in idx.data(MetaLineRole)
    model.set_show_identifiers(True)
    assert "DOE JANE" in idx.data(MetaLineRole)
    assert idx.data(KeyRole) == k


def test_restored_rows_removal_and_path_lookup(model_and_proxy):
    from inference.worklist import WorklistRecord

    model, proxy = model_and_proxy
    thumb = np.full((8, 6), 200, np.uint8)
    records = [WorklistRecord.from_prediction(
        Study(Path(f"/w/{n}.png"), np.zeros((4, 4), np.float32), (0.5, 1.0), StudyMetadata(modality="CR")),
        _pred(p), f"hash-{n}", thumbnail=thumb)
        for n, p in (("low", 0.1), ("high", 0.9))]
    keys = model.add_restored(records)
    assert [model.item(k).status for k in keys] == [Status.DONE, Status.DONE]
    assert all(model.item(k).restored and model.item(k).cached for k in keys)
    assert model.item(keys[0]).record.thumbnail is None  # the list keeps one copy: its QImage
    assert model.thumbnail(keys[0]).width() == 6 and model.item(keys[0]).metadata.modality == "CR"
    assert _order(proxy) == ["high.png", "low.png"]  # restored rows sort like fresh ones
    jobs = model.add_paths([Path("/w/new.png")])
    assert model.key_of_path(Path("/w/low.png")) == keys[0] and model.key_of_path(Path("/w/new.png")) == jobs[0][0]
    assert model.reopen(jobs[0][0]) is None  # still queued: nothing to reopen
    assert model.reopen(keys[1]) == Path("/w/high.png") and model.item(keys[1]).status is Status.QUEUED
    removed = model.remove(keys[0])
    assert removed.path == Path("/w/low.png") and model.rowCount() == 2
    assert model.key_of_path(Path("/w/low.png")) is None and model.item(keys[0]) is None
    assert model.row_of(jobs[0][0]) == 1 and model.item_at(1).path == Path("/w/new.png")
    assert sorted(_order(proxy)) == ["high.png", "new.png"]


def test_the_study_on_screen_keeps_a_visible_row_while_results_sort_the_list(qtbot, tmp_path):
    """In a batch the film shown first sank to row 1,800 as results sorted in above it."""
    from desktop.platform_quirks import fit_top_level
    from desktop.widgets.qt_study_list import StudyListWidget

    model = StudyListModel()
    widget = StudyListWidget(model)
    fit_top_level(widget)  # a top-level widget on the offscreen platform (see there)
    qtbot.addWidget(widget)
    widget.resize(320, 300)
    widget.show()
    jobs = model.add_paths([tmp_path / f"film{i:02d}.png" for i in range(60)])
    widget.select_key(jobs[0][0])
    model.set_result(jobs[0][0], make_prediction(0.01))  # the one on screen: the least suspicious
    for key, _ in jobs[1:]:
        model.set_result(key, make_prediction(0.9))
    idx = widget.view.currentIndex()
    assert widget.current_key() == jobs[0][0] and idx.row() == 59
    assert widget.view.visualRect(idx).intersects(widget.view.viewport().rect())
    # Scrolled away from it on purpose: the reader is not pulled back.
    widget.view.scrollToTop()
    model.set_result(jobs[1][0], make_prediction(0.5))
    assert not widget.view.visualRect(widget.view.currentIndex()).intersects(widget.view.viewport().rect())


def test_a_result_of_another_profile_is_read_at_its_own_point_whatever_was_in_use_before(model_and_proxy):
    """A clinic activated its own profile: the results of the one before kept the point last
    used with it in this session, and took the one stored with them after a restart (a
    flagged study read "below the threshold" just by restarting). Now always their own."""
    from dataclasses import replace

    model, _ = model_and_proxy
    balanced, high = PROFILE.operating_point("balanced"), PROFILE.operating_point("high_sensitivity")
    record = _record("/x/a.png", (high.threshold + balanced.threshold) / 2, balanced)  # flagged only at high
    model.apply_operating_point(PROFILE, balanced)
    (k,) = model.add_restored([record])
    model.apply_operating_point(PROFILE, high)  # the reader reads at high sensitivity
    assert model.item(k).prediction.operating == high and model.item(k).prediction.is_positive
    clinic = replace(PROFILE, sha256="1" * 64)
    model.apply_operating_point(clinic, clinic.operating_point("balanced"))
    assert model.item(k).prediction.operating == balanced and not model.item(k).prediction.is_positive
    restarted = StudyListModel()  # the same list after a restart reads the same
    restarted.apply_operating_point(clinic, clinic.operating_point("balanced"))
    (k,) = restarted.add_restored([record])
    assert restarted.item(k).prediction.operating == balanced


def test_restored_thumbnails_are_decoded_when_drawn_and_only_the_last_few_are_kept(model_and_proxy, monkeypatch):
    """10,000 restored rows held 120 MB of decoded thumbnails and took 4 s to decode; the
    list draws a screenful."""
    from dataclasses import replace

    from desktop.models import study_list
    from inference.imageops import encode_png

    monkeypatch.setattr(study_list, "THUMBNAILS_DECODED", 2)
    model, _ = model_and_proxy
    pixels = (np.arange(64 * 96) % 251).astype(np.uint8).reshape(64, 96)
    keys = model.add_restored([replace(_record(f"/x/{i}.png", 0.4), thumbnail_png=encode_png(pixels)) for i in range(3)])
    assert not model._decoded and model.item(keys[0]).thumbnail is None
    image = model.thumbnail(keys[0])
    assert (image.width(), image.height()) == (96, 64)
    assert [image.pixelColor(x, 7).red() for x in (0, 50, 95)] == [pixels[7, x] for x in (0, 50, 95)]
    model.thumbnail(keys[1])
    model.thumbnail(keys[0])  # drawn again: kept
    model.thumbnail(keys[2])
    assert list(model._decoded) == [keys[0], keys[2]]
    assert model.thumbnail(keys[1]) is not None  # decoded again when needed


def _record(path: str, probability: float, operating: OperatingPoint | None = None):
    from inference.worklist import WorklistRecord

    study = Study(Path(path), np.zeros((8, 8), np.float32), (0.0, 1.0), StudyMetadata())
    prediction = make_prediction(probability, operating or PROFILE.operating_point(), model=PROFILE.model,
                                 profile=PROFILE.info)
    return WorklistRecord.from_prediction(study, prediction, "0" * 64)


def test_a_study_queued_again_shows_no_result_until_its_new_one(model_and_proxy):
    """Opening a new CD under the same names analyses IM000001 again in its row: the old
    result (another patient's, maybe) must not stand beside the new film meanwhile."""
    model, _ = model_and_proxy
    (k,) = model.add_restored([_record("/x/IM000001", 0.99)])
    assert model.reopen(k) == Path("/x/IM000001")
    item = model.item(k)
    assert item.status is Status.QUEUED and item.prediction is None and item.record is None


def test_a_narrow_row_keeps_the_readers_verdict_first_and_unmistakable(qapp):
    """Elided as one line, "read: no pneumonia · JPEG …" read "read: no …" in the list a
    1280-pixel window gives: at 3 a.m., "not read"."""
    from PySide6.QtGui import QFont, QFontMetrics

    from desktop.widgets.qt_study_list import second_line

    fm = QFontMetrics(QFont())
    meta = "JPEG · 1858 × 2090 · CR · 2024-03-01"
    wide = fm.horizontalAdvance("read: no pneumonia")
    assert second_line(fm, "no pneumonia", meta, wide) == ("read: no pneumonia", f" · {meta}")
    assert second_line(fm, "no pneumonia", meta, wide - 1)[0] == "no pneumonia"
    shown, _ = second_line(fm, "no pneumonia", meta, fm.horizontalAdvance("read: no …"))  # as it had read
    assert shown.startswith("no pne") and shown.endswith("…")
    assert second_line(fm, "", meta, wide) == ("", meta)
    assert second_line(fm, "unsure", "", wide) == ("read: unsure", "")
