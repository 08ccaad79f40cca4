"""The batch's time remaining follows the pace of the latest results (desktop/models/batch_clock.py)."""

from __future__ import annotations

import pytest

from desktop.models.batch_clock import WINDOW, BatchClock


def test_nothing_is_promised_before_two_results_and_nothing_remains_at_the_end() -> None:
    clock = BatchClock()
    assert clock.eta(10) == -1.0
    clock.finished(5.0)  # the first result carries the analysis process's start
    assert clock.eta(10) == -1.0
    clock.finished(5.5)
    assert clock.eta(10) == pytest.approx(5.0)
    assert clock.eta(0) == 0.0


def test_a_slow_start_and_a_burst_of_remembered_results_do_not_set_the_pace() -> None:
    """Averaged since the batch began, a 4 s start made 1,000 films look 1.5 times longer than
    they took, and results answered from the worklist at once made the rest look instant."""
    clock = BatchClock()
    t = 4.0  # the process starting and the model loading
    for _ in range(50):  # already in the worklist: answered at once
        clock.finished(t)
    for _ in range(WINDOW):  # then analysed, 0.1 s each
        t += 0.1
        clock.finished(t)
    assert clock.eta(200) == pytest.approx(20.0)


def test_a_new_batch_starts_a_new_pace() -> None:
    clock = BatchClock()
    clock.finished(0.0)
    clock.finished(10.0)
    clock.restart()
    clock.finished(20.0)
    assert clock.eta(3) == -1.0
    clock.finished(20.5)
    assert clock.eta(3) == pytest.approx(1.5)
