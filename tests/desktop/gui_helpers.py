"""Helpers shared by the desktop tests."""

from __future__ import annotations


def wait_idle(qtbot, controller, timeout_ms: int = 120_000) -> None:
    """Until nothing is queued or being listed and the study on screen is fully shown."""
    qtbot.waitUntil(lambda: controller.idle, timeout=timeout_ms)
