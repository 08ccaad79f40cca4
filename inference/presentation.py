"""How a result is told to a person: one story for the window, the PDF, the SC and the CLI.

The same study used to read differently in each place ("> 99 %" in the window, "Pneumonia
likely — 100 %" in the PDF, a green "unlikely" for a film the window called not reliable).
Every text a person reads about one result is built here, once, from the
:class:`~inference.prediction.Prediction`, and the views only lay it out:

* an out-of-scope result leads with "Not reliable — <what the gate measured>", never with a
  verdict, whatever its number;
* an in-scope one says which side of the review threshold it is on
  (:func:`inference.decision.verdict_text`) and what the model found, in words that claim
  no more than that ("no pneumonia pattern found", never "normal");
* the probability is :func:`inference.decision.probability_text` ("< 1 %", never "0 %");
* every figure says which data it was measured on, with its 95 % interval;
* the population the model is validated for is always stated, beside the result.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from . import decision, heatmap
from .calibration import SCREENING
from .decision import OperatingPoint
from .loaders.warnings import HEADER_WARNINGS, SMALL_WARNING
from .ood import HEADER_REASON, TOO_SMALL
from .population import TRAINED_AGES
from .prediction import Prediction
from .profile import ProfileInfo, SiteProfile

POPULATION = (f"Validated for frontal chest films of children aged "
              f"{TRAINED_AGES[0]:.0f}–{TRAINED_AGES[1]:.0f}")
NOT_RELIABLE = "Not reliable"
UNRELIABLE_FINDING = "the probability shown does not apply to this film"
UNKNOWN_SOURCE = "the data they were measured on is not recorded"
SAME_FILMS = "the films the threshold was set on"

# The input gate's reasons (inference.ood) in the few words a headline has room for, worded
# for what was measured: the header and the orientation test know the film is not a frontal
# chest X-ray; the likeness test only knows it is unlike the films the model learned from,
# so any other reason is the more telling one when both are given.
_LIKENESS = "image does not look like"
_SCOPE_PHRASES = (
    ("DICOM header says", "not a frontal chest X-ray"),
    ("image looks rotated", "not an upright frontal chest X-ray"),
    ("image is blank", "blank image"),
    ("too small to judge", "too small to judge"),
    (_LIKENESS, "unlike the films the model learned from"),
)
_SCOPE_UNKNOWN = "outside what the model was validated for"


class Tone(str, enum.Enum):
    """What a view colours a result as: the only three states a reader acts on."""

    ABOVE = "above"  # in scope, at or above the review threshold: read it first
    BELOW = "below"  # in scope, below the threshold
    UNRELIABLE = "unreliable"  # out of scope: never shown as above or below


def scope_phrase(reason: str) -> str:
    """A gate reason in headline words; a reason this module does not know is shown as it is."""
    for start, phrase in _SCOPE_PHRASES:
        if reason.startswith(start):
            return phrase
    return reason


def headline(probability: float, threshold: float, in_scope: bool = True,
             scope_reasons: Sequence[str] = ()) -> str:
    """The first thing said about a result, e.g. "Above the review threshold (35 %)" or
    "Not reliable — unlike the films the model learned from"."""
    if not in_scope:
        telling = sorted(scope_reasons, key=lambda r: r.startswith(_LIKENESS))  # stable: gate order otherwise
        return f"{NOT_RELIABLE} — {scope_phrase(telling[0]) if telling else _SCOPE_UNKNOWN}"
    return decision.verdict_text(probability, threshold)


def tone(probability: float, threshold: float, in_scope: bool = True) -> Tone:
    if not in_scope:
        return Tone.UNRELIABLE
    return Tone.ABOVE if decision.is_positive(probability, threshold) else Tone.BELOW


def point_text(operating: OperatingPoint) -> str:
    """e.g. "high sensitivity, threshold 35 %"."""
    return f"{operating.display_name}, threshold {decision.threshold_text(operating.threshold)}"


def target_note(profile: SiteProfile) -> str:
    """What to say beside a profile whose high-sensitivity point could not show its target
    sensitivity with 95 % confidence (too few pneumonia patients); "" when it could."""
    op = profile.operating_points.get("high_sensitivity")
    if op is None or op.sensitivity is None or op.sensitivity.lo >= profile.target_sensitivity:
        return ""
    return op.description.removeprefix(SCREENING)


def calibration_note(profile: SiteProfile) -> str:
    """What to say when a profile's calibration error on its own films is higher after
    calibration than before ("" otherwise): the wizard had shown "ECE 8.9 %; before calibration
    4.1 %" on 20 + 20 cleanly separated films without a word why."""
    before, after = profile.metrics.get("ece_before"), profile.metrics.get("ece_after")
    if before is None or after is None or after.value <= before.value:
        return ""
    return ("The calibration error on these films is higher after calibration than before: the method is "
            "chosen by cross-validation to hold on new films, and where few films are separated this cleanly "
            "it keeps probabilities away from certainty (the raw model would read many new films "
            "“> 99 %” or “< 1 %”).")


def figures_text(operating: OperatingPoint) -> str:
    """e.g. "sensitivity 98.3 % (96.2–100.0), specificity 43.6 % (35.7–52.7), 95 % CI"."""
    if operating.sensitivity is None or operating.specificity is None:
        return "sensitivity and specificity not measured"
    return (f"sensitivity {operating.sensitivity.percent()}, "
            f"specificity {operating.specificity.percent()}, 95 % CI")


