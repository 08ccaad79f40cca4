"""What the window and its analysis process say to each other: typed, picklable messages.

Commands go parent -> child (:class:`Jobs`, :class:`Cancel`, :class:`SetOperating`,
:class:`View`, :class:`Stop`); reports go child -> parent (a :data:`Report`), and on to the
window as they are: one Qt signal carries them and the controller handles each by its type.
A report that settles a study (:data:`SETTLES`) takes it off the child's in-flight set;
:class:`Viewed` and :class:`ViewFailed` answer a :class:`View` (the worker hands them on as
its own view signals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.decision import OperatingPoint
from inference.manifest import ModelManifest
from inference.prediction import Prediction
from inference.profile import SiteProfile
from inference.study import Study, StudyMetadata
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
class View:
    """Decode this file for the screen (newest request wins; ``token`` names the request)."""

    token: int
    path: Path
    fingerprint: str | None = None  # of the pixels the window holds a result for (see Viewed)
    # The study the reader is likely to open next (N): decoded once this one is served, so
    # that it is on screen without waiting for its decode.
    ahead: Path | None = None


@dataclass(frozen=True)
class Stop:
    """Finish writing what is done, then end."""


Command = Jobs | Cancel | SetOperating | View | Stop


# -- child -> parent -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineReady:
    """The child's engine loaded (once per child, before any result)."""

    info: EngineInfo


@dataclass(frozen=True)
class EngineFailed:
    """The model could not be loaded: every study will fail with this reason."""

    reason: str


@dataclass(frozen=True)
class Started:
    key: int
    stage: str  # "loading" | "running"


@dataclass(frozen=True)
class Loaded:
    """A study was decoded: what its row shows until its result comes."""

    key: int
    thumbnail: np.ndarray
    metadata: StudyMetadata
    warnings: list[str]


@dataclass(frozen=True)
class Finished:
    key: int
    prediction: Prediction  # without the gate's embedding: of no use to the window
    outcome: Outcome


@dataclass(frozen=True)
class Failed:
    key: int
    reason: str


@dataclass(frozen=True)
class Cancelled:
    key: int


@dataclass(frozen=True)
class StorageFailed:
    """Results are not being kept in the worklist or the audit log (``what``), and why."""

    reason: str
    what: str = "worklist"  # or "audit"


@dataclass(frozen=True)
class StorageRecovered:
    """The worklist is free again and the results held while it was locked are saved in it:
    ``saved`` are their records as stored (row ids, no images), so the window lists them by
    their rows without writing or reading the worklist itself."""

    message: str
    saved: tuple[WorklistRecord, ...] = ()


@dataclass(frozen=True)
class Viewed:
    """The study a :class:`View` asked for, at most DISPLAY_MAX_SIDE pixels on its long side;
    ``same_pixels`` is False when the file no longer holds the pixels of the View's fingerprint."""

    token: int
    study: Study
    same_pixels: bool = True


@dataclass(frozen=True)
class ViewFailed:
    token: int
    reason: str


@dataclass(frozen=True)
class Bye:
    """The child stopped as asked; the parent reports whatever it still held as cancelled."""


Report = (EngineReady | EngineFailed | Started | Loaded | Finished | Failed | Cancelled | StorageFailed
          | StorageRecovered | Viewed | ViewFailed | Bye)
#: Reports after which a study is no longer the child's.
SETTLES = (Finished, Failed, Cancelled)
