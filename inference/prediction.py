"""What the engine returns for one study.

A prediction stores the model's logit, the calibrated probability and the operating point
it is read at; the label is not stored but asked of :mod:`inference.decision` each time,
so no copy of a result can carry a label that contradicts its number. Reading the same
result at another threshold is ``prediction.at(point)``: the model is not needed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .attribution import Attribution
from .decision import OperatingPoint, ReadAtOperatingPoint

if TYPE_CHECKING:
    from .profile import ProfileInfo


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass
class Prediction(ReadAtOperatingPoint):
    """A calibrated result, with the attribution map that explains its logit."""

    probability: float  # calibrated P(pneumonia), by ``profile``
    operating: OperatingPoint  # the threshold it is read at, with that point's figures
    model: ModelInfo
    provider: str  # the execution provider that actually ran, e.g. "CPUExecutionProvider"
    timings_ms: dict[str, float] = field(default_factory=dict)  # load, preprocess, inference, attribution, gate
    warnings: list[str] = field(default_factory=list)  # the study's and the engine's
    logit: float = 0.0  # raw, before calibration
    # The input gate (inference.ood): False when the input is not a frontal chest X-ray like
    # those the model learned from; the probability is then shown as not reliable.
    in_scope: bool = True
    scope_reasons: list[str] = field(default_factory=list)
    embedding: np.ndarray | None = None  # globally pooled last-layer features [C], for the gate
    profile: ProfileInfo | None = None  # the site profile whose calibration made ``probability``
    # The native attribution grid in logit units with its drawing scale (inference.attribution);
    # None for a result restored from a worklist written before LungLens 2.1.
    attribution: Attribution | None = None
