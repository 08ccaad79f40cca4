"""The model manifest: everything the app needs to know about the bundled model.

How its logit becomes a probability and where the thresholds lie is not the model's but a
site's: that lives in a profile (:mod:`inference.profile`); the manifest names the shipped one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .preprocess import PreprocessSpec


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    sha256: str
    onnx_file: str
    preprocess: PreprocessSpec
    labels: tuple[str, str] = ("NORMAL", "PNEUMONIA")
    # The shipped site profile (calibration and operating points), a file beside the model.
    default_profile: str = ""
    # ONNX output names: the pneumonia logit [N,1], the last conv feature map [N,C,h,w]
    # and d(logit)/d(features) [N,C,h,w], which the attribution map needs.
    outputs: dict[str, str] = field(
        default_factory=lambda: {"logit": "logit", "features": "features", "features_grad": "features_grad"}
    )
    input_name: str = "image"
    # The logit contribution of one attribution cell drawn at full colour, measured on
    # validation films by training (inference.attribution); 0 when the manifest has none.
    attribution_full_scale: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        kwargs: dict[str, Any] = dict(
            name=data["name"],
            version=str(data["version"]),
            sha256=data["sha256"],
            onnx_file=data["onnx_file"],
            preprocess=PreprocessSpec.from_dict(data.get("preprocess", {})),
            labels=tuple(data.get("labels", ("NORMAL", "PNEUMONIA"))),
            default_profile=str(data.get("default_profile", "")),
            input_name=data.get("input_name", "image"),
            attribution_full_scale=float(data.get("attribution", {}).get("full_scale", 0.0)),
            raw=data,
        )
        if "outputs" in data:
            kwargs["outputs"] = dict(data["outputs"])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> ModelManifest:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
