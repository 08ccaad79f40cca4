"""How long the rest of a batch will take, from the pace of its latest results.

The average since the batch began counts the analysis process's start and the worklist's
instant answers for studies it already holds, so it misjudged a long batch both ways (half
again too long at 5 % done on 1,000 films). The pace of the last :data:`WINDOW` results
follows what the machine does now.
"""

from __future__ import annotations

from collections import deque

WINDOW = 100  # results


class BatchClock:
    """Feed it the time of each finished study; ask :meth:`eta` for the remaining ones."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=WINDOW + 1)

    def restart(self) -> None:
        """A new batch: its pace is its own."""
        self._times.clear()

    def finished(self, now: float) -> None:
        self._times.append(now)

    def eta(self, remaining: int) -> float:
        """Seconds for ``remaining`` studies at the recent pace; -1 until two have finished."""
        if remaining <= 0:
            return 0.0
        if len(self._times) < 2:
            return -1.0
        return remaining * (self._times[-1] - self._times[0]) / (len(self._times) - 1)
