"""Site calibration: turn a model's logits on labelled films into a profile.

A profile is what makes a raw logit a probability at one site and where that site's review
thresholds lie: a logistic calibration fitted on the site's own labelled films and two
operating points, each with the sensitivity and specificity it gave there and their 95 %
intervals. The shipped default (``resources/models/<model>.profile.json``) is made by this
very code from the site sample, so a clinic's own profile is no different in kind
(``lunglens calibrate``; :mod:`inference.profile` reads and writes the file).

Why these choices:

* Calibration is logistic on the logit: temperature (``sigmoid(z / T)``) or Platt
  (``sigmoid(a z + b)``). Both keep the ranking, so the AUC is untouched; which one is used
  is chosen by cross-validated ECE (folds by patient), since a shift ``b`` helps only when
  the site's prevalence or equipment really moved the logits.
* High sensitivity is the most specific threshold whose sensitivity's 95 % *lower* bound
  still reaches the target: choosing on the point estimate would miss the target on new
  films half of the time. The bound is the patient-bootstrap interval the profile shows for
  that threshold, so the rule and the figure a user reads are one and the same. Balanced is Youden's point. If Youden's threshold is the lower
  one it is also the high-sensitivity point, so the names always match their figures.
* Intervals are bootstrap percentiles over patients (several films of one child are not
  independent), else over films. A sensitivity or specificity of exactly 100 % (or 0 %) is
  the one case where that interval collapses to a point -- every resample gives 100 % -- and
  would read "100.0 % (100.0-100.0)" on 20 films. There the open end is the exact
  (Clopper-Pearson) bound for n of n, counting patients: 83 % for 20, 93 % from 51, 95 % from 72.
  So with fewer pneumonia patients than that a threshold that finds them all cannot show 95 %
  sensitivity with 95 % confidence; when no threshold does, the profile says so instead of
  claiming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import metrics as M
from .decision import Estimate, OperatingPoint

METHODS = ("temperature", "platt")
# The target the high-sensitivity point asks by default, for the shipped profile and a clinic's
# own alike. On a clinic's 50 or so pneumonia patients, 0.95 puts the threshold at or next to
# its lowest-scoring pneumonia films: fitted on half the site sample's patients, it read
# sensitivity 0.978 and specificity 0.795 on the other half (median of 100 splits); 0.93 read
# 0.969 and 0.845 (bench/site_halves.py). bench/shipped_target.py chose it for the shipped profile.
DEFAULT_TARGET = 0.93
MIN_PER_CLASS = 20
CV_FOLDS = 5


class CalibrationDataError(ValueError):
    """The labelled films cannot support a calibration (one class, too few films)."""


@dataclass(frozen=True)
class Calibration:
    """p = sigmoid(slope * logit + intercept). Temperature scaling is intercept 0, slope 1/T."""

    method: str
    slope: float
    intercept: float

    def probability(self, logit: float | np.ndarray) -> float | np.ndarray:
        z = self.slope * np.asarray(logit, dtype=np.float64) + self.intercept
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
        return float(p) if np.ndim(p) == 0 else p

    def to_dict(self) -> dict:
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        method = str(data["method"])
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})")
        slope, intercept = float(data["slope"]), float(data["intercept"])
        if not (math.isfinite(slope) and slope > 0 and math.isfinite(intercept)):
            raise ValueError(f"calibration slope must be positive and finite, got {slope}, {intercept}")
        return cls(method, slope, intercept)


IDENTITY = Calibration("temperature", 1.0, 0.0)


def fit(method: str, y: np.ndarray, logit: np.ndarray) -> Calibration:
    """Fit one calibration method by maximum likelihood; on films the model separates
    perfectly, to Platt's targets (see :func:`targets`)."""
    t = targets(y, logit)
    if method == "temperature":
        return Calibration("temperature", 1.0 / M.fit_temperature(t, logit), 0.0)
    if method == "platt":
        a, b = M.fit_platt(t, logit)
        return Calibration("platt", a, b)
    raise ValueError(f"unknown calibration method {method!r}")


