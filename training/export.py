"""ONNX export (the app's model contract) and the manifest that goes beside it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .model import ExportWrapper, LungLensNet

OPSET = 17
OUTPUTS = {"logit": "logit", "features": "features", "features_grad": "features_grad"}


def export_onnx(model: LungLensNet, path: Path, size: tuple[int, int]) -> None:
    """Write the model as ONNX: input "image" [N,1,H,W] -> logit, features, features_grad."""
    wrapper = ExportWrapper(model, size).eval()
    dummy = torch.zeros(1, 1, *size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=list(OUTPUTS.values()),
            dynamic_axes={name: {0: "N"} for name in ["image", *OUTPUTS.values()]},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


TRAINING_DATA = {
    "name": "Labeled Optical Coherence Tomography (OCT) and Chest X-Ray Images for Classification (chest X-ray part, train split)",
    "authors": "Kermany D, Zhang K, Goldbaum M",
    "source": "Mendeley Data, v2 (2018), doi:10.17632/rscbjbr9sj.2",
    "publication": "Kermany DS et al., Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning, Cell 172(5):1122-1131 (2018)",
    "licence": "CC BY 4.0",
    "population": "pediatric patients aged 1-5 years, Guangzhou Women and Children's Medical Center, frontal (AP) chest radiographs",
    "images": "5,216 images (NORMAL 1,341, PNEUMONIA 3,875), 224x224 redistribution",
}


def write_manifest(path: Path, fields: dict[str, Any]) -> None:
    """Write the manifest JSON (sorted keys off: the order is the reading order)."""
    path.write_text(json.dumps(fields, indent=2) + "\n", encoding="utf-8")
