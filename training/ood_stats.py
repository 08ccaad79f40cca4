"""Fit the input gate's statistics (``<model>.ood.npz``) from the training images.

Runs the bundled ONNX model through ONNX Runtime (no torch), so it must be rerun whenever
the model changes; the gate refuses statistics fitted for another model. One command:

    python -m training.ood_stats            # defaults: ../shared/data, resources/models

It fits, on the training patients (not the validation ones), a mean and a Ledoit-Wolf
shrinkage precision matrix for [pooled features, layout vector] and for the layout vector
alone (see inference/ood.py), sets the thresholds of the two figures (likeness distance,
orientation ratio) at one common percentile of held-in scores -- the lowest that flags at
most ``--held-in-rate`` of held-in images -- and then reports how many held-out validation
chest X-rays the gate flags.

Held-in scores are measured out-of-fold, by patient (the Gaussians are refitted without
the fold they score), so thresholds are not set on distances the fit has already shrunk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inference.engine import find_manifest
from inference.errors import ModelError
from inference.loaders import load_study
from inference.manifest import ModelManifest
from inference.ood import STATS_FORMAT, STATS_SUFFIX, layout_vector, model_view, pack_symmetric, turned_copies
from inference.preprocess import preprocess
from training.data import list_items, read_validation_patients

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kermany-cxr-224"
DEFAULT_MODELS = REPO / "resources" / "models"
DEFAULT_VAL_LIST = REPO / "training" / "validation_patients.txt"
HELD_IN_RATE = 0.01  # fraction of held-in chest X-rays the gate may flag
FOLDS = 5
FIGURES = ("likeness", "orientation")


@dataclass
class Extracted:
    """Per image: pooled features, layout vector, calibrated-space logit."""

    features: np.ndarray  # [N, C]
    layout: np.ndarray  # [N, L]
    logits: np.ndarray  # [N]


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, precision matrix and shrinkage of a Ledoit-Wolf estimate, numpy only.

    Each dimension is standardized first, so shrinkage pulls towards the identity
    *correlation*: features of very different scales are treated alike.
    """
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1e-8
    z = (x - mean) / scale
    emp = z.T @ z / n
    mu = np.trace(emp) / p
    z2 = z**2
    beta_ = float(np.sum(z2.T @ z2)) / n
    delta_ = float(np.sum(emp**2))
    beta = (beta_ - delta_) / (p * n)
    delta = (delta_ - 2 * mu * np.trace(emp) + p * mu**2) / p
    shrinkage = 0.0 if delta <= 0 else float(min(beta, delta) / delta)
    cov = (1 - shrinkage) * emp + shrinkage * mu * np.eye(p)
    vals, vecs = np.linalg.eigh(cov)
    inv = (vecs / np.maximum(vals, 1e-10)) @ vecs.T
    precision = inv / np.outer(scale, scale)
    return mean, precision, shrinkage


def mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    d = np.asarray(x, dtype=np.float64) - mean
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, precision, d), 0.0))