def targets(y: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """What the fit aims at: the labels; but where every PNEUMONIA film scores above every
    NORMAL one the likelihood grows without end as the slope does, and 22 + 22 such films had
    given a slope of 11 (75 on other draws): every new film "> 99 %" or "< 1 %", four normal
    ones among the first. There Platt's own targets, (n+1)/(n+2) and 1/(n+2) for n films of
    a class, say what so few films can show: certainty no greater than their number gives."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logit, dtype=np.float64)
    positive, negative = y == 1, y == 0
    if not positive.any() or not negative.any() or z[negative].max() >= z[positive].min():
        return y
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    return np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))


def patient_folds(groups: np.ndarray, k: int = CV_FOLDS, seed: int = 0) -> np.ndarray:
    """Fold number of each film, whole patients to one fold."""
    uniq, inv = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_group = np.empty(len(uniq), dtype=int)
    fold_of_group[order] = np.arange(len(uniq)) % k
    return fold_of_group[inv]


def cross_validated_ece(method: str, y: np.ndarray, logit: np.ndarray, groups: np.ndarray) -> float:
    """ECE of out-of-fold probabilities when each fold is calibrated on the others."""
    folds = patient_folds(groups)
    prob = np.empty(len(y))
    for f in np.unique(folds):
        test = folds == f
        train = ~test
        if len(np.unique(y[train])) < 2:
            prob[test] = M.sigmoid(logit[test])
            continue
        prob[test] = fit(method, y[train], logit[train]).probability(logit[test])
    return M.ece(y, prob)


def choose_calibration(y: np.ndarray, logit: np.ndarray, groups: np.ndarray) -> tuple[Calibration, dict[str, float]]:
    """The method with the lowest cross-validated ECE, refitted on all films; and every CV ECE."""
    cv = {m: cross_validated_ece(m, y, logit, groups) for m in METHODS}
    best = min(METHODS, key=lambda m: (cv[m], METHODS.index(m)))
    return fit(best, y, logit), cv


def all_of_n_lower_bound(n: int) -> float:
    """The exact (Clopper-Pearson) 95 % lower bound of a proportion observed as n of n."""
    return 0.025 ** (1.0 / n)


def patients_needed(target: float) -> int:
    """The fewest patients, all found, whose exact lower bound reaches ``target``."""
    return math.ceil(math.log(0.025) / math.log(target))


def _exact_at_the_ends(e: Estimate, n: int) -> Estimate:
    """``e`` with the exact bound at an end where the bootstrap interval collapses (see above)."""
    if e.value >= 1.0:
        return Estimate(e.value, min(e.lo, all_of_n_lower_bound(n)), 1.0)
    if e.value <= 0.0:
        return Estimate(e.value, 0.0, max(e.hi, 1.0 - all_of_n_lower_bound(n)))
    return e


def sensitivity_lower_bounds(y: np.ndarray, prob: np.ndarray, groups: np.ndarray,
                             n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each positive film's score taken as the threshold (sorted high to low): the 2.5th
    percentile of sensitivity over patient-bootstrap resamples -- the lower end of the very
    interval the profile shows for that threshold (with the exact bound where every positive
    film is found, as :func:`sens_spec_estimates` shows it)."""
    yb = np.asarray(y).astype(bool)
    uniq, inv = np.unique(groups, return_inverse=True)
    pos = np.flatnonzero(yb)
    order = pos[np.argsort(-np.asarray(prob)[pos], kind="mergesort")]
    rng = np.random.default_rng(seed)
    # times each patient is drawn, per resample -> weight of each positive film
    draws = np.stack([np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq)) for _ in range(n_boot)])
    w = draws[:, inv[order]].astype(np.float64)  # [n_boot, n_pos], positives high to low
    total = w.sum(axis=1, keepdims=True)
    sens = np.cumsum(w, axis=1) / np.where(total > 0, total, 1.0)
    lower = np.percentile(sens[total[:, 0] > 0], 2.5, axis=0)
    lower[-1] = min(lower[-1], all_of_n_lower_bound(len(np.unique(inv[pos]))))
    return np.asarray(prob)[order], lower


def operating_thresholds(y: np.ndarray, prob: np.ndarray, groups: np.ndarray, target_sensitivity: float,
                         n_boot: int = 1000) -> tuple[dict[str, float], bool]:
    """Thresholds of the high-sensitivity and balanced points (see the module docstring), and
    whether any threshold reached the target (if none did, high sensitivity is the most
    sensitive threshold: every positive film at or above it)."""
    scores, lower = sensitivity_lower_bounds(y, prob, groups, n_boot)
    meets = np.flatnonzero(lower >= target_sensitivity)
    hs = float(scores[meets[0]]) if len(meets) else float(scores[-1])
    bal = M.youden_threshold(y, prob)
    return {"high_sensitivity": min(hs, bal), "balanced": bal}, bool(len(meets))


