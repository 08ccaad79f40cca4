"""Issue 13's figures for the attribution map, on labelled films the model was not trained on.

    python bench/attribution.py [--films ../shared/data/kermany-cxr-224/site-sample] [--mirror 60]

Prints:
- the native grid size;
- mirror consistency: the median Pearson correlation of map(mirror(film)) with
  mirror(map(film)) over the first ``--mirror`` films (both maps drawn at the film's size);
- where the strongest cell falls over predicted positives (in scope, at or above the
  default threshold): the share in the left-most and in the right-most column (1/14 = 7 %
  each by chance);
- how often the border warning fires: over all films and over predicted positives;
- that ``--cam-dir`` writes no heat-map for a negative or out-of-scope result: it runs the
  CLI on the films and counts the PNGs against the flagged results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference import heatmap  # noqa: E402
from inference.engine import Engine  # noqa: E402
from inference.loaders import load_study  # noqa: E402
from inference.sitefilms import from_folders  # noqa: E402
from inference.study import Study  # noqa: E402

SITE = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "site-sample"


def mirrored(study: Study) -> Study:
    return Study(study.path, np.ascontiguousarray(study.pixels[:, ::-1]), study.window, study.metadata)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--films", type=Path, default=SITE, help="a folder with NORMAL/ and PNEUMONIA/ films")
    ap.add_argument("--mirror", type=int, default=60, help="films for the mirror-consistency figure")
    args = ap.parse_args()

    films = from_folders([args.films])
    engine = Engine.load(threads=2)
    correlations: list[float] = []
    left = right = positives = border_all = border_pos = 0
    for n, film in enumerate(films):
        study = load_study(film.path)
        pred = engine.predict(study)
        assert pred.attribution is not None
        if n < args.mirror:
            flipped = engine.predict(mirrored(study)).attribution
            assert flipped is not None
            a = pred.attribution.upsampled(study.shape)[:, ::-1]
            b = flipped.upsampled(study.shape)
            correlations.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
        border_all += pred.attribution.rests_on_border
        if heatmap.applies(pred):
            positives += 1
            border_pos += pred.attribution.rests_on_border
            grid = pred.attribution.grid
            column = int(np.unravel_index(int(grid.argmax()), grid.shape)[1])
            left += column == 0
            right += column == grid.shape[1] - 1

    print(f"films: {len(films)} from {args.films}; model {engine.model_info.name} {engine.model_info.version}; "
          f"profile {engine.profile.info.name}, default threshold {engine.profile.operating_point().threshold:.3f}")
    print(f"grid: {pred.attribution.grid.shape[0]} x {pred.attribution.grid.shape[1]} cells, "
          f"full scale {pred.attribution.full_scale:.4f} logit per cell")
    print(f"mirror consistency over {len(correlations)} films: median r = {np.median(correlations):.3f} "
          f"(10th percentile {np.percentile(correlations, 10):.3f}, min {min(correlations):.3f})")
    print(f"strongest cell over {positives} predicted positives: left-most column {100 * left / positives:.1f} %, "
          f"right-most column {100 * right / positives:.1f} % (chance 7.1 % each)")
    print(f"border warning: {border_pos} of {positives} predicted positives ({100 * border_pos / positives:.1f} %); "
          f"the grid rests on the border for {border_all} of {len(films)} films in all (shown only when flagged)")

    with tempfile.TemporaryDirectory() as tmp:
        cams = Path(tmp) / "cams"
        out = subprocess.run(
            [sys.executable, "-m", "desktop.main", "classify", "--json", "--cam-dir", str(cams),
             *(str(f.path) for f in films)],
            cwd=REPO, capture_output=True, text=True, check=False,
        )
        records = [json.loads(line) for line in out.stdout.splitlines()]
        flagged = {r["cam"] for r in records if r.get("ok") and r["in_scope"] and r["label"] == "PNEUMONIA"}
        written = {str(p) for p in cams.iterdir()} if cams.exists() else set()
        others = [r for r in records if not (r.get("ok") and r["in_scope"] and r["label"] == "PNEUMONIA")]
        print(f"--cam-dir: {len(written)} PNGs for {len(flagged)} flagged in-scope results; "
              f"{sum(r.get('cam') is not None for r in others)} for the {len(others)} negative or out-of-scope ones "
              f"({'as it should' if written == flagged and not any(r.get('cam') for r in others) else 'WRONG'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
