"""How a site calibration carries over to new films of the same site.

    .venv/bin/python bench/site_halves.py [--site DIR] [--repeats 20] [--models DIR]
                                          [--target-sensitivity 0.93]

Splits the site sample by patient into a calibration half and an evaluation half (many
random splits), fits a profile on the first half with the code ``lunglens calibrate`` uses,
and measures the second half at each operating point: sensitivity, specificity, ECE. Also
for a shifted copy of the site (gamma 0.7, Gaussian blur, JPEG quality 40: what other
equipment might give), with the shipped profile and with a profile fitted on that copy.
Prints medians and the 5th-95th percentile over splits, and on how many splits issue 12's
targets (sensitivity >= 0.93, specificity >= 0.80, ECE <= 0.07) were all met. Films the input gate calls not
reliable are left out of each site, as ``lunglens calibrate`` leaves them out of the fit and no
threshold is ever applied to them.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference import metrics as M  # noqa: E402
from inference.calibration import DEFAULT_TARGET, fit_site  # noqa: E402
from inference.engine import Engine  # noqa: E402
from inference.profile import UNCALIBRATED, SiteProfile  # noqa: E402
from inference.site_calibration import Measured, measure  # noqa: E402
from inference.sitefilms import from_folders  # noqa: E402


def shifted(path: Path) -> bytes:
    """The film as other equipment might give it: gamma 0.7, blur, JPEG quality 40."""
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
    img = Image.fromarray(np.uint8(np.clip(img**0.7 * 255, 0, 255))).filter(ImageFilter.GaussianBlur(1.2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=40)
    return buf.getvalue()


def shifted_copy(site: Path, out: Path) -> Path:
    """``site``'s NORMAL/PNEUMONIA films written under ``out`` as :func:`shifted` gives them."""
    for film in from_folders([site]):
        target = out / film.path.relative_to(site)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shifted(film.path))
    return out


def measured(engine: Engine, site: Path) -> Measured:
    """A site's films as ``lunglens calibrate`` measures them (:func:`inference.site_calibration.measure`):
    each image once (the site sample holds four pairs of identical films), the films the input
    gate calls not reliable left out, patients grouped as the bootstrap resamples them."""
    films = measure(engine, from_folders([site]))
    if films.errors:
        raise SystemExit("\n".join(films.errors))
    return films


def evaluate(y: np.ndarray, prob: np.ndarray, threshold: float) -> tuple[float, float, float]:
    se, sp = M.sens_spec(y, prob, threshold)
    return se, sp, M.ece(y, prob)


def summary(name: str, rows: list[tuple[float, float, float]]) -> str:
    """Median and 5th-95th percentile of each figure over the splits, and on how many splits all
    three of issue 12's targets were met (the issue judges one split of each of two sites)."""
    a = np.asarray(rows)
    parts = []
    for j, label in enumerate(("sensitivity", "specificity", "ECE")):
        lo, med, hi = np.percentile(a[:, j], [5, 50, 95])
        parts.append(f"{label} {med:.3f} ({lo:.3f}-{hi:.3f})")
    met = int(np.sum((a[:, 0] >= 0.93) & (a[:, 1] >= 0.80) & (a[:, 2] <= 0.07)))
    return f"{name:<44} " + "  ".join(parts) + f"  targets met {met}/{len(a)}"


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
    print(f"{args.repeats} random patient halves; target sensitivity {args.target_sensitivity:g}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        sites = {"site": measured(engine, args.site),
                 "shifted site": measured(engine, shifted_copy(args.site, Path(tmp)))}
    for site, films in sites.items():
        y, zz = np.asarray(films.labels), np.asarray(films.logits)
        groups = np.asarray(films.resampled().groups)
        uniq = np.unique(groups)
        print(f"{site}: {len(y)} films of {len(uniq)} patients ({len(films.outside)} left out by the input gate, "
              f"{len(films.duplicates)} as the same image), AUC {M.auc(y, zz):.3f}")
        rows: dict[str, list] = {}
        for _ in range(args.repeats):
            cal_patients = set(rng.permutation(uniq)[: len(uniq) // 2])
            cal = np.array([g in cal_patients for g in groups])
            ev = ~cal
            fit = fit_site(y[cal], zz[cal], groups[cal], target_sensitivity=args.target_sensitivity,
                           n_boot=args.bootstrap)
            prob = np.asarray(fit.calibration.probability(zz[ev]))
            shipped_prob = np.asarray(shipped.calibration.probability(zz[ev]))
            for name, op in fit.operating_points.items():
                rows.setdefault(f"{site}, recalibrated, {name}", []).append(evaluate(y[ev], prob, op.threshold))
            for name, op in shipped.operating_points.items():
                rows.setdefault(f"{site}, shipped profile, {name}", []).append(
                    evaluate(y[ev], shipped_prob, op.threshold))
        for name, r in rows.items():
            print(summary(name, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
