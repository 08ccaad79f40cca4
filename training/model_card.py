"""Write resources/models/MODEL_CARD.md from the manifest, so the card's figures never drift.

    python -m training.model_card [resources/models/lunglens-cxr.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = REPO / "resources" / "models" / "lunglens-cxr.json"

# train.py --geometry, in words (training/augment.py GEOMETRY)
GEOMETRY_WORDS = {"standard": "standard", "strong": "strong", "aspect": "strong plus aspect-ratio",
                  "aspect-wide": "strong plus wide aspect-ratio"}


def _ci(fig: dict, pct: bool = False) -> str:
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    lo, hi = fig["ci95"]
    return f"{f(fig['value'])} (95% CI {f(lo)}-{f(hi)})"


def render(m: dict, profile: dict, extra: str = "") -> str:
    val = m["validation_train_split"]
    vf = val["figures"]
    arch, tr = m["architecture"], m["training"]
    pm, ops, src, cal = profile["metrics"], profile["operating_points"], profile["source"], profile["calibration"]
    hs, bal = ops["high_sensitivity"], ops["balanced"]
    rel = "\n".join(
        f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['count']} | "
        + (f"{b['mean_predicted']:.3f} | {b['observed_fraction']:.3f} |" if b["count"] else "- | - |")
        for b in profile["reliability"]
    )
    minutes = (f"{tr['minutes']} min on a shared 2-core CPU" if tr.get("minutes") is not None
               else "Exported from saved EMA weights (`--finalize`); training time in training/EXPERIMENTS.md")
    subtype = (f" plus, during training only, a second unit telling viral from bacterial pneumonia on the "
               f"pneumonia films (loss weight {tr['subtype_weight']}; not part of the exported network)"
               if tr.get("subtype_weight") else "")
    shapes = "; ".join(f"widths {s['widths']}, strides {s['strides']}, residual blocks {s['blocks']}"
                       + (f", {s['padding']} padding" if s.get("padding") else "")
                       for s in arch["member_shapes"])
    cv = ", ".join(f"{k} {v:.3f}" for k, v in cal["cross_validated_ece"].items())
    return f"""# Model card: {m['name']} {m['version']}

SHA-256 of `{m['onnx_file']}`: `{m['sha256']}`

## Intended use
Decision support for triaging frontal chest radiographs of **young children** for pneumonia:
the app shows a calibrated probability and a heat-map of the regions that raised the score, so
that a clinician can look first at the studies most likely to show pneumonia. It is **not a
diagnostic device** and must not be used to rule pneumonia in or out without a qualified reader. Not validated prospectively,
not cleared by any regulator.

## Population and data
Trained on the *train* split of Kermany et al. (5,216 images; NORMAL 1,341, PNEUMONIA 3,875,
bacterial and viral): pediatric patients aged 1-5 years at Guangzhou Women and Children's
Medical Center, frontal (anterior-posterior) chest radiographs, distributed as 224x224 JPEGs.

Data credit: Kermany D, Zhang K, Goldbaum M. *Labeled Optical Coherence Tomography (OCT) and
Chest X-Ray Images for Classification*, Mendeley Data v2 (2018), doi:10.17632/rscbjbr9sj.2;
Kermany DS et al., *Cell* 172(5):1122-1131 (2018). Licence: **CC BY 4.0**.

## Preprocessing (the app and the training share `inference.preprocess`)
1. Grayscale, bone bright (MONOCHROME1 is inverted by the loader; DICOM modality/VOI handled by the loader).
2. Resize to {m['preprocess']['height']}x{m['preprocess']['width']} **without keeping the aspect ratio** (the training images were squashed the
   same way); box-filter area average when shrinking, bilinear when enlarging.
3. Histogram equalization (rank transform: each value -> midpoint of its empirical CDF), which
   removes any monotonic difference in exposure, window, gamma or bit depth; then (x - 0.5) / 0.2887.

