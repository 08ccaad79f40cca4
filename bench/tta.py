"""Does test-time augmentation help? Print AUC, ECE and how well the TTA spread flags errors.

    python bench/tta.py

On every held-out validation chest X-ray (training/validation_patients.txt), through the
bundled ONNX model exactly as the app runs it, compare the plain prediction with the mean
logit over (a) the image and its left-right mirror and (b) the image shifted by +-8 px
(4 shifts) plus the plain one. Probabilities use the manifest's temperature. The spread
(standard deviation of the calibrated probabilities across the copies) is judged as an
uncertainty: the AUC with which it separates wrong from right answers at the default
operating point, next to the AUC of the plain probability's own uncertainty (p(1-p), and
closeness to the threshold), overall and among the unsaturated answers (0.05 < p < 0.95):
a spread that adds nothing beyond the probability itself is not worth a band on the gauge.
Caveat: the temperature was fitted on these same validation patients.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.engine import Engine  # noqa: E402
from inference.loaders import load_study  # noqa: E402
from inference.preprocess import normalize, resize_to_input  # noqa: E402
from training.data import list_items, read_validation_patients  # noqa: E402
from inference.metrics import auc, ece, sigmoid  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "kermany-cxr-224"
SHIFT = 8  # pixels of the 224 px input


def copies(pixels: np.ndarray, engine: Engine) -> np.ndarray:
    """[6, 1, H, W]: plain, mirrored, 4 shifts (edges replicated), all normalized like preprocess()."""
    spec = engine.manifest.preprocess
    img = resize_to_input(pixels, spec)
    h, w = img.shape
    out = [img, img[:, ::-1]]
    for dx, dy in ((SHIFT, 0), (-SHIFT, 0), (0, SHIFT), (0, -SHIFT)):
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        out.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack([normalize(np.ascontiguousarray(x), spec) for x in out])[:, None]


def main() -> int:
    t0 = time.perf_counter()
    engine = Engine.load(threads=1)
    session, m = engine._session, engine.manifest  # batch of copies in one run, same session as the app
    patients = read_validation_patients(REPO / "training" / "validation_patients.txt")
    items = [it for it in list_items(DATA) if it.patient in patients]
    logits = np.empty((len(items), 6))
    for i, it in enumerate(items):
        x = copies(load_study(it.path).pixels, engine)
        logits[i] = np.asarray(session.run([m.outputs["logit"]], {m.input_name: x})[0]).reshape(-1)
    y = np.array([it.label for it in items])
    probs = sigmoid(logits / m.temperature)
    thr = m.default_threshold
    schemes = {
        "plain": [0],
        "hflip (2 copies)": [0, 1],
        "shifts +-8px (5 copies)": [0, 2, 3, 4, 5],
        "hflip + shifts (6 copies)": [0, 1, 2, 3, 4, 5],
    }
    print(f"model {m.name} {m.version}, {len(items)} validation images "
          f"({int(y.sum())} pneumonia), threshold {thr:.3f} ({m.default_operating_point})")
    print(f"{'scheme':26s} {'AUC':>6s} {'ECE':>6s} {'sens':>6s} {'spec':>6s} {'errors':>6s} "
          f"{'spread med/p95':>14s} | error AUC of: {'spread':>6s} {'p(1-p)':>6s} {'margin':>6s} "
          f"| same on 0.05<p<0.95 (n)")
    for name, idx in schemes.items():
        p = sigmoid(logits[:, idx].mean(axis=1) / m.temperature)
        wrong = (p >= thr) != (y == 1)
        sens, spec = float(np.mean(p[y == 1] >= thr)), float(np.mean(p[y == 0] < thr))
        # The plain answer's own uncertainty, to beat: nearness to 0.5, and to the threshold.
        own, margin = p * (1 - p), -np.abs(p - thr)
        spread = probs[:, idx].std(axis=1)
        mid = (p > 0.05) & (p < 0.95)  # where saturation does not make every spread ~0
        line = f"{name:26s} {auc(y, p):6.4f} {ece(y, p):6.4f} {sens:6.3f} {spec:6.3f} {int(wrong.sum()):6d} "
        if len(idx) > 1:
            line += f"{np.median(spread):6.3f}/{np.percentile(spread, 95):.3f}  |               {auc(wrong, spread):6.3f}"
        else:
            line += f"{'-':>14s}  |               {'-':>6s}"
        line += f" {auc(wrong, own):6.3f} {auc(wrong, margin):6.3f} | "
        sub = f"spread {auc(wrong[mid], spread[mid]):.3f} " if len(idx) > 1 else ""
        line += f"{sub}p(1-p) {auc(wrong[mid], own[mid]):.3f} margin {auc(wrong[mid], margin[mid]):.3f} " \
                f"({int(mid.sum())}, {int(wrong[mid].sum())} wrong)"
        print(line)
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
