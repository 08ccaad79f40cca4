"""The one decision rule: a calibrated probability and an operating point make a label.

Every place that says whether a study is above or below the review threshold -- the
engine, the CLI, the worklist, the study list, the gauge, the PDF, the Secondary Capture,
the CSV -- asks this module, so they can never disagree (model 1.0 had the rule written
seven times with different fallbacks). The words are chosen to claim no more than the
number: a probability of 77 % is never called "unlikely"; "below the review threshold"
says what was decided, not that the child is well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypeVar

POSITIVE = "PNEUMONIA"  # the JSON/CSV label at or above the threshold
NEGATIVE = "NORMAL"  # below it; shown to people as "below the review threshold"
CUSTOM = "custom"  # the operating point name of a user-typed threshold

# Display names of the operating points a profile defines.
OPERATING_POINT_NAMES = {"high_sensitivity": "high sensitivity", "balanced": "balanced", CUSTOM: "custom"}


def point_name(name: str) -> str:
    """An operating point's key as a reader reads it: "high_sensitivity" -> "high sensitivity"."""
    return OPERATING_POINT_NAMES.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class Estimate:
    """A figure measured on data, with its 95 % confidence interval."""

    value: float
    lo: float
    hi: float

    def percent(self) -> str:
        """e.g. "95.4 % (92.0–98.3)"."""
        return f"{self.value * 100:.1f} % ({self.lo * 100:.1f}–{self.hi * 100:.1f})"

    def plain(self, digits: int = 3) -> str:
        """e.g. "0.962 (0.941–0.980)" for an AUC or an ECE."""
        return f"{self.value:.{digits}f} ({self.lo:.{digits}f}–{self.hi:.{digits}f})"

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.lo, self.hi]}

    @classmethod
    def from_dict(cls, data: dict) -> Estimate:
        lo, hi = data["ci95"]
        return cls(float(data["value"]), float(lo), float(hi))


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on the calibrated probability and what it gave on the data it was set on.

    ``sensitivity``/``specificity`` are None for a custom threshold nobody measured.
    """

    name: str
    threshold: float
    sensitivity: Estimate | None = None
    specificity: Estimate | None = None
    description: str = ""

    @property
    def display_name(self) -> str:
        return point_name(self.name)

    def to_dict(self) -> dict:
        """JSON form (the worklist stores each result's point with its intervals)."""
        return {"name": self.name, "threshold": self.threshold,
                "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
                "specificity": self.specificity.to_dict() if self.specificity else None,
                "description": self.description}

    @classmethod
    def from_dict(cls, data: dict) -> OperatingPoint:
        def estimate(key: str) -> Estimate | None:
            return Estimate.from_dict(data[key]) if data.get(key) else None

        return cls(str(data["name"]), float(data["threshold"]), estimate("sensitivity"), estimate("specificity"),
                   str(data.get("description", "")))


def custom_point(threshold: float) -> OperatingPoint:
    """A user-typed threshold: valid probability, no measured figures."""
    t = float(threshold)
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold}")
    return OperatingPoint(CUSTOM, t, None, None, "A threshold typed by the user: its sensitivity and "
                                               "specificity have not been measured.")


def is_positive(probability: float, threshold: float) -> bool:
    """The rule itself: at or above the threshold is "above the review threshold"."""
    return float(probability) >= float(threshold)


def label_for(probability: float, threshold: float) -> str:
    """The machine label (JSON, CSV, worklist): PNEUMONIA or NORMAL."""
    return POSITIVE if is_positive(probability, threshold) else NEGATIVE


def probability_text(probability: float, threshold: float | None = None) -> str:
    """A probability as people read it: whole percent, never "0 %" or "100 %".

    Beside the ``threshold`` it was judged against, with the decimals needed for the two to
    read the way they compare (:func:`close_call`): "24 %" above a threshold of "24.2 %"
    contradicted its own label."""
    if threshold is not None:
        return close_call(probability, threshold)[0]
    pct = float(probability) * 100.0
    if math.isnan(pct):
        return "—"
    if pct < 1.0:
        return "< 1 %"
    if pct > 99.0:
        return "> 99 %"
    return f"{pct:.0f} %"


