"""How LungLens does here: the active profile's operating point against the reader's verdicts.

The figures a profile carries were measured on the films that set it; what a clinic needs to
know is how the model does on its own studies, as its readers call them. Every study the
reader marked "pneumonia" or "no pneumonia" is one labelled film (:func:`verdict_films`:
"unsure" and results the model called not reliable are left out, one count per radiograph),
read under the active profile from its stored logit -- so a result stored under an earlier
profile counts as this profile would have read it. The figures are AUC, sensitivity and
specificity with bootstrap 95 % intervals over patients (over studies where the patient is
unknown), computed by the same functions as a profile's own. Below :data:`MIN_PER_CLASS`
of a class no figure is given, counted as the bootstrap counts (patients, or studies): an
interval over five studies says nothing a reader could act on, and a bare percentage would look
as if it did -- and ten studies of four children are four, whose "100.0 % (39.8-100.0)" had
stood beside "10 of the 10 studies" with nothing saying why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .calibration import auc_estimate, sens_spec_estimates
from .decision import Estimate, OperatingPoint
from .profile import ProfileInfo, SiteProfile
from .site_calibration import VERDICTS_SOURCE, verdict_films
from .worklist import WorklistRecord

MIN_PER_CLASS = 10


@dataclass(frozen=True)
class LocalPerformance:
    """The figures (None when there are too few verdicts) and what they were measured on."""

    profile: ProfileInfo
    operating: OperatingPoint
    n_pneumonia: int  # studies the reader called "pneumonia"
    n_no_pneumonia: int
    grouping: str  # "patient" or "film": what the bootstrap resampled
    groups_pneumonia: int = 0  # patients (or studies, grouping "film") among the "pneumonia" studies
    groups_no_pneumonia: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> studies left out
    flagged_pneumonia: int = 0  # of the reader's "pneumonia" studies, at or above the threshold
    cleared_no_pneumonia: int = 0  # of the reader's "no pneumonia" studies, below it
    auc: Estimate | None = None
    sensitivity: Estimate | None = None
    specificity: Estimate | None = None
    too_few: str = ""  # why no figures are given ("" when they are)
    caveat: str = ""  # when the profile was fitted on these very verdicts (see fitted_on_verdicts)

    @property
    def n(self) -> int:
        return self.n_pneumonia + self.n_no_pneumonia


def fitted_on_verdicts(profile: SiteProfile) -> str:
    """What to say when the profile in use was fitted on the worklist's verdicts ("" if not):
    its thresholds were set on the very studies measured here, whose figures then read as the
    profile's own, not as a fresh check."""
    if not profile.source.startswith(VERDICTS_SOURCE):
        return ""
    made = f" on {profile.created[:10]}" if profile.created else ""
    return (f"This profile was fitted{made} on the reader verdicts in this worklist: the verdicts it was "
            "fitted on set its thresholds, so on them it looks better than on new studies. Only verdicts "
            "given since are a fresh check.")


def local_performance(records: Iterable[WorklistRecord], profile: SiteProfile, operating: OperatingPoint,
                      n_boot: int = 1000, min_per_class: int = MIN_PER_CLASS) -> LocalPerformance:
    """The active profile read at ``operating`` against the reader verdicts in ``records``."""
    films = verdict_films(records, profile.model)
    measured = films.measured
    y = np.asarray(measured.labels, dtype=np.int64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    resampled = measured.resampled()
    groups = np.asarray(resampled.groups)
    g_pos, g_neg = len(set(groups[y == 1])), len(set(groups[y == 0]))
    base = dict(profile=profile.info, operating=operating, n_pneumonia=n_pos, n_no_pneumonia=n_neg,
                grouping=resampled.grouping, groups_pneumonia=g_pos, groups_no_pneumonia=g_neg,
                skipped=films.skipped, caveat=fitted_on_verdicts(profile))
    if g_pos < min_per_class or g_neg < min_per_class:
        unit = "patients" if resampled.grouping == "patient" else "studies"
        of = (f" (of {g_pos} and {g_neg} patients)" if resampled.grouping == "patient" and (g_pos, g_neg) != (n_pos, n_neg)
              else "")
        return LocalPerformance(**base, too_few=(
            f"Too few verdicts to measure anything yet: {n_pos} “pneumonia” and {n_neg} “no pneumonia”{of}. "
            f"At least {min_per_class} {unit} of each are needed; with fewer, the uncertainty is so wide that "
            f"a figure would mislead."))
    logit = np.asarray(measured.logits, dtype=np.float64)
    prob = np.asarray(profile.calibration.probability(logit))
    sensitivity, specificity = sens_spec_estimates(y, prob, operating.threshold, groups, n_boot)
    flagged = prob >= operating.threshold
    return LocalPerformance(
        **base,
        flagged_pneumonia=int(flagged[y == 1].sum()),
        cleared_no_pneumonia=int((~flagged[y == 0]).sum()),
        auc=auc_estimate(y, logit, groups, n_boot),
        sensitivity=sensitivity,
        specificity=specificity,
    )
