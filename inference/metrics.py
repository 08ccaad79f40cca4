"""Figures on labelled films: AUC, ECE, reliability bins, temperature and Platt fits, Youden's
point, patient-bootstrap CIs.

Pure numpy so training, the shipped profile and a clinic's own calibration compute every
figure the same way.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # no overflow


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # average rank of each tie group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-width probability bins: mean predicted vs observed fraction of pneumonia."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = idx == b
        count = int(sel.sum())
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "mean_predicted": float(p[sel].mean()) if count else None,
                "observed_fraction": float(y[sel].mean()) if count else None,
                "count": count,
            }
        )
    return bins


def ece(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width bins (count-weighted |predicted - observed|)."""
    total = len(y)
    return float(
        sum(b["count"] / total * abs(b["mean_predicted"] - b["observed_fraction"]) for b in reliability(y, prob, n_bins) if b["count"])
    )


def fit_temperature(y: np.ndarray, logit: np.ndarray) -> float:
    """T minimizing the negative log-likelihood of sigmoid(logit / T) (golden-section on log T)."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logit, dtype=np.float64)

    def nll(log_t: float) -> float:
        p = np.clip(sigmoid(z / math.exp(log_t)), 1e-12, 1 - 1e-12)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    lo, hi = math.log(0.05), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(100):
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    return float(math.exp((lo + hi) / 2))


def sens_spec(y: np.ndarray, prob: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when 'pneumonia' means prob >= threshold."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(prob) >= threshold
    return float(pred[y].mean()), float((~pred[~y]).mean())


def youden_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """Threshold maximizing sensitivity + specificity - 1 (midpoint between neighbouring scores)."""
    p = np.unique(np.asarray(prob, dtype=np.float64))
    cands = np.concatenate([[p[0]], (p[:-1] + p[1:]) / 2])
    best_t, best_j = float(cands[0]), -1.0
    for t in cands:
        se, sp = sens_spec(y, prob, t)
        if se + sp - 1 > best_j:
            best_t, best_j = float(t), se + sp - 1
    return best_t


# A resample is a few hundred small Python and numpy steps, some of which drop and retake the
# GIL at once: a thread waiting for it rarely got it, and the window's thread, while the
# calibration wizard fitted, went 0.16-0.32 s without running. Sleeping for no time every few
# resamples hands the GIL over (its longest stall then 0.04-0.08 s; the figures are the same).
YIELD_EVERY = 25


def bootstrap_ci(
    stat: Callable[[np.ndarray], float], groups: np.ndarray, n_boot: int = 1000, seed: int = 0,
    bias_corrected: bool = False,
) -> tuple[float, float]:
    """95% percentile interval of stat(indices), resampling PATIENTS (groups) with replacement.

    ``bias_corrected`` shifts the interval down by the bootstrap's own bias (mean of the
    resamples minus the estimate on all films), floored at 0. For the binned ECE it is
    needed: a resample repeats films, which fills its bins more unevenly, so every resample's
    ECE is higher than the full set's and on 40 + 40 films the plain interval (7-16 %) missed
    its own estimate (6 %).
    """
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    vals = []
    for k in range(n_boot):
        if k % YIELD_EVERY == 0:
            time.sleep(0)
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        v = stat(idx)
        if not math.isnan(v):
            vals.append(v)
    lo, hi = np.percentile(vals, [2.5, 97.5])
    if bias_corrected:
        bias = float(np.mean(vals)) - stat(np.concatenate(members))
        lo, hi = max(0.0, lo - bias), max(0.0, hi - bias)
    return float(lo), float(hi)


def fit_platt(y: np.ndarray, logit: np.ndarray) -> tuple[float, float]:
    """(a, b) maximizing the likelihood of sigmoid(a * logit + b): Newton's method with
    backtracking, so large or shifted logits converge instead of overshooting.

    Returns (1, 0) when the data are separable (no finite optimum).
    """
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logit, dtype=np.float64)

    def nll(a: float, b: float) -> float:
        t = a * z + b
        return float(np.mean(np.logaddexp(0.0, t) - y * t))

    a, b = 1.0, 0.0
    current = nll(a, b)
    for _ in range(100):
        p = sigmoid(a * z + b)
        g = np.array([((p - y) * z).sum(), (p - y).sum()])
        w = p * (1 - p) + 1e-12
        h = np.array([[(w * z * z).sum(), (w * z).sum()], [(w * z).sum(), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        scale = 1.0
        while scale > 1e-6 and nll(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        a, b = a - scale * step[0], b - scale * step[1]
        previous, current = current, nll(a, b)
        if abs(previous - current) < 1e-12:
            break
    if not (np.isfinite(a) and np.isfinite(b)) or not 0.001 < a < 100:  # separable data: no fit
        return 1.0, 0.0
    return float(a), float(b)
