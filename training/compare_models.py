"""Paired site-sample comparison of two exported models: ``python -m training.compare_models A B``.

A and B are model folders (ONNX + manifest, e.g. resources/models and a run's --out). Both run
through the app's own path (load_study, Engine.predict) on the same films; the differences B - A
of AUC, raw ECE and calibrated ECE (each model's own shipped profile, fitted on these very
films, so both are in-sample) get a 95 % CI from resamples of site patients, so that a gain is judged on the
same films, not by two overlapping unpaired intervals (training/EXPERIMENTS.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from inference import metrics
from inference.engine import Engine
from inference.loaders import load_study
from inference.sitefilms import file_name_patient, from_folders

DEFAULT_SITE = Path("../shared/data/kermany-cxr-224/site-sample")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare_models", description=__doc__)
    p.add_argument("a", type=Path, help="model folder A (the reference)")
    p.add_argument("b", type=Path, help="model folder B")
    p.add_argument("--site", type=Path, default=DEFAULT_SITE, help="folder with NORMAL/ and PNEUMONIA/ films")
    p.add_argument("--resamples", type=int, default=1000)
    args = p.parse_args(argv)

    films = from_folders([args.site])
    y = np.array([film.label == 1 for film in films])
    groups = np.array([file_name_patient(film.path) or film.path.name for film in films])
    studies = [load_study(film.path) for film in films]
    preds = [[engine.predict(s) for s in studies] for engine in (Engine.load(args.a), Engine.load(args.b))]
    la, lb = (np.array([p.logit for p in ps]) for ps in preds)
    pa, pb = (np.array([p.probability for p in ps]) for ps in preds)

    patients = np.unique(groups)
    rows = {pt: np.flatnonzero(groups == pt) for pt in patients}
    rng = np.random.default_rng(7)
    d_auc, d_ece, d_cal = [], [], []
    for _ in range(args.resamples):
        i = np.concatenate([rows[pt] for pt in rng.choice(patients, len(patients))])
        if y[i].all() or not y[i].any():
            continue
        d_auc.append(metrics.auc(y[i], lb[i]) - metrics.auc(y[i], la[i]))
        d_ece.append(metrics.ece(y[i], metrics.sigmoid(lb[i])) - metrics.ece(y[i], metrics.sigmoid(la[i])))
        d_cal.append(metrics.ece(y[i], pb[i]) - metrics.ece(y[i], pa[i]))
    auc_a, auc_b = metrics.auc(y, la), metrics.auc(y, lb)
    ece_a, ece_b = metrics.ece(y, metrics.sigmoid(la)), metrics.ece(y, metrics.sigmoid(lb))
    cal_a, cal_b = metrics.ece(y, pa), metrics.ece(y, pb)
    print(f"{len(films)} films, {len(patients)} patients ({args.site})")
    print(f"A auc {auc_a:.4f} raw ece {ece_a:.3f} calibrated ece {cal_a:.3f} | "
          f"B auc {auc_b:.4f} raw ece {ece_b:.3f} calibrated ece {cal_b:.3f}")
    lo, hi = np.percentile(d_auc, [2.5, 97.5])
    elo, ehi = np.percentile(d_ece, [2.5, 97.5])
    clo, chi = np.percentile(d_cal, [2.5, 97.5])
    print(f"B-A auc {auc_b - auc_a:+.4f} ({lo:+.4f} to {hi:+.4f})  raw ece {ece_b - ece_a:+.3f} ({elo:+.3f} to {ehi:+.3f})"
          f"  calibrated ece {cal_b - cal_a:+.3f} ({clo:+.3f} to {chi:+.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