def source_text(operating: OperatingPoint, source: str) -> str:
    """The data an operating point's figures come from ("" when it has none: a custom threshold).
    A profile's thresholds are set on the very films its figures are measured on, which flatters
    them a little; the reader is told so wherever the figures are shown."""
    if operating.sensitivity is None or operating.specificity is None:
        return ""
    return f"{source}, {SAME_FILMS}" if source else UNKNOWN_SOURCE


def operating_point_text(operating: OperatingPoint, source: str) -> str:
    """The operating point with its figures and the data they come from, in one line, e.g.
    "high sensitivity, threshold 35 %: sensitivity 98.3 % (96.2–100.0), …, 95 % CI — site sample …"."""
    return _joined(point_text(operating), figures_text(operating), source_text(operating, source))


def _joined(point: str, figures: str, source: str) -> str:
    return f"{point}: {figures}" + (f" — {source}" if source else "")


def _sentence(text: str) -> str:
    """Words that stand on their own line start with a capital."""
    return text[:1].upper() + text[1:]


def profile_text(profile: ProfileInfo | None) -> str:
    """The site profile that calibrated a result, e.g. "LungLens default · sha256 a5c9419e80fe"."""
    if profile is None:
        return "not recorded"
    return f"{profile.name} · sha256 {profile.sha256[:12]}"


def local_time_text(at: str) -> str:
    """A stored UTC time (ISO 8601) as this PC's clock reads it, "2026-12-02 03:12": the result
    panel says when a study was analysed in the same local time as its verdict (a verdict at
    15:10 beside an analysis at 20:10 UTC read as given before the analysis)."""
    try:
        return f"{datetime.fromisoformat(at).astimezone():%Y-%m-%d %H:%M}"
    except ValueError:
        return at


def reader_text(verdict: str | None, at: str | None, now: datetime | None = None) -> str:
    """The reader's verdict and when it was given, in local time: "pneumonia, 03:12" today,
    "no pneumonia, 2024-03-01 14:05" on another day ("" when there is none)."""
    if not verdict:
        return ""
    if not at:
        return verdict
    try:
        when = datetime.fromisoformat(at).astimezone()
    except ValueError:
        return f"{verdict}, {at}"
    today = (now or datetime.now().astimezone()).date()
    return f"{verdict}, {when:%H:%M}" if when.date() == today else f"{verdict}, {when:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class ResultText:
    """Everything a person reads about one result, already worded."""

    tone: Tone
    headline: str
    finding: str
    probability: str
    threshold: str  # "35 %"
    point: str  # "high sensitivity, threshold 35 %"
    figures: str  # "sensitivity … (…), specificity … (…), 95 % CI"
    source: str  # the data the figures were measured on ("" for a custom threshold)
    profile: str
    population: str
    warnings: tuple[str, ...]

    @property
    def finding_line(self) -> str:
        """The finding on a line of its own: "No pneumonia pattern found"."""
        return _sentence(self.finding)

    @property
    def operating_point(self) -> str:
        """Point, figures and their data in one line (the PDF, the SC)."""
        return _joined(self.point, self.figures, self.source)

    @property
    def summary(self) -> str:
        """The result in one line (the CLI, the SC): headline first, probability last."""
        if self.tone is Tone.UNRELIABLE:
            return f"{self.headline} — probability of pneumonia {self.probability} (does not apply to this film)"
        return f"{self.headline} — {self.finding} — probability of pneumonia {self.probability}"

    @property
    def chip(self) -> str:
        """The few words of the study list."""
        return self._chip("threshold")

    @property
    def chip_with_threshold(self) -> str:
        """The chip of a result read at another profile's threshold than the one in use: it
        names it ("58 % · below 24.2 %"), or a list mixing two thresholds could not be read."""
        return self._chip(self.threshold)

    def _chip(self, threshold: str) -> str:
        if self.tone is Tone.UNRELIABLE:
            return "not reliable"
        return f"{self.probability} · {'above' if self.tone is Tone.ABOVE else 'below'} {threshold}"


def present(prediction: Prediction) -> ResultText:
    """The words for ``prediction``, read at its own operating point."""
    p, op = prediction.probability, prediction.operating
    in_scope = prediction.in_scope
    warnings: list[str] = []
    # What the gate refused the film for is said once, as its reason: a lateral film listed
    # "DICOM header says lateral view" and "Lateral view (LL): ...", a 64 px one "too small to
    # judge: 64 × 64 px" and "Small image (64x64 px)".
    reasons = prediction.scope_reasons if not in_scope else []
    superseded = tuple(w for gate, ws in ((HEADER_REASON, HEADER_WARNINGS), (TOO_SMALL, SMALL_WARNING))
                       if any(r.startswith(gate) for r in reasons) for w in ws)
    for w in [*reasons, *prediction.warnings, *heatmap.warnings(prediction)]:
        if superseded and w.startswith(superseded):
            continue
        w = _sentence(w)  # the gate's reasons are worded to follow a colon
        if w and w not in warnings:
            warnings.append(w)
    return ResultText(
        tone=tone(p, op.threshold, in_scope),
        headline=headline(p, op.threshold, in_scope, prediction.scope_reasons),
        finding=decision.finding_text(p, op.threshold) if in_scope else UNRELIABLE_FINDING,
        probability=decision.probability_text(p, op.threshold if in_scope else None),
        threshold=decision.threshold_text(op.threshold, p if in_scope else None),
        point=point_text(op),
        figures=figures_text(op),
        source=source_text(op, prediction.profile.source if prediction.profile is not None else ""),
        profile=profile_text(prediction.profile),
        population=POPULATION,
        warnings=tuple(warnings),
    )
