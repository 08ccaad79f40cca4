"""Who the model was validated for, and whether this patient is one of them.

The model learned from children aged 1–5 (the Kermany cohort). On adults it is much less
specific (issue 11: 44 adult PNG films gave specificity 0.44), and a PNG or JPEG carries no
age at all, so a result whose age is unknown must say so rather than pass as validated.

The age comes from the DICOM PatientAge, else from PatientBirthDate and the StudyDate (or
the AcquisitionDate when the study has no date). These warnings never change ``in_scope``:
the image is still a chest X-ray, only the patient may be outside the validated population.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .study import StudyMetadata

ADULT_YEARS = 18.0
TRAINED_AGES = (1.0, 5.0)  # years; the Kermany cohort: aged 1 to 5 in whole years, so from 1.0 to under 6.0
AGE_NOT_RECORDED = "Patient age not recorded: the model is validated for children aged 1–5 only."

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0, "": 1.0}
_DATE = re.compile(r"^\s*(\d{4})[.\-]?(\d{2})[.\-]?(\d{2})\s*$")  # DICOM DA, and ACR-NEMA's YYYY.MM.DD


@dataclass(frozen=True)
class PatientAge:
    """An age in years and how it reads in a warning ("45 years", "4 months"), and whether it
    was worked out from the birth date rather than written by the modality."""

    years: float
    text: str
    from_birth_date: bool = False

    @property
    def described(self) -> str:
        """e.g. "44 years, from the birth date"."""
        return f"{self.text}, from the birth date" if self.from_birth_date else self.text


def _readable(years: float) -> str:
    """An age as people say it: years from 2, then months, then weeks, then days."""
    for unit, per_year, floor in (("year", 1.0, 2.0), ("month", 12.0, 2 / 12), ("week", 365.25 / 7, 2 * 7 / 365.25)):
        if years >= floor:
            n = int(years * per_year + 1e-9)
            return f"{n} {unit}s"
    days = int(round(years * 365.25))
    return f"{days} day" if days == 1 else f"{days} days"


def age_in_years(age: str) -> float | None:
    """A DICOM Age String ("004Y", "018M", "003W", "010D") or a bare number of years; None if unreadable."""
    m = _AGE.match(age or "")
    if not m:
        return None
    return int(m.group(1)) * _AGE_UNIT_YEARS[m.group(2).upper()]


def parse_date(text: str) -> date | None:
    """A DICOM date (YYYYMMDD) as a date; None when empty or not a real date."""
    m = _DATE.match(text or "")
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def patient_age(meta: StudyMetadata) -> PatientAge | None:
    """The patient's age at the examination, or None when the study does not record it.

    PatientAge wins: it is what the modality wrote at the time. A birth date after the
    examination date is a header error and gives no age.
    """
    years = age_in_years(meta.patient_age)
    if years is not None:  # "000Y" reads "0 years", not "0 days"
        return PatientAge(years, _readable(years) if years else f"0 {_unit_word(meta.patient_age)}s")
    born = parse_date(meta.patient_birth_date)
    taken = parse_date(meta.study_date) or parse_date(meta.acquisition_date)
    if born is None or taken is None or taken < born:
        return None
    years = _years_between(born, taken)
    return PatientAge(years, _readable(years), from_birth_date=True)


def _years_between(born: date, taken: date) -> float:
    """Whole years by the calendar, and the part of the year since the last birthday: a child
    on their first birthday is 1 (days / 365.25 had made them 0.9993, "11 months")."""
    whole = taken.year - born.year - ((taken.month, taken.day) < (born.month, born.day))
    last = _birthday(born, born.year + whole)
    return whole + (taken - last).days / (_birthday(born, born.year + whole + 1) - last).days


def _birthday(born: date, year: int) -> date:
    """The birthday in ``year`` (29 February falls on 28 February in other years)."""
    try:
        return born.replace(year=year)
    except ValueError:
        return born.replace(year=year, day=28)


def in_population(meta: StudyMetadata) -> bool | None:
    """Whether the patient's age is within the ages the model was trained on; None when the
    study does not record it (the DICOM SR codes the three answers)."""
    age = patient_age(meta)
    if age is None or _unreadable(meta):  # a header whose age cannot be read: not known to be in it
        return None
    return _trained(age.years)


def _trained(years: float) -> bool:
    """Aged 1 to 5: a child of 5 years and 6 months is 5, and had been told that "5 years" is
    outside 1–5."""
    return TRAINED_AGES[0] <= years < TRAINED_AGES[1] + 1


def _unreadable(meta: StudyMetadata) -> str:
    """What the header writes as PatientAge when no one can read it as an age ("n/a", "4.5Y"); else ""."""
    written = meta.patient_age.strip()
    return written if written and age_in_years(written) is None else ""


def _unit_word(age: str) -> str:
    m = _AGE.match(age or "")
    return {"D": "day", "W": "week", "M": "month"}.get(m.group(2).upper() if m else "", "year")


def population_warnings(meta: StudyMetadata) -> list[str]:
    """Warnings when the patient is not known to be in the population the model was validated on."""
    age = patient_age(meta)
    out = []
    if written := _unreadable(meta):
        # Said even where the birth date gives an age: the two may not be of one patient.
        other = f"; the birth date gives {age.text}" if age is not None else ""
        out.append(f"Patient age unreadable (the DICOM header says {written!r}{other}): the model is validated "
                   f"for children aged 1–5 only.")
    elif age is None:
        return [AGE_NOT_RECORDED]
    lo, hi = TRAINED_AGES
    if age is None:
        return out
    if age.years >= ADULT_YEARS:  # every adult's result says so, whatever else the header holds
        out.append(f"Adult patient (age {age.described}): the model was trained on children aged "
                   f"{lo:.0f}–{hi:.0f} only; its probability has not been validated for adults.")
    elif not _trained(age.years):
        via = ", from the birth date," if age.from_birth_date else ""
        out.append(f"Patient age {age.text}{via} is outside the {lo:.0f}–{hi:.0f} years the model was trained "
                   f"on; interpret the result with care.")
    return out
