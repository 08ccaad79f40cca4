"""The input gate's fitting code (numpy only): shrinkage covariance, out-of-fold scores, thresholds."""

from __future__ import annotations

import numpy as np

from training.ood_stats import common_percentile, ledoit_wolf, mahalanobis, out_of_fold_figures


def test_ledoit_wolf_recovers_a_known_covariance_and_shrinks_when_data_are_few() -> None:
    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, 0.3], [0.0, 0.3, 0.25]])
    x = rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=20_000)
    mean, precision, shrinkage = ledoit_wolf(x)
    np.testing.assert_allclose(mean, [1.0, -2.0, 0.5], atol=0.05)
    np.testing.assert_allclose(np.linalg.inv(precision), cov, rtol=0.05, atol=0.02)
    assert 0.0 <= shrinkage < 0.01  # plenty of data: almost no shrinkage
    # Squared Mahalanobis distances of Gaussian data in 3-D average 3.
    assert abs(np.mean(mahalanobis(x, mean, precision) ** 2) - 3.0) < 0.1

    few = rng.normal(size=(30, 60))  # fewer samples than dimensions: still invertible, shrunk hard
    _, p_few, s_few = ledoit_wolf(few)
    assert s_few > 0.5 and np.all(np.isfinite(p_few))


def test_out_of_fold_scores_exceed_in_sample_ones_and_thresholds_meet_the_rate() -> None:
    rng = np.random.default_rng(1)
    n = 600
    features, layout = rng.normal(size=(n, 20)), rng.random((n, 16 * 16 + 2))
    groups = np.repeat(np.arange(n // 2), 2)  # two images per patient
    oof = out_of_fold_figures(features, layout, groups)
    assert set(oof) == {"likeness", "orientation"} and all(v.shape == (n,) for v in oof.values())
    joint = np.concatenate([features, layout], axis=1)
    in_sample = mahalanobis(joint, *ledoit_wolf(joint)[:2])
    assert np.median(oof["likeness"]) > np.median(in_sample)  # the fit has not seen its fold

    percentile = common_percentile(oof, 0.01)
    flagged = np.any([v > np.percentile(v, percentile) for v in oof.values()], axis=0)
    assert flagged.mean() <= 0.01
    assert common_percentile(oof, 0.03) < percentile
