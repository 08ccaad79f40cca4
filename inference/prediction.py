"""What the engine returns for one study."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass
class Prediction:
    """A calibrated result. ``cam`` is the Grad-CAM map at the study's pixel size, 0..1."""

    probability: float  # calibrated P(pneumonia)
    label: str  # "PNEUMONIA" or "NORMAL" at ``threshold``
    threshold: float
    operating_point: str  # manifest key, or "custom"
    sensitivity: float | None  # of the operating point on validation, None for a custom one
    specificity: float | None
    cam: np.ndarray  # float32 [rows, columns], 0..1
    model: ModelInfo
    provider: str  # the execution provider that actually ran, e.g. "CPUExecutionProvider"
    timings_ms: dict[str, float] = field(default_factory=dict)  # load, preprocess, inference, gradcam
    warnings: list[str] = field(default_factory=list)  # the study's and the engine's
    logit: float = 0.0  # raw, before temperature scaling
    # The input gate (inference.ood): False when the input is not a frontal chest X-ray like
    # those the model learned from; the probability is then shown as not reliable.
    in_scope: bool = True
    scope_reasons: list[str] = field(default_factory=list)
    embedding: np.ndarray | None = None  # globally pooled last-layer features [C], for the gate

    @property
    def is_positive(self) -> bool:
        return self.label == "PNEUMONIA"
