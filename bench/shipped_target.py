"""Which target sensitivity the shipped profile's default point should be fitted with.

    .venv/bin/python bench/shipped_target.py [--site DIR] [--repeats 20] [--folds 5]
                                             [--targets 0.92 0.93 0.94 0.95]

The high-sensitivity point is the most specific threshold whose sensitivity's 95 % lower bound
reaches a target, so a higher target buys a safer claim with specificity. What matters to a
reader is what the point gives on films it was not fitted on. This measures that by
cross-fitting on the site sample: the patients are dealt into ``--folds`` folds; each fold's
films are judged at the threshold fitted (calibration and operating point, with the code
``lunglens calibrate`` uses) on the other folds' films; the judgements of all folds are pooled
into one sensitivity and one specificity. Repeated over ``--repeats`` random deals, for each
target. Each image is counted once, and films the input gate calls not reliable are left out,
as ``lunglens calibrate`` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.site_halves import measured  # noqa: E402
from inference.calibration import choose_calibration, operating_thresholds  # noqa: E402
from inference.engine import Engine  # noqa: E402
from inference.profile import UNCALIBRATED  # noqa: E402


def cross_fitted(y: np.ndarray, z: np.ndarray, groups: np.ndarray, folds: np.ndarray, target: float,
                 n_boot: int) -> tuple[float, float]:
    """Pooled out-of-fold sensitivity and specificity of the high-sensitivity point."""
    flagged = np.zeros(len(y), dtype=bool)
    for k in np.unique(folds):
        fit = folds != k
        calibration, _ = choose_calibration(y[fit], z[fit], groups[fit])
        thresholds, _ = operating_thresholds(y[fit], np.asarray(calibration.probability(z[fit])), groups[fit],
                                             target, n_boot)
        flagged[~fit] = np.asarray(calibration.probability(z[~fit])) >= thresholds["high_sensitivity"]
    return float(flagged[y == 1].mean()), float((~flagged[y == 0]).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", type=Path, default=REPO.parent / "shared/data/kermany-cxr-224/site-sample")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--targets", type=float, nargs="+", default=[0.92, 0.93, 0.94, 0.95])
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples per fit (as `lunglens calibrate`)")
    p.add_argument("--models", type=Path, default=None, help="a model folder (default: the bundled model)")
    args = p.parse_args(argv)
    engine = Engine.load(args.models, provider="cpu", profile=UNCALIBRATED)
    films = measured(engine, args.site)
    y, z, groups = np.asarray(films.labels), np.asarray(films.logits), np.asarray(films.resampled().groups)
    patients = np.unique(groups)
    print(f"{len(y)} films ({(y == 0).sum()} NORMAL, {(y == 1).sum()} PNEUMONIA) of {len(patients)} patients; "
          f"{args.folds} folds by patient, {args.repeats} deals; pooled out-of-fold figures, "
          "median (5th-95th percentile) over deals")
    rng = np.random.default_rng(0)
    deals = []
    for _ in range(args.repeats):
        fold_of = dict(zip(rng.permutation(patients), np.arange(len(patients)) % args.folds))
        deals.append(np.array([fold_of[g] for g in groups]))
    for target in args.targets:
        rows = np.array([cross_fitted(y, z, groups, folds, target, args.bootstrap) for folds in deals])
        parts = []
        for j, label in enumerate(("sensitivity", "specificity")):
            lo, med, hi = np.percentile(rows[:, j], [5, 50, 95])
            parts.append(f"{label} {med:.3f} ({lo:.3f}-{hi:.3f})")
        print(f"target {target:g}: " + "  ".join(parts) + f"  mean {rows[:, 0].mean():.3f} / {rows[:, 1].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