def close_call(probability: float, threshold: float) -> tuple[str, str]:
    """The probability's and the threshold's texts, with as many decimals as it takes for them
    to compare as the numbers do: whole percent and one decimal, as everywhere, unless that
    reads wrong ("24 %" at or above "24.2 %", "24 %" below "24 %"); then both with 1, 2, ...
    decimals until it reads right ("24.17 %" above "24.17 %")."""
    p_text, t_text = probability_text(probability), threshold_text(threshold)
    positive = is_positive(probability, threshold)
    if math.isnan(float(probability)) or _reads(p_text, t_text) == positive:
        return p_text, t_text
    p, t = float(probability) * 100.0, float(threshold) * 100.0
    for decimals in range(1, 16):
        pt, tt = f"{p:.{decimals}f}", f"{t:.{decimals}f}"
        if (float(pt) >= float(tt)) == positive and 0.0 < float(pt) < 100.0:
            return f"{pt} %", f"{tt.rstrip('0').rstrip('.')} %"
    return p_text, t_text


def _reads(p_text: str, t_text: str) -> bool:
    """Whether ``p_text`` reads as at or above ``t_text`` ("< 1 %" as just under 1)."""
    def value(text: str) -> float:
        number = float(text.strip("<> %"))
        return number - 1e-9 if text.startswith("<") else number + 1e-9 if text.startswith(">") else number
    return value(p_text) >= value(t_text)


def tidy_number(value: float) -> float:
    """A figure for the files people open (JSON, CSV, the audit log): six significant digits,
    except where that would read exactly 0 or 1 without being it -- a probability of 3e-10
    is not "0", and no result is certain."""
    v = float(value)
    short = float(f"{v:.6g}")
    return v if short in (0.0, 1.0) and short != v else short


def threshold_text(threshold: float, probability: float | None = None) -> str:
    """A threshold to one decimal, without a trailing ".0": "35 %", "12.5 %". A typed threshold
    that rounds to 0 or 100 without being it reads "< 0.1 %" / "> 99.9 %", as a probability
    never reads 0 or 100 %. Beside a ``probability`` judged against it, as many decimals as
    :func:`close_call` needs."""
    if probability is not None:
        return close_call(probability, threshold)[1]
    t = float(threshold)
    text = f"{t * 100:.1f}".rstrip("0").rstrip(".")
    if text == "0" and t > 0.0:
        return "< 0.1 %"
    if text == "100" and t < 1.0:
        return "> 99.9 %"
    return text + " %"


def verdict_text(probability: float, threshold: float) -> str:
    """The sentence for an in-scope result, e.g. "Above the review threshold (35 %)"."""
    side = "Above" if is_positive(probability, threshold) else "Below"
    return f"{side} the review threshold ({threshold_text(threshold, probability)})"


def finding_text(probability: float, threshold: float) -> str:
    """What the model found, in words that claim no more than it knows. Below a threshold
    above 50 % (the balanced point, a typed one) a probability can be over one half: the film
    is not flagged, and the words must not say that no pattern was found."""
    if is_positive(probability, threshold):
        return "pneumonia pattern: needs review"
    if float(probability) >= 0.5:
        return "not flagged at this threshold, but pneumonia is more probable than not"
    return "no pneumonia pattern found"


_R = TypeVar("_R", bound="ReadAtOperatingPoint")


class ReadAtOperatingPoint:
    """What a stored result derives from its ``probability`` and ``operating`` fields.

    Mixed into :class:`inference.prediction.Prediction` and the worklist's record, so the
    label is asked of this module in one place and never stored beside its number.
    """

    probability: float
    operating: OperatingPoint

    @property
    def threshold(self) -> float:
        return self.operating.threshold

    @property
    def operating_point(self) -> str:
        return self.operating.name

    @property
    def sensitivity(self) -> float | None:
        return self.operating.sensitivity.value if self.operating.sensitivity else None

    @property
    def specificity(self) -> float | None:
        return self.operating.specificity.value if self.operating.specificity else None

    @property
    def label(self) -> str:
        return label_for(self.probability, self.threshold)

    @property
    def is_positive(self) -> bool:
        return is_positive(self.probability, self.threshold)

    def at(self: _R, operating: OperatingPoint) -> _R:
        """The same result read at another operating point: the probability does not change,
        so a new threshold never needs the model again."""
        return replace(self, operating=operating)