def orientation_ratios(layout: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Layout distance of each image over the smallest distance of its turned copies."""
    turned = np.min([mahalanobis(t, mean, precision) for t in turned_copies(layout)], axis=0)
    return mahalanobis(layout, mean, precision) / np.maximum(turned, 1e-9)


def figures(features: np.ndarray, layout: np.ndarray, fits: dict[str, tuple]) -> dict[str, np.ndarray]:
    """The gate's two raw figures for a batch, from fitted (mean, precision, ...) tuples."""
    return {
        "likeness": mahalanobis(np.concatenate([features, layout], axis=1), *fits["likeness"][:2]),
        "orientation": orientation_ratios(layout, *fits["layout"][:2]),
    }


def fit_gaussians(features: np.ndarray, layout: np.ndarray) -> dict[str, tuple]:
    return {"likeness": ledoit_wolf(np.concatenate([features, layout], axis=1)), "layout": ledoit_wolf(layout)}


def out_of_fold_figures(features: np.ndarray, layout: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Each image's figures from Gaussians fitted without its fold (folds by patient)."""
    patients = np.unique(groups)
    rng = np.random.default_rng(0)
    fold_of = dict(zip(patients, rng.permutation(len(patients)) % FOLDS, strict=True))
    fold = np.array([fold_of[g] for g in groups])
    out = {key: np.empty(len(groups)) for key in FIGURES}
    for k in range(FOLDS):
        train, held = fold != k, fold == k
        fits = fit_gaussians(features[train], layout[train])
        for key, values in figures(features[held], layout[held], fits).items():
            out[key][held] = values
    return out


def common_percentile(scores: dict[str, np.ndarray], rate: float) -> float:
    """The lowest percentile whose thresholds flag at most ``rate`` of these images."""
    for percentile in np.arange(98.0, 99.99, 0.05):
        flagged = np.zeros(len(next(iter(scores.values()))), bool)
        for values in scores.values():
            flagged |= values > np.percentile(values, percentile)
        if flagged.mean() <= rate:
            return float(round(percentile, 2))
    return 99.99


def extract(session: ort.InferenceSession, manifest: ModelManifest, paths: list[Path], batch: int = 32) -> Extracted:
    """Run the model on every image as the app would (loader -> preprocess -> ONNX)."""
    feats, layouts, logits = [], [], []
    names = [manifest.outputs["logit"], manifest.outputs["features"]]
    t0 = time.perf_counter()
    for start in range(0, len(paths), batch):
        xs = []
        for path in paths[start : start + batch]:
            pixels = load_study(path).pixels
            xs.append(preprocess(pixels, manifest.preprocess))
            layouts.append(layout_vector(model_view(pixels, manifest.preprocess)[0]))
        logit, fmap = session.run(names, {manifest.input_name: np.concatenate(xs)})
        feats.append(fmap.mean(axis=(2, 3)))
        logits.append(np.asarray(logit).reshape(-1))
        done = start + len(xs)
        if done % (batch * 20) == 0 or done == len(paths):
            print(f"  {done}/{len(paths)} images, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return Extracted(np.concatenate(feats), np.stack(layouts), np.concatenate(logits))


def open_model(models: Path, threads: int | None) -> tuple[ModelManifest, ort.InferenceSession, Path]:
    manifest_path = find_manifest(models)
    manifest = ModelManifest.load(manifest_path)
    onnx_path = manifest_path.parent / manifest.onnx_file
    if hashlib.sha256(onnx_path.read_bytes()).hexdigest() != manifest.sha256.lower():
        raise ModelError(f"{onnx_path} does not match the sha256 in {manifest_path.name}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    return manifest, session, manifest_path.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.ood_stats", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding train/{NORMAL,PNEUMONIA}")
    p.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder of the model + manifest")
    p.add_argument("--validation", type=Path, default=DEFAULT_VAL_LIST, help="validation patients list")
    p.add_argument("--held-in-rate", type=float, default=HELD_IN_RATE,
                   help="fraction of held-in chest X-rays the thresholds may flag")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    manifest, session, models = open_model(args.models, args.threads)
    items = list_items(args.data)
    val_patients = read_validation_patients(args.validation)
    fit_items = [it for it in items if it.patient not in val_patients]
    val_items = [it for it in items if it.patient in val_patients]
    print(f"model {manifest.name} {manifest.version} ({manifest.sha256[:12]}), "
          f"{len(fit_items)} fit images, {len(val_items)} validation images", file=sys.stderr)

    fit = extract(session, manifest, [it.path for it in fit_items])
    val = extract(session, manifest, [it.path for it in val_items])
    groups = np.array([it.patient for it in fit_items])
    out, summary = fit_gate(fit, val, groups, args.held_in_rate)
    out.update(
        format=np.int64(STATS_FORMAT),
        model_sha256=np.str_(manifest.sha256),
        summary_json=np.str_(json.dumps(summary)),
    )
    target = models / f"{manifest.name}{STATS_SUFFIX}"
    np.savez_compressed(target, **out)
    print(json.dumps(summary, indent=2))
    print(f"wrote {target}", file=sys.stderr)
    return 0


def fit_gate(
    fit: Extracted, val: Extracted, groups: np.ndarray, held_in_rate: float
) -> tuple[dict[str, np.ndarray], dict]:
    """The gate's arrays (means, precisions, thresholds) and a summary with validation rates."""
    oof = out_of_fold_figures(fit.features, fit.layout, groups)
    percentile = common_percentile(oof, held_in_rate)
    thresholds = {key: float(np.percentile(values, percentile)) for key, values in oof.items()}
    fits = fit_gaussians(fit.features, fit.layout)
    val_ratios = {key: v / thresholds[key] for key, v in figures(val.features, val.layout, fits).items()}
    flag_in = np.any([oof[k] > thresholds[k] for k in FIGURES], axis=0)
    flag_val = np.any([val_ratios[k] > 1 for k in FIGURES], axis=0)

    out: dict[str, np.ndarray] = {}
    for key in ("likeness", "layout"):
        mean, precision, _ = fits[key]
        out[f"{key}_mean"] = mean.astype(np.float32)
        out[f"{key}_precision"] = pack_symmetric(precision.astype(np.float32))
    for key in FIGURES:
        out[f"{key}_threshold"] = np.float64(thresholds[key])
    summary = {
        key: {"threshold": round(thresholds[key], 4), "validation_flagged": round(float(np.mean(val_ratios[key] > 1)), 4)}
        for key in FIGURES
    }
    summary["likeness"].update(dims=int(fits["likeness"][0].size), shrinkage=round(fits["likeness"][2], 4))
    summary.update(
        percentile=percentile,
        n_fit_images=len(groups),
        n_validation_images=len(flag_val),
        held_in_flagged=round(float(flag_in.mean()), 4),
        validation_flagged=round(float(flag_val.mean()), 4),
        validation_flagged_count=int(flag_val.sum()),
    )
    return out, summary


if __name__ == "__main__":
    sys.exit(main())