def estimate(stat: Callable[[np.ndarray], float], groups: np.ndarray, n_boot: int,
             bias_corrected: bool = False) -> Estimate:
    """``stat`` on all films with its patient-bootstrap 95 % interval (``stat`` takes film
    indices); ``bias_corrected`` for a statistic the resampling itself inflates (the ECE)."""
    lo, hi = M.bootstrap_ci(stat, groups, n_boot=n_boot, bias_corrected=bias_corrected)
    return Estimate(float(stat(np.arange(len(groups)))), lo, hi)


def auc_estimate(y: np.ndarray, logit: np.ndarray, groups: np.ndarray, n_boot: int) -> Estimate:
    """The AUC with its patient-bootstrap 95 % interval. Where the films are separated perfectly
    every resample gives 1.000 too, and the interval read "1.000 (1.000-1.000)" on 20 + 20
    films. There its lower end is the exact bound for k of k, k the smaller class's patients:
    one pneumonia and one normal patient each, paired off, are k independent pairs all ranked
    right, and the AUC is the chance that such a pair is (83 % for 20)."""
    y = np.asarray(y)
    e = estimate(lambda i: M.auc(y[i], logit[i]), groups, n_boot)
    if e.value < 1.0:
        return e
    k = min(len(np.unique(np.asarray(groups)[y == label])) for label in (0, 1))
    return Estimate(e.value, min(e.lo, all_of_n_lower_bound(k)), 1.0)


def sens_spec_estimates(y: np.ndarray, prob: np.ndarray, threshold: float, groups: np.ndarray,
                        n_boot: int) -> tuple[Estimate, Estimate]:
    """Sensitivity and specificity at ``threshold`` with patient-bootstrap 95 % intervals
    (exact at 0 and 100 %, see the module docstring)."""
    yb = np.asarray(y).astype(bool)
    groups = np.asarray(groups)

    def sens(i: np.ndarray) -> float:
        return M.sens_spec(yb[i], prob[i], threshold)[0] if yb[i].any() else math.nan

    def spec(i: np.ndarray) -> float:
        return M.sens_spec(yb[i], prob[i], threshold)[1] if (~yb[i]).any() else math.nan

    return (_exact_at_the_ends(estimate(sens, groups, n_boot), len(np.unique(groups[yb]))),
            _exact_at_the_ends(estimate(spec, groups, n_boot), len(np.unique(groups[~yb]))))


SCREENING = "Screening default: "  # how the high-sensitivity point's description begins


def describe(name: str, target: float, same_as_balanced: bool, met: bool, n_positive: int,
             grouping: str = "patient") -> str:
    """What an operating point is, in words (``met``, ``n_positive``: see :func:`operating_thresholds`;
    ``grouping``: what the bootstrap resampled, "patient" or "film")."""
    if name == "high_sensitivity":
        if met:
            text = (f"{SCREENING}the most specific threshold whose sensitivity on these films is "
                    f"at least {target * 100:.0f} % with 95 % confidence (lower end of its {grouping}-bootstrap interval), "
                    f"so few pneumonias are missed.")
        else:
            had = f"{n_positive}" if grouping == "patient" else f"{n_positive} films, each counted as a patient"
            text = (f"{SCREENING}No threshold showed a sensitivity of at least {target * 100:.0f} % with 95 % "
                    f"confidence on these films: that needs at least {patients_needed(target)} patients with "
                    f"pneumonia, all found, and these had {had}. So this is the most sensitive threshold: "
                    f"every pneumonia film here is at or above it.")
        if same_as_balanced:
            text += " Here it coincides with the balanced point, which is already that sensitive."
        return text
    return "Youden's point on these films: the threshold that maximizes sensitivity + specificity."


@dataclass(frozen=True)
class Fit:
    """Everything fitted from one set of labelled films (the body of a profile)."""

    calibration: Calibration
    cv_ece: dict[str, float]
    operating_points: dict[str, OperatingPoint]
    auc: Estimate
    ece_before: Estimate
    ece_after: Estimate
    reliability: list[dict]
    roc: list[list[float]]  # [fpr, tpr] pairs, thinned
    n_normal: int
    n_pneumonia: int
    n_groups: int
    target_sensitivity: float


