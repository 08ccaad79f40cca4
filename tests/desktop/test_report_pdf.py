"""The one-page PDF report, painted offscreen and read back with pypdf."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

import pypdf
import pytest

from desktop.report_pdf import INTENDED_USE, write_report_pdf
from inference import __version__
from inference.decision import custom_point
from inference.overlay import render_picture
from inference.presentation import POPULATION
from tests.desktop.gui_helpers import MODEL, PROFILE, make_prediction
from tests.inference.workflow_fixtures import PATIENT_ID, PATIENT_NAME, dicom_study, identified, raster_study


def prediction_for(study, probability, **kwargs):
    return make_prediction(probability, **kwargs)

pytestmark = pytest.mark.gui


def pdf_text(path) -> tuple[int, str]:
    reader = pypdf.PdfReader(str(path))
    text = " ".join(page.extract_text() for page in reader.pages)
    # pypdf splits words with tabs/newlines; NFKC turns the "fi" ligature glyph back into "fi".
    return len(reader.pages), " ".join(unicodedata.normalize("NFKC", text).split())


def test_report_has_everything_the_issue_lists(qapp, tmp_path, real_dicom):
    study = identified(dicom_study(real_dicom))
    pred = prediction_for(study, 0.87, warnings=["adult patient: the model was trained on children aged 1-5"])
    when = datetime(2026, 11, 26, 6, 0, 0, tzinfo=timezone.utc)
    out = write_report_pdf(tmp_path / "r.pdf", study, pred, generated_at=when)
    pages, text = pdf_text(out)
    assert pages == 1
    for expected in (
        "Above the review threshold (35 %)",
        "Pneumonia pattern: needs review",
        "Probability of pneumonia (calibrated): 87 %",
        "Operating point: high sensitivity, threshold 35 %: sensitivity 95.4 % (92.0–98.3), "
        f"specificity 81.0 % (75.0–86.2), 95 % CI — {PROFILE.source}",
        f"Site profile: {PROFILE.name} · sha256 {PROFILE.sha256[:12]}",
        POPULATION,
        "Warnings (1)",
        "Adult patient: the model was trained on children aged 1-5",
        f"{MODEL.name} {MODEL.version}",
        MODEL.sha256,
        "Provider CPU",  # inference.providers.friendly_name, as the window says it
        f"2026-11-26 06:00:00 UTC by LungLens {__version__}",
        " ".join(INTENDED_USE.split()),
        "not a diagnosis",
    ):
        assert expected in text, expected
    assert "ExecutionProvider" not in text
    # The image with its heat-map is on the page at full resolution.
    (image,) = pypdf.PdfReader(str(out)).pages[0].images
    assert image.image.size == (study.shape[1], study.shape[0])


def test_identifiers_only_when_asked(qapp, tmp_path, real_dicom):
    study = identified(dicom_study(real_dicom))
    pred = prediction_for(study, 0.2)
    _, hidden = pdf_text(write_report_pdf(tmp_path / "hidden.pdf", study, pred))
    for secret in (PATIENT_NAME, PATIENT_ID, real_dicom.name):
        assert secret not in hidden
    assert "Identifiers not shown" in hidden
    # Sex and age identify no one, and the population the model is validated for is an age.
    meta = study.metadata
    assert f"Sex / age {' / '.join(v for v in (meta.patient_sex, meta.patient_age) if v)}" in hidden
    _, shown = pdf_text(write_report_pdf(tmp_path / "shown.pdf", study, pred, show_identifiers=True))
    for value in (PATIENT_NAME, PATIENT_ID, real_dicom.name):
        assert value in shown


def test_out_of_scope_custom_threshold_raster(qapp, tmp_path, kermany_samples):
    """Not reliable leads, in grey; the reason is a warning; no verdict is printed at all."""
    study = raster_study(kermany_samples["NORMAL"][0])
    reason = "image does not look like the chest X-rays the model learned from (distance 2.1x the limit)"
    pred = prediction_for(study, 0.04, operating=custom_point(0.5), in_scope=False, scope_reasons=[reason])
    _, text = pdf_text(write_report_pdf(tmp_path / "r.pdf", study, pred, picture=render_picture(study, pred)))
    assert "Not reliable — unlike the films the model learned from" in text
    assert "No heat-map: the result is not reliable (the film is out of scope)." in text
    assert "Warnings (1)" in text and "Image does not look like the chest X-rays" in text
    assert "review threshold" not in text and "no pneumonia pattern" not in text.lower()
    assert "Probability of pneumonia (calibrated): 4 %" in text
    assert "JPEG JPEG" not in text and "Format JPEG" in text
    assert "Operating point: custom, threshold 50 %: sensitivity and specificity not measured" in text


def test_unwritable_destination_is_a_clear_error(qapp, tmp_path, kermany_samples):
    study = raster_study(kermany_samples["NORMAL"][0])
    with pytest.raises(OSError, match=r"r\.pdf: cannot write the PDF there \(No such file or directory\)"):
        write_report_pdf(tmp_path / "missing" / "r.pdf", study, prediction_for(study, 0.5))


def test_a_name_longer_than_a_line_wraps_on_the_page(qapp, tmp_path, real_dicom):
    """A patient name of 110 letters without a space ran off the page, clipped."""
    from dataclasses import replace

    long_name = "Wolfeschlegelsteinhausenbergerdorff" * 3 + "^Hubert"
    study = identified(dicom_study(real_dicom))
    study = replace(study, metadata=replace(study.metadata, patient_name=long_name))
    out = write_report_pdf(tmp_path / "long.pdf", study, prediction_for(study, 0.2), show_identifiers=True)
    lines: dict[float, str] = {}

    def visit(text, cm, tm, font, size):  # pypdf's text visitor: each run with its matrix
        y = round(cm[5] + tm[5], 1)
        lines[y] = lines.get(y, "") + text.replace("\u200b", "")
    pypdf.PdfReader(str(out)).pages[0].extract_text(visitor_text=visit)
    holding = [y for y, text in lines.items() if "Wolfeschlegel" in text or "Hubert" in text]
    assert len(holding) >= 2  # on two lines, not one running past the margin
