"""Times the window shows are the reader's local time, the analysis's as the verdict's: a
verdict at 15:10 local beside "analysed 20:10 UTC" read as given before the analysis."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from inference.presentation import local_time_text, reader_text


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_analysis_and_the_verdict_are_said_in_the_same_local_time(new_york) -> None:  # type: ignore[no-untyped-def]
    analysed, given = "2026-12-02T20:10:00+00:00", "2026-12-02T20:12:00+00:00"
    now = datetime(2026, 12, 2, 16, 0, tzinfo=timezone.utc).astimezone()
    assert local_time_text(analysed) == "2026-12-02 15:10"
    assert reader_text("pneumonia", given, now) == "pneumonia, 15:12"
    assert local_time_text("not a time") == "not a time"
