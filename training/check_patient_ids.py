"""Are IM-NNNN and NORMAL2-IM-NNNN the same child? Compare image similarity of such pairs.

    python -m training.check_patient_ids [--data ../shared/data/kermany-cxr-224]

Prints the cosine similarity of 32x32 equalized thumbnails for three kinds of pairs: two images
of one series and number (known same patient), IM vs NORMAL2 with the same number, random pairs.
Result on this data (2026-11-26): median 0.799 / 0.755 / 0.759, share above 0.9: 11% / 1% / 1%,
i.e. same-number pairs across the two series look like strangers. training/data.py still
merges them: that costs nothing and cannot leak.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2
import numpy as np

from inference.preprocess import equalize


def thumb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    t = cv2.resize(equalize(img), (32, 32), interpolation=cv2.INTER_AREA).ravel()
    t = t - t.mean()
    return t / np.linalg.norm(t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/kermany-cxr-224"))
    args = p.parse_args(argv)
    files = sorted((args.data / "train" / "NORMAL").glob("*.jpeg"))
    groups: dict[tuple[bool, int], list[Path]] = {}
    for f in files:
        m = re.match(r"^(NORMAL2-)?IM-(\d+)-", f.name)
        if m:
            groups.setdefault((bool(m.group(1)), int(m.group(2))), []).append(f)
    t = {f: thumb(f) for f in files}
    within = [float(t[g[0]] @ t[g[1]]) for g in groups.values() if len(g) > 1]
    cross = [float(t[g[0]] @ t[groups[(True, n)][0]]) for (n2, n), g in groups.items() if not n2 and (True, n) in groups]
    rng = np.random.default_rng(0)
    rand = [float(t[files[i]] @ t[files[j]]) for i, j in rng.integers(0, len(files), (2000, 2)) if i != j]
    for name, v in (("same series, same number", within), ("IM vs NORMAL2, same number", cross), ("random pairs", rand)):
        a = np.array(v)
        print(f"{name:28s} n={len(a):4d} median={np.median(a):.3f} share>0.9={np.mean(a > 0.9):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
