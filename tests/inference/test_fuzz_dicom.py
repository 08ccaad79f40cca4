"""300 random mutations of valid DICOM files: each ends in a Study or a StudyLoadError, fast."""

from __future__ import annotations

import time
import warnings
from collections import Counter

import cv2
import numpy as np
import pydicom
import pytest

from inference.errors import StudyLoadError
from inference.loaders import load_study
from inference.study import Study
from tests.fixtures.dicom_factory import write_dicom

CASES = 300
TIME_LIMIT_S = 5.0
BASES = [
    ("explicit", {"rescale": (1.0, -1024.0), "window": (0, 2000)}),
    ("rle", {"photometric": "MONOCHROME1"}),
    ("j2k-lossless", {}),
    ("jpeg-lossless", {}),
    ("implicit", {"no_file_meta": True}),
    ("jpeg-ls", {"frames": 2}),
]


@pytest.fixture(scope="module")
def base_files(tmp_path_factory, film12) -> list[bytes]:
    small = cv2.resize(film12, (80, 96), interpolation=cv2.INTER_AREA)
    folder = tmp_path_factory.mktemp("fuzz-base")
    out = []
    for i, (syntax, options) in enumerate(BASES):
        path = write_dicom(folder / f"base{i}.dcm", small, syntax, bits_stored=12, **options)
        assert isinstance(load_study(path), Study)  # every base is valid before mutation
        out.append(path.read_bytes())
    return out


def _delete_tag(data: bytes, rng: np.random.Generator, path) -> bytes:
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        tags = list(ds.keys()) + [("meta", t) for t in ds.file_meta.keys() if t != 0x00020010]
        victim = tags[int(rng.integers(len(tags)))]
        if isinstance(victim, tuple):
            del ds.file_meta[victim[1]]
        else:
            del ds[victim]
        ds.save_as(path, enforce_file_format=False)
    return path.read_bytes()


def mutate(data: bytes, rng: np.random.Generator, path) -> tuple[str, bytes]:
    kind = ("flip", "truncate", "delete", "delete+flip")[int(rng.integers(4))]
    if kind.startswith("delete"):
        data = _delete_tag(data, rng, path)
    if kind == "truncate":
        return kind, data[: int(rng.integers(0, len(data)))]
    if "flip" in kind:
        buf = bytearray(data)
        header_end = min(len(buf), 1200)  # half the flips land in the header, where parsing lives
        for _ in range(int(rng.integers(1, 33))):
            limit = header_end if rng.random() < 0.5 else len(buf)
            buf[int(rng.integers(limit))] ^= int(rng.integers(1, 256))
        data = bytes(buf)
    return kind, data


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom comments on every damaged value
def test_fuzzed_dicoms_end_in_a_study_or_a_load_error(tmp_path, base_files):
    rng = np.random.default_rng(20240131)
    outcomes: Counter[str] = Counter()
    failures = []
    slowest = 0.0
    for case in range(CASES):
        base = base_files[case % len(base_files)]
        path = tmp_path / f"case{case:03d}.dcm"
        kind, data = mutate(base, rng, path)
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            study = load_study(path)
        except StudyLoadError as err:
            outcome = type(err).__name__
            if not str(err).startswith(f"{path.name}: "):
                failures.append(f"case {case} ({kind}): message does not name the file: {err}")
        except Exception as err:  # noqa: BLE001 - exactly what the test hunts for
            outcome = "crash"
            failures.append(f"case {case} ({kind}): {type(err).__name__}: {err}")
        else:
            outcome = "Study"
            if study.pixels.ndim != 2 or study.pixels.dtype != np.float32:
                failures.append(f"case {case} ({kind}): bad pixels {study.pixels.dtype} {study.pixels.shape}")
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        if elapsed > TIME_LIMIT_S:
            failures.append(f"case {case} ({kind}): took {elapsed:.1f} s")
        outcomes[outcome] += 1
    assert not failures, "\n".join(failures)
    assert sum(outcomes.values()) == CASES
    # Both ends are exercised: some mutations still load, others are refused.
    assert outcomes["Study"] > 0 and outcomes["Study"] < CASES, outcomes
    print(f"fuzz outcomes: {dict(outcomes)}; slowest case {slowest * 1000:.0f} ms")