## Architecture
{arch['family']} {arch['members']} network(s) averaged in one graph: {shapes};
input {m['preprocess']['height']}x{m['preprocess']['width']}; last feature map {arch['feature_map'][0]}x{arch['feature_map'][1]}x{arch['feature_map'][2]}
(one cell per {m['preprocess']['height'] // arch['feature_map'][1]}x{m['preprocess']['width'] // arch['feature_map'][2]} input pixels); {m['parameters']:,} parameters; ONNX opset {arch['opset']}, float32.
Outputs: `logit` [N,1] (pneumonia, uncalibrated), `features` [N,C,14,14] (last block, after ReLU)
and `features_grad` = d logit / d features, exact for global-average-pool + linear head, so the
attribution map needs no autograd at run time. Every convolution pads symmetrically (downsampling
is 4x4 stride 2 pad 1): model 1.0's 3x3 stride-2 convolutions padded only the top and left, and
its attributions piled up on the right edge.

## Training recipe
From scratch on CPU: AdamW (lr {tr['lr']}, weight decay {tr['weight_decay']}), one-cycle schedule,
{tr['epochs']} epochs, batch {tr['batch_size']}, class-balanced loss (each class weighs half){subtype},
label smoothing {tr['label_smoothing']}, dropout 0.3, EMA of weights and BN statistics (decay {tr['ema_decay']}) as
checkpoint averaging; the EMA model is the one shipped. Augmentation ({tr['augmentation']} photometric, {GEOMETRY_WORDS.get(tr.get('geometry', 'standard'), tr.get('geometry'))} geometric): see
`training/augment.py` and `training/EXPERIMENTS.md`. Seed {tr['seed']}. {minutes}.

## Figures shown to users: the site sample
The app's probabilities and thresholds come from the shipped **site profile**
(`{m['default_profile']}`), fitted by `python -m training.site_profile` -- the same code as
`lunglens calibrate` -- on the **site sample**: {src['description']}; {src['n_groups']} {src['grouping']}s.
These are patients of the official Kermany *test* split, which the training split does not contain.
No weights were trained on them; they set the calibration and the operating points and chose between
models (training/EXPERIMENTS.md), so the figures below are slightly optimistic. Intervals: 95%
bootstrap percentiles over patients.

| figure | site sample |
|---|---|
| ROC AUC | {_ci(pm['auc'])} |
| ECE (10 bins) before calibration | {_ci(pm['ece_before'])} |
| ECE after calibration | {_ci(pm['ece_after'])} |
| high sensitivity (default, threshold {hs['threshold']:.3f}): sensitivity | {_ci(hs['sensitivity'], True)} |
| high sensitivity: specificity | {_ci(hs['specificity'], True)} |
| balanced (threshold {bal['threshold']:.3f}): sensitivity | {_ci(bal['sensitivity'], True)} |
| balanced: specificity | {_ci(bal['specificity'], True)} |

Operating points: {hs['description']} {bal['description']}

Calibration: {cal['method']} on the logit, p = sigmoid({cal['slope']:.4f} * logit + {cal['intercept']:.4f}),
chosen by 5-fold cross-validated ECE (folds by patient: {cv}). Reliability on the site sample:

| predicted | films | mean predicted | observed pneumonia |
|---|---|---|---|
{rel}

Calibration holds for the site sample's prevalence ({src['n_pneumonia']} of {src['n_pneumonia'] + src['n_normal']} films
pneumonia); at another prevalence the probabilities shift: calibrate on your own films (`lunglens calibrate`).

## Train-split validation (not shown to users)
{val['n_patients']} patients held out of the training split, {val['n_images']} images
({val['n_pneumonia_images']} pneumonia, {val['n_normal_images']} normal), {val['split']}. They come from the same
collection as the training films, so these figures are optimistic: model 1.0 had AUC 0.997 here
and 0.935 on the site sample.

| figure | train-split validation |
|---|---|
| ROC AUC | {_ci(vf['auc'])} |
| ROC AUC with horizontal-flip TTA | {_ci(vf['auc_hflip_tta'])} |
| ECE of the uncalibrated output | {_ci(vf['ece_uncalibrated'])} |

## Known limitations
- Children aged 1-5 from one hospital; **not validated on adults**, neonates, or other populations.
- Frontal views only; lateral views, portable ICU films with lines and tubes, and other devices or
  exposures are out of distribution (equalization removes monotonic exposure differences, not all).
- Half of the official Kermany test split (the site sample) was used to calibrate and choose the
  model; the other half is held outside the project, and the model is judged there.
- Two classes only (normal / pneumonia); it does not separate bacterial from viral pneumonia or
  detect other findings (a TB or cardiomegaly film can read "no pneumonia pattern found"). The
  attribution map is 14x14: it shows where the evidence is, coarsely, not a segmentation.
{extra}
## How to retrain
From the repository root, with `../shared/data/kermany-cxr-224/train` present:

    .venv/bin/python -m training.train --data ../shared/data/kermany-cxr-224 --out resources/models

This re-creates `{m['onnx_file']}`, `{m['name']}.json`, the site profile, `training/checkpoints/{m['name']}.pt`
and this card (seeded; the validation patients are read from `training/validation_patients.txt`).
Progress goes to `training/runs/<stamp>/train.log`. `--smoke` runs the pipeline on a few batches;
`--finalize RUN/last_ema.pt [...]` exports saved runs (several: an ensemble). `python -m
training.model_card` rewrites this card from the manifest and profile. After any retraining, refit
the app's input gate for the new model: `python -m training.ood_stats`.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    manifest_path = Path(args[0]) if args else DEFAULT_MANIFEST
    m = json.loads(manifest_path.read_text(encoding="utf-8"))
    profile = json.loads((manifest_path.parent / m["default_profile"]).read_text(encoding="utf-8"))
    out = manifest_path.parent / "MODEL_CARD.md"
    latency = REPO / "training" / "latency.txt"  # bench/latency.py output, pasted
    gate = REPO / "training" / "input_gate.md"  # the input gate's design and bench/ood.py figures
    extra = ""
    if latency.exists():
        extra = "\n## Speed (bench/latency.py)\n```\n" + latency.read_text(encoding="utf-8").strip() + "\n```\n"
    if gate.exists():
        extra += "\n" + gate.read_text(encoding="utf-8").strip() + "\n"
    out.write_text(render(m, profile, extra), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
