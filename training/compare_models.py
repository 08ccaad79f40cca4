"""Paired site-sample comparison of two exported models: ``python -m training.compare_models A B``.

A and B are model folders (ONNX + manifest, e.g. resources/models and a run's --out). Both run
through the app's own path (load_study, Engine.predict) on the same films; the differences B - A
of AUC and raw ECE get a 95 % CI from 1,000 resamples of site patients, so that a gain is judged
on the same films, not by two overlapping unpaired intervals (training/EXPERIMENTS.md)."""
import sys, numpy as np
from pathlib import Path
from inference.engine import Engine
from inference.loaders import load_study
from inference.sitefilms import file_name_patient
from inference import metrics as M
site = Path(sys.argv[3]) if len(sys.argv) > 3 else Path('../shared/data/kermany-cxr-224/site-sample')
files = [(f, lab == 'PNEUMONIA') for lab in ('NORMAL', 'PNEUMONIA') for f in sorted((site/lab).glob('*'))]
y = np.array([l for _, l in files]); g = np.array([file_name_patient(f) or f.name for f, _ in files])
studies = [load_study(f) for f, _ in files]
def logits(d):
    e = Engine.load(d)
    return np.array([e.predict(s).logit for s in studies])
la, lb = logits(sys.argv[1]), logits(sys.argv[2])
sig = lambda z: 1/(1+np.exp(-z))
pats = np.unique(g); idx = {p: np.where(g == p)[0] for p in pats}
rng = np.random.default_rng(7); d_auc = []; d_ece = []
for _ in range(1000):
    i = np.concatenate([idx[p] for p in rng.choice(pats, len(pats))])
    if y[i].all() or not y[i].any(): continue
    d_auc.append(M.auc(y[i], lb[i]) - M.auc(y[i], la[i]))
    d_ece.append(M.ece(y[i], sig(lb[i])) - M.ece(y[i], sig(la[i])))
print('A auc %.4f ece %.3f | B auc %.4f ece %.3f' % (M.auc(y, la), M.ece(y, sig(la)), M.auc(y, lb), M.ece(y, sig(lb))))
print('B-A auc %+.4f (%+.4f to %+.4f)  raw ece %+.3f (%+.3f to %+.3f)' % (M.auc(y, lb)-M.auc(y, la), *np.percentile(d_auc, [2.5, 97.5]), M.ece(y, sig(lb))-M.ece(y, sig(la)), *np.percentile(d_ece, [2.5, 97.5])))
