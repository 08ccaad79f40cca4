"""What the window and its analysis process say to each other: typed, picklable messages.

Commands go parent -> child (:class:`Jobs`, :class:`Cancel`, :class:`SetOperating`,
:class:`Stop`); reports go child -> parent, and each report delivers itself to a
:class:`ResultSink`, so the parent dispatches by type, not by a string naming a method. A
report that settles a study (:data:`SETTLES`) takes it off the child's in-flight set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from inference.decision import OperatingPoint
from inference.manifest import ModelManifest
from inference.prediction import Prediction
from inference.profile import SiteProfile
from inference.study import StudyMetadata
from inference.worklist import WorklistRecord


@dataclass(frozen=True)
class EngineInfo:
    """What the window needs to know about the engine running in the child."""

    provider: str
    manifest: ModelManifest
    profile: SiteProfile  # the calibration and operating points the engine applies
    warnings: list[str] = field(default_factory=list)
    load_ms: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """Where a result came from and how it was kept."""

    record: WorklistRecord  # as stored (no images); ``id`` is None when there is no worklist
    cached: bool = False  # answered from the worklist: no inference ran


class ResultSink(Protocol):
    """Where the parent reports; called from its reader thread."""

    def engine_ready(self, info: EngineInfo) -> None: ...
    def engine_failed(self, reason: str) -> None: ...
    def started(self, key: int, stage: str) -> None: ...
    def loaded(self, key: int, thumbnail: np.ndarray, metadata: StudyMetadata, warnings: list[str]) -> None: ...
    def finished(self, key: int, prediction: Prediction, outcome: Outcome) -> None: ...
    def failed(self, key: int, reason: str) -> None: ...
    def cancelled(self, key: int) -> None: ...
    def storage_failed(self, reason: str) -> None: ...


# -- parent -> child -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Jobs:
    """Studies to analyse, in this order: (the study list's key, path)."""

    jobs: list[tuple[int, Path]]


@dataclass(frozen=True)
class Cancel:
    """Drop every study not yet reported."""


@dataclass(frozen=True)
class SetOperating:
    """Read results from now on at this operating point (None: the profile's default)."""

    operating: OperatingPoint | None


@dataclass(frozen=True)
class Stop:
    """Finish writing what is done, then end."""


Command = Jobs | Cancel | SetOperating | Stop


# -- child -> parent -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineReady:
    info: EngineInfo

    def deliver(self, sink: ResultSink) -> None:
        sink.engine_ready(self.info)


@dataclass(frozen=True)
class EngineFailed:
    reason: str

    def deliver(self, sink: ResultSink) -> None:
        sink.engine_failed(self.reason)


@dataclass(frozen=True)
class Started:
    key: int
    stage: str  # "loading" | "running"

    def deliver(self, sink: ResultSink) -> None:
        sink.started(self.key, self.stage)


@dataclass(frozen=True)
class Loaded:
    key: int
    thumbnail: np.ndarray
    metadata: StudyMetadata
    warnings: list[str]

    def deliver(self, sink: ResultSink) -> None:
        sink.loaded(self.key, self.thumbnail, self.metadata, self.warnings)


@dataclass(frozen=True)
class Finished:
    key: int
    prediction: Prediction  # without the gate's embedding: of no use to the window
    outcome: Outcome

    def deliver(self, sink: ResultSink) -> None:
        sink.finished(self.key, self.prediction, self.outcome)


@dataclass(frozen=True)
class Failed:
    key: int
    reason: str

    def deliver(self, sink: ResultSink) -> None:
        sink.failed(self.key, self.reason)


@dataclass(frozen=True)
class Cancelled:
    key: int

    def deliver(self, sink: ResultSink) -> None:
        sink.cancelled(self.key)


@dataclass(frozen=True)
class StorageFailed:
    reason: str

    def deliver(self, sink: ResultSink) -> None:
        sink.storage_failed(self.reason)


@dataclass(frozen=True)
class Bye:
    """The child stopped as asked; the parent reports whatever it still held as cancelled."""


Report = EngineReady | EngineFailed | Started | Loaded | Finished | Failed | Cancelled | StorageFailed | Bye
#: Reports after which a study is no longer the child's.
SETTLES = (Finished, Failed, Cancelled)
