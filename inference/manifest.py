"""The model manifest: everything the app needs to know about the bundled model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .preprocess import PreprocessSpec


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold on the calibrated probability, with what it gave on validation."""

    name: str
    threshold: float
    sensitivity: float
    specificity: float
    description: str = ""


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    sha256: str
    onnx_file: str
    preprocess: PreprocessSpec
    labels: tuple[str, str] = ("NORMAL", "PNEUMONIA")
    temperature: float = 1.0
    operating_points: dict[str, OperatingPoint] = field(default_factory=dict)
    default_operating_point: str = "high_sensitivity"
    # ONNX output names: the pneumonia logit [N,1], the last conv feature map [N,C,h,w]
    # and d(logit)/d(features) [N,C,h,w], which Grad-CAM needs.
    outputs: dict[str, str] = field(
        default_factory=lambda: {"logit": "logit", "features": "features", "features_grad": "features_grad"}
    )
    input_name: str = "image"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def default_threshold(self) -> float:
        return self.operating_points[self.default_operating_point].threshold

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        ops = {
            key: OperatingPoint(name=key, **{k: v for k, v in op.items() if k != "name"})
            for key, op in data.get("operating_points", {}).items()
        }
        kwargs: dict[str, Any] = dict(
            name=data["name"],
            version=str(data["version"]),
            sha256=data["sha256"],
            onnx_file=data["onnx_file"],
            preprocess=PreprocessSpec.from_dict(data.get("preprocess", {})),
            labels=tuple(data.get("labels", ("NORMAL", "PNEUMONIA"))),
            temperature=float(data.get("temperature", 1.0)),
            operating_points=ops,
            default_operating_point=data.get("default_operating_point", "high_sensitivity"),
            input_name=data.get("input_name", "image"),
            raw=data,
        )
        if "outputs" in data:
            kwargs["outputs"] = dict(data["outputs"])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> ModelManifest:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
