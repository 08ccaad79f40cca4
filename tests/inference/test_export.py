"""CSV / JSON export of the worklist: one row per study, identifiers only when asked."""

from __future__ import annotations

import csv
import io
import json

import pytest

from inference.decision import custom_point, tidy_number
from inference.export import COLUMNS, IDENTIFIER_COLUMNS, _cell, error_row, export_records, record_row, write_csv
from inference.hashing import pixel_sha256
from inference.worklist import Worklist, WorklistRecord

from tests.inference.workflow_fixtures import PATIENT_ID, PATIENT_NAME, PROFILE, dicom_study, identified, prediction_for, raster_study


@pytest.fixture
def records(tmp_path, kermany_samples, real_dicom) -> list[WorklistRecord]:
    studies = [identified(dicom_study(real_dicom)), raster_study(kermany_samples["NORMAL"][0])]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        for study, p in zip(studies, (0.83, 0.07)):
            wl.add(WorklistRecord.from_prediction(study, prediction_for(study, p, warnings=["adult; check"]), pixel_sha256(study)))
        wl.set_verdict(wl.records()[0].id, "pneumonia")
        return wl.records()


def test_csv_one_row_per_study_without_identifiers(tmp_path, records):
    out = tmp_path / "worklist.csv"
    assert export_records(records, out) == 2
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8 correctly
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == COLUMNS
    assert [r["label"] for r in rows] == ["PNEUMONIA", "NORMAL"]
    assert [r["result"] for r in rows] == ["above", "below"]
    assert rows[0]["probability"] == "0.83"
    assert rows[0]["warnings"] == "adult; check"
    assert rows[0]["in_scope"] == "yes"
    assert rows[0]["modality"] == "CR"
    assert (rows[0]["profile_name"], rows[0]["profile_sha256"], rows[0]["logit"]) == (
        PROFILE.name, PROFILE.sha256, "1.5")
    assert (rows[0]["verdict"], rows[1]["verdict"], rows[1]["verdict_at"]) == ("pneumonia", "", "")
    assert rows[0]["verdict_at"] == records[0].verdict_at != ""
    text = raw.decode("utf-8-sig")
    assert PATIENT_NAME not in text and PATIENT_ID not in text


def test_an_out_of_scope_study_is_exported_as_unreliable_whatever_its_label(tmp_path, kermany_samples):
    """Filtering an export on NORMAL returned a photograph: its label is the threshold's, and
    the result column says that it does not apply."""
    from dataclasses import replace

    study = raster_study(kermany_samples["NORMAL"][0])
    outside = replace(prediction_for(study, 0.07), in_scope=False, scope_reasons=["unlike the training images"])
    row = record_row(WorklistRecord.from_prediction(study, outside, pixel_sha256(study)))
    assert (row["label"], row["result"], row["in_scope"]) == ("NORMAL", "unreliable", False)


@pytest.mark.parametrize(("p", "cell"), [(2.8e-05, "2.8e-05"), (3e-10, "3e-10"), (0.123456789, "0.123457"),
                                         (0.99999999, "0.99999999"), (1.0 - 1e-12, repr(1.0 - 1e-12))])
def test_a_probability_in_a_file_never_reads_0_or_1_unless_it_is(p, cell):
    """Four decimals wrote 2.8e-5 as 0.0000 in the CSV, and six rounded the JSON's to 0.0."""
    assert _cell(tidy_number(p)) == _cell(p) == cell
    assert tidy_number(p) not in (0.0, 1.0)
    assert tidy_number(0.0) == 0.0 and tidy_number(1.0) == 1.0


def test_json_with_identifiers_when_asked(tmp_path, records):
    out = tmp_path / "worklist.json"
    assert export_records(records, out, include_identifiers=True) == 2
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert list(rows[0]) == list(COLUMNS + IDENTIFIER_COLUMNS)
    assert rows[0]["patient_name"] == PATIENT_NAME and rows[0]["patient_id"] == PATIENT_ID
    assert rows[0]["warnings"] == ["adult; check"]
    assert rows[1]["probability"] == pytest.approx(0.07)
    assert rows[1]["sensitivity"] == pytest.approx(0.95)
    # Every figure with its interval and the films it was measured on, as the window shows it.
    op = records[1].operating
    assert rows[1]["sensitivity_ci95"] == [pytest.approx(op.sensitivity.lo), pytest.approx(op.sensitivity.hi)]
    assert rows[1]["specificity_ci95"] == [pytest.approx(op.specificity.lo), pytest.approx(op.specificity.hi)]
    assert rows[1]["figures_source"] == f"{records[1].profile.source}, the films the threshold was set on"
    assert rows[1]["logit"] == 1.5 and rows[1]["verdict"] is None


def test_the_label_is_the_decision_rule_at_the_rows_threshold(records):
    """Read at another operating point, the label follows: at or above the threshold is PNEUMONIA."""
    row = record_row(records[1].at(custom_point(0.07)))
    assert (row["label"], row["threshold"], row["operating_point"]) == ("PNEUMONIA", 0.07, "custom")
    assert row["sensitivity"] is None and record_row(records[1].at(custom_point(0.0701)))["label"] == "NORMAL"


def test_error_rows_and_formula_guard(records):
    rows = [record_row(records[0]), error_row("/data/=HYPERLINK(1).dcm", "=HYPERLINK(1).dcm: not a DICOM file")]
    buf = io.StringIO()
    assert write_csv(rows, buf) == 2
    parsed = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert parsed[1]["status"] == "error"
    assert parsed[1]["probability"] == ""
    assert parsed[1]["file"] == "'=HYPERLINK(1).dcm"  # never a live formula in a spreadsheet
    assert parsed[1]["error"].startswith("'=")


def test_unknown_format_is_refused(tmp_path, records):
    with pytest.raises(ValueError, match=r"list\.xlsx.*\.csv or \.json"):
        export_records(records, tmp_path / "list.xlsx")
