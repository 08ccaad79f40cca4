"""The patient's age and the population warnings: every result outside the validated
population, or of a patient whose age is not recorded, says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.engine import Engine
from inference.loaders import load_study
from inference.population import (
    AGE_NOT_RECORDED,
    age_in_years,
    in_population,
    parse_date,
    patient_age,
    population_warnings,
)
from inference.study import StudyMetadata
from tests.fixtures.dicom_factory import read_gray, write_dicom, write_raster


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(threads=1)  # the real bundled model and its shipped profile


@pytest.mark.parametrize(
    ("age", "years"),
    [("004Y", 4.0), ("018M", 1.5), ("003W", 3 * 7 / 365.25), ("010D", 10 / 365.25), ("45", 45.0), ("", None), ("old", None)],
)
def test_age_strings(age: str, years: float | None) -> None:
    assert age_in_years(age) == (pytest.approx(years) if years is not None else None)


def test_dates() -> None:
    assert str(parse_date("20240131")) == "2024-01-31" and str(parse_date("2024.01.31")) == "2024-01-31"
    assert parse_date("20240231") is None and parse_date("") is None and parse_date("31/01/2024") is None


def test_age_from_the_birth_date_and_the_study_or_acquisition_date() -> None:
    by_study = patient_age(StudyMetadata(patient_birth_date="20200615", study_date="20240131"))
    assert by_study is not None and by_study.years == pytest.approx(3.63, abs=0.01)
    assert (by_study.text, by_study.described) == ("3 years", "3 years, from the birth date")
    by_acquisition = patient_age(StudyMetadata(patient_birth_date="19800101", acquisition_date="20240131"))
    assert by_acquisition is not None and by_acquisition.years == pytest.approx(44.08, abs=0.01)
    baby = patient_age(StudyMetadata(patient_birth_date="20230901", study_date="20240131"))
    assert baby is not None and (baby.text, baby.from_birth_date) == ("4 months", True)
    # PatientAge wins: it is what the modality wrote at the time.
    both = patient_age(StudyMetadata(patient_age="004Y", patient_birth_date="19800101", study_date="20240131"))
    assert both is not None and (both.years, both.text, both.from_birth_date) == (4.0, "4 years", False)
    for meta in (StudyMetadata(patient_birth_date="20200615"),  # no date of the examination
                 StudyMetadata(patient_birth_date="20250101", study_date="20240131"),  # born after it
                 StudyMetadata(study_date="20240131")):
        assert patient_age(meta) is None


def test_population_warnings_for_adults_other_ages_and_unknown_ages() -> None:
    (adult,) = population_warnings(StudyMetadata(patient_age="045Y"))
    assert adult.startswith("Adult patient (age 45 years)") and "1–5" in adult
    (months,) = population_warnings(StudyMetadata(patient_age="999M"))  # read as people say it
    assert months.startswith("Adult patient (age 83 years)")
    assert "Adult" in population_warnings(StudyMetadata(patient_age="018Y"))[0]
    (from_birth,) = population_warnings(StudyMetadata(patient_birth_date="19800101", study_date="20240131"))
    assert from_birth.startswith("Adult patient (age 44 years, from the birth date)")
    assert population_warnings(StudyMetadata(patient_age="003Y")) == []
    assert population_warnings(StudyMetadata(patient_age="030M")) == []
    (teen,) = population_warnings(StudyMetadata(patient_age="012Y"))
    assert "Adult" not in teen and teen.startswith("Patient age 12 years is outside the 1–5 years")
    (infant,) = population_warnings(StudyMetadata(patient_birth_date="20230901", study_date="20240131"))
    assert infant.startswith("Patient age 4 months, from the birth date, is outside the 1–5 years")
    assert population_warnings(StudyMetadata()) == [AGE_NOT_RECORDED]
    # Something in the header that is no age is not "not recorded": it says what is there.
    for written in ("n/a", "4.5Y", "-05Y", "1000Y"):
        assert population_warnings(StudyMetadata(patient_age=written)) == [
            f"Patient age unreadable (the DICOM header says {written!r}): the model is validated for children "
            f"aged 1–5 only."]
    assert AGE_NOT_RECORDED == "Patient age not recorded: the model is validated for children aged 1–5 only."


def test_a_child_of_five_and_a_half_is_five_and_no_age_is_said_as_nonsense() -> None:
    """"Patient age 5 years ... is outside the 1–5 years" had contradicted itself (5 y 6 m, or
    070M); "000Y" read "0 days"; an unreadable PatientAge beside a birth date was not said."""
    for meta in (StudyMetadata(patient_age="070M"), StudyMetadata(patient_age="005Y"),
                 StudyMetadata(patient_birth_date="20180701", study_date="20240131")):  # 5 y 7 m
        assert population_warnings(meta) == [] and in_population(meta) is True
    (six,) = population_warnings(StudyMetadata(patient_age="072M"))
    assert six.startswith("Patient age 6 years is outside the 1–5 years") and in_population(
        StudyMetadata(patient_age="072M")) is False
    (newborn,) = population_warnings(StudyMetadata(patient_age="000Y"))
    assert newborn.startswith("Patient age 0 years is outside")
    (both,) = population_warnings(StudyMetadata(patient_age="45 years", patient_birth_date="20210101",
                                                study_date="20240131"))
    assert both == ("Patient age unreadable (the DICOM header says '45 years'; the birth date gives 3 years): "
                    "the model is validated for children aged 1–5 only.")
    conflicting = StudyMetadata(patient_age="4.5Y", patient_birth_date="20210101", study_date="20240131")
    assert in_population(conflicting) is None  # not known to be in it: the SR codes "unknown"
    unread, adult = population_warnings(StudyMetadata(patient_age="n/a", patient_birth_date="19800101",
                                                      study_date="20240131"))
    assert unread.startswith("Patient age unreadable") and adult.startswith("Adult patient (age 44 years, from")
    assert population_warnings(StudyMetadata(patient_birth_date="20230131", study_date="20240131")) == []  # 1 today


def test_the_dicom_loader_reads_the_birth_and_acquisition_dates(tmp_path: Path, kermany_gray: np.ndarray) -> None:
    path = write_dicom(tmp_path / "dated.dcm", kermany_gray, tags={
        "PatientAge": None, "PatientBirthDate": "19800101", "StudyDate": None, "AcquisitionDate": "20240131"})
    meta = load_study(path).metadata
    assert (meta.patient_age, meta.patient_birth_date, meta.study_date, meta.acquisition_date) == (
        "", "19800101", "", "20240131")


def test_a_png_result_carries_the_age_warning(engine: Engine, site_sample: Path, tmp_path: Path) -> None:
    """A PNG or JPEG records no age: every result says the model is validated for 1–5 only."""
    film = sorted((site_sample / "NORMAL").glob("*.jpeg"))[0]
    png = write_raster(tmp_path / "film.png", read_gray(film))
    for path in (png, film):
        prediction = engine.predict(load_study(path))
        assert AGE_NOT_RECORDED in prediction.warnings
        assert prediction.in_scope  # a warning about the patient, not about the image


def test_dicom_results_warn_by_the_age_the_header_gives(engine: Engine, tmp_path: Path,
                                                        kermany_gray: np.ndarray) -> None:
    child = write_dicom(tmp_path / "child.dcm", kermany_gray)  # the factory's PatientAge 004Y
    adult = write_dicom(tmp_path / "adult.dcm", kermany_gray, tags={
        "PatientAge": None, "PatientBirthDate": "19800101", "StudyDate": "20240131"})
    undated = write_dicom(tmp_path / "undated.dcm", kermany_gray, tags={"PatientAge": None})
    child_warnings = engine.predict(load_study(child)).warnings
    assert not any("1–5" in w for w in child_warnings), child_warnings
    assert any(w.startswith("Adult patient (age 44 years, from the birth date)")
               for w in engine.predict(load_study(adult)).warnings)
    assert AGE_NOT_RECORDED in engine.predict(load_study(undated)).warnings
