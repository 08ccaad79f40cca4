"""How a site calibration carries over to new films of the same site.

    .venv/bin/python bench/site_halves.py [--site DIR] [--repeats 20] [--models DIR]
                                          [--target-sensitivity 0.93]

Splits the site sample by patient into a calibration half and an evaluation half (many
random splits), fits a profile on the first half with the code ``lunglens calibrate`` uses,
and measures the second half at each operating point: sensitivity, specificity, ECE. Also
for a shifted copy of the site (gamma 0.7, Gaussian blur, JPEG quality 40: what other
equipment might give), with the shipped profile and with a profile fitted on that copy.
Prints medians and the 5th-95th percentile over splits. Films the input gate calls not
reliable are left out of each site, as ``lunglens calibrate`` leaves them out of the fit and no
threshold is ever applied to them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference import metrics as M  # noqa: E402
from inference.calibration import DEFAULT_TARGET, fit_site  # noqa: E402
from inference.engine import Engine  # noqa: E402
from inference.hashing import pixel_sha256  # noqa: E402
from inference.loaders import load_study  # noqa: E402
from inference.profile import UNCALIBRATED, SiteProfile  # noqa: E402
from inference.sitefilms import file_name_patient, from_folders  # noqa: E402


def shifted(path: Path) -> np.ndarray:
    """The film as other equipment might give it: gamma 0.7, blur, JPEG quality 40."""
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
    img = Image.fromarray(np.uint8(np.clip(img**0.7 * 255, 0, 255))).filter(ImageFilter.GaussianBlur(1.2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=40)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32)


def logits(engine: Engine, films, transform=None) -> tuple[np.ndarray, np.ndarray]:
    """Each film's logit, and whether the input gate finds it in scope."""
    out, in_scope = [], []
    for film in films:
        study = load_study(film.path)
        if transform is not None:
            study.pixels = transform(film.path)
        prediction = engine.predict(study)
        out.append(prediction.logit)
        in_scope.append(prediction.in_scope)
    return np.asarray(out), np.asarray(in_scope)


def once_per_image(films: list) -> list:
    """Each image once, as `lunglens calibrate` measures a site (the site sample holds four
    pairs of identical films)."""
    seen: set[str] = set()
    kept = []
    for film in films:
        fingerprint = pixel_sha256(load_study(film.path))
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(film)
    return kept


def evaluate(y: np.ndarray, prob: np.ndarray, threshold: float) -> tuple[float, float, float]:
    se, sp = M.sens_spec(y, prob, threshold)
    return se, sp, M.ece(y, prob)


def summary(name: str, rows: list[tuple[float, float, float]]) -> str:
    a = np.asarray(rows)
    parts = []
    for j, label in enumerate(("sensitivity", "specificity", "ECE")):
        lo, med, hi = np.percentile(a[:, j], [5, 50, 95])
        parts.append(f"{label} {med:.3f} ({lo:.3f}-{hi:.3f})")
    return f"{name:<44} " + "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--site", type=Path, default=REPO.parent / "shared/data/kermany-cxr-224/site-sample")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--models", type=Path, default=None, help="a model folder (default: the bundled model)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="resamples per fit (default 1000, as `lunglens calibrate`: the high-sensitivity "
                        "threshold is a bootstrap lower bound, so fewer resamples move it)")
    p.add_argument("--target-sensitivity", type=float, default=DEFAULT_TARGET,
                   help=f"as `lunglens calibrate --target-sensitivity` (default {DEFAULT_TARGET:g}, its default)")
    args = p.parse_args(argv)
    engine = Engine.load(args.models, provider="cpu", profile=UNCALIBRATED)
    shipped = SiteProfile.load(engine.model_path.parent / engine.manifest.default_profile, engine.model_info)
    films = once_per_image(from_folders([args.site]))
    y = np.array([f.label for f in films])
    groups = np.array([file_name_patient(f.path) or str(f.path) for f in films])
    z = {"site": logits(engine, films), "shifted site": logits(engine, films, shifted)}
    print(f"{len(films)} films, {len(set(groups))} patients; {args.repeats} random patient halves; "
          f"target sensitivity {args.target_sensitivity:g}")
    rng = np.random.default_rng(0)
    for site, (zz, kept) in z.items():
        print(f"{site}: {kept.sum()} films in scope ({(~kept).sum()} left out), AUC {M.auc(y[kept], zz[kept]):.3f}")
        y_site, groups_site, zz = y[kept], groups[kept], zz[kept]
        uniq = np.unique(groups_site)
        rows: dict[str, list] = {}
        for _ in range(args.repeats):
            cal_patients = set(rng.permutation(uniq)[: len(uniq) // 2])
            cal = np.array([g in cal_patients for g in groups_site])
            ev = ~cal
            fit = fit_site(y_site[cal], zz[cal], groups_site[cal], target_sensitivity=args.target_sensitivity,
                           n_boot=args.bootstrap)
            prob = np.asarray(fit.calibration.probability(zz[ev]))
            shipped_prob = np.asarray(shipped.calibration.probability(zz[ev]))
            for name, op in fit.operating_points.items():
                rows.setdefault(f"{site}, recalibrated, {name}", []).append(evaluate(y_site[ev], prob, op.threshold))
            for name, op in shipped.operating_points.items():
                rows.setdefault(f"{site}, shipped profile, {name}", []).append(
                    evaluate(y_site[ev], shipped_prob, op.threshold))
        for name, r in rows.items():
            print(summary(name, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