def check_counts(y: np.ndarray) -> None:
    """Refuse data that cannot support a calibration, saying what is missing."""
    n_pos = int(np.sum(y == 1))
    n_neg = int(np.sum(y == 0))
    if n_pos == 0 or n_neg == 0:
        only = "PNEUMONIA" if n_pos else "NORMAL"
        raise CalibrationDataError(
            f"all {len(y)} labelled films are {only}: calibration needs films of both classes "
            f"(at least {MIN_PER_CLASS} NORMAL and {MIN_PER_CLASS} PNEUMONIA)")
    for name, n in (("NORMAL", n_neg), ("PNEUMONIA", n_pos)):
        if n < MIN_PER_CLASS:
            raise CalibrationDataError(
                f"only {n} {name} films: calibration needs at least {MIN_PER_CLASS} of each class "
                f"({MIN_PER_CLASS - n} more {name})")


def roc_points(y: np.ndarray, score: np.ndarray, max_points: int = 200) -> list[list[float]]:
    """The ROC curve as [fpr, tpr] pairs from (0, 0) to (1, 1), thinned to ``max_points``."""
    yb = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    tp = np.concatenate([[0], np.cumsum(yb[order])])
    fp = np.concatenate([[0], np.cumsum(~yb[order])])
    tpr, fpr = tp / max(1, yb.sum()), fp / max(1, (~yb).sum())
    keep = np.unique(np.linspace(0, len(tpr) - 1, min(max_points, len(tpr))).round().astype(int))
    return [[float(fpr[i]), float(tpr[i])] for i in keep]


def fit_site(y: np.ndarray, logit: np.ndarray, groups: np.ndarray | None = None,
             target_sensitivity: float = DEFAULT_TARGET, n_boot: int = 1000, grouping: str = "patient") -> Fit:
    """Calibrate and set the operating points on one site's labelled films (0 NORMAL, 1 PNEUMONIA);
    ``groups`` are what the bootstrap resamples (``grouping``: "patient", or "film" when each
    film is its own group; None: films)."""
    y = np.asarray(y, dtype=np.int64)
    logit = np.asarray(logit, dtype=np.float64)
    if len(y) != len(logit):
        raise ValueError(f"{len(y)} labels for {len(logit)} logits")
    if not 0.5 <= target_sensitivity < 1.0:
        raise ValueError(f"target sensitivity must be between 0.5 and 1, got {target_sensitivity}")
    check_counts(y)
    if groups is None:
        groups, grouping = np.arange(len(y)).astype(str), "film"
    groups = np.asarray(groups)
    calibration, cv = choose_calibration(y, logit, groups)
    prob = np.asarray(calibration.probability(logit))
    raw = M.sigmoid(logit)
    thresholds, met = operating_thresholds(y, prob, groups, target_sensitivity, n_boot)
    same = thresholds["high_sensitivity"] == thresholds["balanced"]
    n_positive = len(np.unique(groups[y == 1]))
    ops = {}
    for name, thr in thresholds.items():
        se, sp = sens_spec_estimates(y, prob, thr, groups, n_boot)
        # The words follow the interval shown: at 100 % it is the exact bound, which a few
        # patients keep below the target even where a higher threshold's bootstrap reached it.
        shown_met = met and se.lo >= target_sensitivity
        ops[name] = OperatingPoint(name, float(thr), se, sp,
                                   describe(name, target_sensitivity, same, shown_met, n_positive, grouping))
    return Fit(
        calibration=calibration,
        cv_ece=cv,
        operating_points=ops,
        auc=auc_estimate(y, logit, groups, n_boot),
        ece_before=estimate(lambda i: M.ece(y[i], raw[i]), groups, n_boot, bias_corrected=True),
        ece_after=estimate(lambda i: M.ece(y[i], prob[i]), groups, n_boot, bias_corrected=True),
        reliability=M.reliability(y, prob),
        roc=roc_points(y, logit),
        n_normal=int((y == 0).sum()),
        n_pneumonia=int((y == 1).sum()),
        n_groups=len(np.unique(groups)),
        target_sensitivity=float(target_sensitivity),
    )
