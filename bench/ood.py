"""Print how often the input gate flags each kind of input (the figures in the model card).

    python bench/ood.py [--quick]

Runs the real pipeline (loader -> engine -> inference.ood.ScopeGate) on:
- the out-of-scope set of tests/fixtures/nonchest.py (target: >= 95 % flagged),
- chest X-ray variants that must pass (gamma, 12-bit, small rotations, a chest DICOM),
- every held-out validation chest X-ray (training/validation_patients.txt; target <= 2 %),
- every film of the site sample (other patients, from the official test split; same target),
- the real adult chest DICOM in ../shared/data (must pass, with the adult warning).
Inputs the loader refuses count as refused, not as flagged. ``--quick`` takes every 5th
validation and site image.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.engine import Engine  # noqa: E402
from inference.errors import StudyLoadError  # noqa: E402
from inference.loaders import load_study  # noqa: E402
from inference.ood import ScopeAssessment, ScopeGate  # noqa: E402
from inference.paths import models_dir  # noqa: E402
from tests.fixtures.nonchest import (  # noqa: E402
    KERMANY_TRAIN,
    VALIDATION_LIST,
    build_nonchest,
    chest_sources,
    chest_variants,
)
from training.data import list_items, read_validation_patients  # noqa: E402

REAL_DICOM = REPO.parent / "shared" / "data" / "dicom" / "cxr-cr-jpeg-baseline-monochrome2.dcm"
SITE_SAMPLE = KERMANY_TRAIN.parent / "site-sample"


def assess(engine: Engine, gate: ScopeGate, path: Path) -> ScopeAssessment | str:
    """The gate's verdict, or the loader's refusal message."""
    try:
        study = load_study(path)
    except StudyLoadError as exc:
        return str(exc)
    return gate.assess(study, engine.predict(study).embedding)


def table(title: str, rows: list[tuple[str, str, ScopeAssessment | str]], verbose: bool) -> tuple[int, int]:
    """Print per-category flagged rates; return (flagged or refused, total)."""
    print(f"\n{title}")
    print(f"  {'category':40s} {'n':>4s} {'flagged':>8s} {'refused':>8s}")
    groups: dict[str, list] = defaultdict(list)
    for category, name, verdict in rows:
        groups[category].append((name, verdict))
    caught = total = 0
    for category, items in groups.items():
        flagged = sum(isinstance(v, ScopeAssessment) and not v.in_scope for _, v in items)
        refused = sum(isinstance(v, str) for _, v in items)
        caught += flagged + refused
        total += len(items)
        print(f"  {category:40s} {len(items):4d} {flagged / len(items):8.1%} {refused / len(items):8.1%}")
        if verbose:
            for name, v in items:
                mark = "REFUSED" if isinstance(v, str) else ("flagged" if not v.in_scope else "in scope")
                extra = v if isinstance(v, str) else f"score {v.score:.2f} {_fmt(v.distances)}"
                print(f"      {mark:8s} {name}: {extra}")
    print(f"  {'all':40s} {total:4d} {caught / max(total, 1):8.1%}  (flagged or refused)")
    return caught, total


def chest_films(title: str, paths: list[Path], engine: Engine, gate: ScopeGate) -> None:
    """Print how many of these in-scope chest films the gate flags or the loader refuses, and which."""
    verdicts = [(p, assess(engine, gate, p)) for p in paths]
    flagged = [(p, v) for p, v in verdicts if not (isinstance(v, ScopeAssessment) and v.in_scope)]
    print(f"\n{title}: {len(flagged)}/{len(paths)} = {len(flagged) / max(len(paths), 1):.2%} flagged")
    for p, v in flagged:
        print(f"    {p.name}: {v if isinstance(v, str) else '; '.join(v.reasons)}")


def _fmt(d: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" for k, v in d.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every 5th validation and site image only")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per out-of-scope input")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    engine = Engine.load(threads=1)
    gate = ScopeGate.load(models_dir(), engine.manifest)
    if not gate.image_check:
        print("; ".join(gate.warnings), file=sys.stderr)
        return 1
    print(f"model {engine.manifest.name} {engine.manifest.version} ({engine.manifest.sha256[:12]})")

    sources = chest_sources()
    with tempfile.TemporaryDirectory(prefix="lunglens-ood-") as tmp:
        nonchest = build_nonchest(Path(tmp) / "nonchest", sources)
        variants = chest_variants(Path(tmp) / "variants", sources)
        out_rows = [(c.category, c.name, assess(engine, gate, c.path)) for c in nonchest]
        var_rows = [(c.category, c.name, assess(engine, gate, c.path)) for c in variants]
    caught, total = table("Out-of-scope inputs (target >= 95 % flagged or refused)", out_rows, args.verbose)
    table("Chest X-ray variants (should pass)", var_rows, args.verbose)

    patients = read_validation_patients(VALIDATION_LIST)
    val = [it.path for it in list_items(KERMANY_TRAIN.parent) if it.patient in patients]
    site = sorted(SITE_SAMPLE.glob("*/*.jpeg"))
    step = 5 if args.quick else 1
    chest_films("Validation chest X-rays (target <= 2 % flagged)", val[::step], engine, gate)
    chest_films("Site-sample chest X-rays, other patients (target <= 2 % flagged)", site[::step], engine, gate)

    real = assess(engine, gate, REAL_DICOM)
    if isinstance(real, str):
        print(f"\nReal adult chest DICOM: REFUSED {real}")
    else:
        print(f"\nReal adult chest DICOM: in_scope={real.in_scope} score={real.score:.2f} {_fmt(real.distances)}")
        for line in real.reasons + real.warnings:
            print(f"    {line}")
    print(f"\nout-of-scope caught {caught}/{total} = {caught / total:.1%}; "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
