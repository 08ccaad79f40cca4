"""The decision rule's words (inference/decision.py): a probability and its threshold never read
against the label they give."""

from __future__ import annotations

import numpy as np
import pytest

from inference.decision import close_call, probability_text, verdict_text


@pytest.mark.parametrize("probability, threshold, shown", [
    (0.2417, 0.24166, ("24.2 %", "24.2 %")),  # read "24 %", above "24.2 %"
    (0.2440, 0.24166, ("24.4 %", "24.2 %")),  # read "24 %", above "24.2 %"
    (0.2385, 0.24166, ("24 %", "24.2 %")),  # reads right as it is
    (0.2403, 0.2404, ("24.03 %", "24.04 %")),  # read "24 %", below "24 %"
    (0.2400, 0.2400, ("24 %", "24 %")),  # at the threshold is above it
    (0.00001, 0.005, ("0.001 %", "0.5 %")),  # read "< 1 %", below "0.5 %"; never "0.0 %"
])
def test_a_probability_beside_its_threshold_reads_the_way_they_compare(probability, threshold, shown):
    assert close_call(probability, threshold) == shown
    assert probability_text(probability, threshold) == shown[0]
    side = "Above" if probability >= threshold else "Below"
    assert verdict_text(probability, threshold) == f"{side} the review threshold ({shown[1]})"


def test_close_calls_read_right_across_a_sweep_of_probabilities_about_a_threshold() -> None:
    """Every probability within half a point of the shipped kind of threshold, in 1e-6 steps."""
    for t in (0.24166, 0.624, 0.074, 0.5):
        for p in np.arange(t - 0.005, t + 0.005, 1e-6):
            p_text, t_text = close_call(float(p), t)
            value = lambda text: float(text.strip("<> %"))  # noqa: E731
            assert (value(p_text) >= value(t_text)) == (p >= t), (p, t, p_text, t_text)
