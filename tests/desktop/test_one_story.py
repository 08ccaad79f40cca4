"""One result, one story: the window, the PDF, the Secondary Capture and ``lunglens classify
--json`` say the same thing about the same study -- for a study above the review threshold,
one below it and one outside the model's scope -- with the real model, through the real window.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pypdf
import pytest

from desktop.main import main as lunglens
from desktop.models.study_item import SUSPICION_RULE
from desktop.widgets.qt_main_window import DICOM_SC_FORMAT, PDF_FORMAT
from inference.decision import custom_point, probability_text, threshold_text
from inference import heatmap
from inference.dicom_sc import result_lines
from inference.overlay import ascii_text
from inference.presentation import NOT_RELIABLE, POPULATION, Tone, headline, present
from tests.desktop.gui_helpers import wait_idle
from tests.fixtures.dicom_factory import read_gray, write_dicom

pytestmark = [pytest.mark.gui, pytest.mark.slow]

WHOLE_CERTAINTY = re.compile(r"(?<![\d.])(0|100) ?%")  # "0 %", "100 %": never a result's probability


def _pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(str(path))
    text = " ".join(page.extract_text() for page in reader.pages)
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _classify_json(path: Path, capsys) -> dict:
    """What ``lunglens classify PATH --json`` prints for one study."""
    capsys.readouterr()
    assert lunglens(["classify", str(path), "--json"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    return json.loads(line)


def _three_studies(window, qtbot, tmp_path: Path, kermany_samples) -> dict[str, object]:
    """Open a few real films and a lateral DICOM; return an item above, below and out of scope."""
    lateral = write_dicom(tmp_path / "lateral.dcm", read_gray(kermany_samples["PNEUMONIA"][0]),
                          tags={"ViewPosition": "LL"})
    films = [*kermany_samples["NORMAL"][:5], *kermany_samples["PNEUMONIA"][:3]]
    window.open_paths([*films, lateral])
    wait_idle(qtbot, window.controller)
    items = [it for it in window.controller.model.items() if it.prediction is not None]
    in_scope = [it for it in items if it.prediction.in_scope]
    above = [it for it in in_scope if it.prediction.is_positive]
    below = [it for it in in_scope if not it.prediction.is_positive]
    probabilities = [it.prediction.probability for it in in_scope]
    assert above and below, f"need a film either side of the threshold: {probabilities}"
    (out,) = [it for it in items if it.path == lateral]
    assert not out.prediction.in_scope
    return {"above": max(above, key=lambda it: it.prediction.probability),
            "below": min(below, key=lambda it: it.prediction.probability), "out of scope": out}


def test_window_pdf_secondary_capture_and_cli_tell_one_story(window, qtbot, tmp_path, kermany_samples, capsys):
    import pydicom

    c = window.controller
    studies = _three_studies(window, qtbot, tmp_path, kermany_samples)
    panel = window.result_panel
    for case, item in studies.items():
        window.study_list.select_key(c.model.key_of_path(item.path))
        wait_idle(qtbot, c)
        ctx = c.context
        words = present(ctx.prediction)

        # The window: headline, number, finding, population and figures, all from one presentation.
        assert panel.headline_text() == words.headline, case
        assert panel.gauge.number_text() == words.probability, case
        assert panel.finding_text() == words.finding_line, case
        assert panel.population.text() == POPULATION and panel.population.isVisibleTo(window)
        assert panel.detail_text("figures") == words.figures and panel.detail_text("source") == words.source
        assert panel.warning_texts() == list(words.warnings)

        # The CLI's JSON implies the same headline and the same probability text.
        record = _classify_json(item.path, capsys)
        assert headline(record["probability"], record["threshold"], record["in_scope"],
                        record["scope_reasons"]) == words.headline, case
        assert probability_text(record["probability"]) == words.probability, case

        # The PDF says it in the same words; never "0 %" or "100 %".
        pdf = tmp_path / f"{case}.pdf"
        assert window.export_to(ctx, pdf, PDF_FORMAT)
        text = _pdf_text(pdf)
        assert words.headline in text, (case, text)
        assert f"Probability of pneumonia (calibrated): {words.probability}" in text, case
        assert POPULATION in text and words.source in text
        assert not WHOLE_CERTAINTY.search(text), (case, WHOLE_CERTAINTY.search(text))

        # The Secondary Capture's burned-in lines are the same story in ASCII.
        sc = tmp_path / f"{case}.dcm"
        assert window.export_to(ctx, sc, DICOM_SC_FORMAT)
        # The heat-map is exported as it was on screen: the same caption beside it everywhere.
        caption = window.viewer.legend.caption.text()
        assert caption == heatmap.caption(ctx.prediction, window.controller.display.overlay_visible)
        assert caption in " ".join(text.split()), (case, caption)
        lines = result_lines(ctx.prediction, caption)
        assert ascii_text(caption) in lines
        assert lines[1] == words.summary.replace("—", "-").replace("–", "-")
        assert lines[1].startswith(words.headline.replace("—", "-"))
        assert words.probability in lines[1] and POPULATION.replace("–", "-") in lines
        assert pydicom.dcmread(sc).BurnedInAnnotation == "YES"

        if case == "out of scope":
            assert words.tone is Tone.UNRELIABLE and words.headline.startswith(NOT_RELIABLE)
            assert "Not reliable — not a frontal chest X-ray" in text
            assert "review threshold (" not in text and "review threshold (" not in panel.headline_text()
        else:
            side = "Above" if case == "above" else "Below"
            assert words.headline == f"{side} the review threshold ({threshold_text(ctx.prediction.threshold)})"
            assert NOT_RELIABLE not in text


def test_most_suspicious_first_puts_what_needs_a_look_on_top_and_says_so(window, qtbot, tmp_path,
                                                                        kermany_samples):
    c = window.controller
    studies = _three_studies(window, qtbot, tmp_path, kermany_samples)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 40)
    window.open_paths([broken])
    wait_idle(qtbot, c)
    shown = window.shown_items()
    kinds = []
    for it in shown:
        if it.prediction is None:
            kinds.append("failed")
        elif not it.prediction.in_scope:
            kinds.append("not reliable")
        else:
            kinds.append("above" if it.prediction.is_positive else "below")
    first_below = kinds.index("below")
    assert "below" not in kinds[:first_below] and set(kinds[first_below:]) == {"below"}, kinds
    assert kinds.index("not reliable") < first_below and kinds.index("failed") < first_below
    assert shown[0] is studies["above"]
    assert window.study_list.sort_box.currentText() == "Most suspicious first"
    assert window.study_list.sort_box.toolTip() == SUSPICION_RULE


def test_when_the_batch_ends_a_reader_still_on_the_first_film_is_taken_to_the_most_suspicious(
        window, qtbot, kermany_samples):
    c = window.controller
    window.open_paths([*kermany_samples["NORMAL"][:3], *kermany_samples["PNEUMONIA"][:2]])  # a normal film first
    wait_idle(qtbot, c)
    shown = window.shown_items()
    assert shown[0].prediction.is_positive and shown[0].path != kermany_samples["NORMAL"][0]
    qtbot.waitUntil(lambda: c.model.item(window.study_list.current_key()) is shown[0], timeout=5000)
    # A reader who has moved on stays where they are when the next batch ends.
    window.study_list.select_row(2)
    here = window.study_list.current_key()
    window.open_paths([kermany_samples["PNEUMONIA"][2]])
    wait_idle(qtbot, c)
    assert window.study_list.current_key() == here


def test_a_film_opened_is_shown_though_the_list_holds_more_suspicious_studies_of_other_patients(
        window, qtbot, app_settings, kermany_samples):
    """Opening a film from the command line showed yesterday's most suspicious study, restored
    from the worklist, instead: the window moved to the top of the whole list, not of the
    films just opened."""
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    c = window.controller
    window.open_paths(kermany_samples["PNEUMONIA"][:2])
    wait_idle(qtbot, c)
    normal = kermany_samples["NORMAL"][0]
    window.open_paths([normal])  # the reader has not chosen a study: the one opened is shown
    wait_idle(qtbot, c)
    assert window.shown_items()[0].path in kermany_samples["PNEUMONIA"][:2]  # the top of the list
    assert c.model.item(window.study_list.current_key()).path == normal
    window.close()
    assert c.worker.shutdown(10.0)

    later = StudyController(app_settings)  # the next session: the list restored from the worklist
    again = MainWindow(later)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: later.model.rowCount() == 3, timeout=10_000)
    other = kermany_samples["NORMAL"][1]
    again.open_paths([other])
    wait_idle(qtbot, later)
    try:
        assert later.model.item(again.study_list.current_key()).path == other
    finally:
        again.close()
        assert later.worker.shutdown(10.0)


def test_the_empty_gauge_marks_the_threshold_in_use(window, qtbot):
    c = window.controller
    gauge = window.result_panel.gauge
    assert gauge.value is None
    assert gauge.caption_text() == f"threshold {threshold_text(c.profile.operating_point().threshold)}"
    c.settings.operating_point, c.settings.custom_threshold = "custom", 0.4
    c.apply_settings({"decision"})
    assert c.operating_point() == custom_point(0.4)
    assert gauge.caption_text() == "threshold 40 %"
