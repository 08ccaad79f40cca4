"""Regenerate the bundled samples in ``resources/samples/`` from ``../shared/data``.

The samples serve two purposes: a user can open them to see what LungLens does, and
``lunglens --self-test`` uses them to prove that an installed (frozen) build still reads,
decodes and classifies as the source tree does. What is written:

- ``sample-normal.png``, ``sample-pneumonia.png``: two radiographs of the data set
  re-encoded as 8-bit grayscale PNG under neutral names (the source names identify patients);
- ``sample-pneumonia.dcm``: a third one as DICOM compressed with JPEG Lossless (SV1), the
  commonest CR/DX archive syntax;
- ``syntaxes/*.dcm``: the normal sample shrunk to 64x64 (8- and 12-bit) in every compressed
  transfer syntax LungLens decodes, written by the loaders' test factory
  (tests/fixtures/dicom_factory.py), plus the pixels they must decode to (``reference-*.png``);
- ``expected.json``: the true label of each classified sample (from the data set's folder),
  the logit the bundled model gave when the samples were made (with its SHA-256) and the
  probability the shipped site profile made of it (with the profile's name and hash: the
  logit belongs to the model, the probability to the profile), and for each syntax file
  whether it is lossless or the error bound of its lossy decode.

Which radiographs: the first, in sorted order, of a validation patient (held out from
training, training/validation_patients.txt) that the bundled model classifies correctly with
a clear margin from the shipped profile's default threshold, so the self-test checks the
build and not the model's borderline cases. Re-run after the model changes:
``python packaging/make_samples.py`` (needs the model in resources/models, imagecodecs,
pyjpegls and pylibjpeg-openjpeg for the encoders).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID, HTJ2KLossless

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inference.engine import Engine  # noqa: E402
from inference.prediction import Prediction  # noqa: E402
from inference.study import Study, StudyMetadata  # noqa: E402
from tests.fixtures.dicom_factory import LOSSLESS_SYNTAXES, TRANSFER_SYNTAXES, write_dicom  # noqa: E402
from training.data import patient_id, read_validation_patients  # noqa: E402 -- no torch there

SHARED_TRAIN = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "train"
VALIDATION_PATIENTS = REPO / "training" / "validation_patients.txt"
SAMPLES = REPO / "resources" / "samples"
TILE = 64  # side of the per-syntax images: decoding is what is tested, not the picture

# What the samples say about themselves: nothing that could pass for a real patient. The
# training images are pediatric frontal AP radiographs; age, sex and dates are unknown.
NEUTRAL_TAGS = {
    "PatientName": "Sample^LungLens",
    "StudyDescription": "LungLens bundled sample",
    "Modality": "CR",
    "ViewPosition": "AP",
    "PatientSex": None,
    "PatientAge": None,
    "StudyDate": None,
    "AccessionNumber": None,
    "InstitutionName": None,
}


@dataclass(frozen=True)
class SyntaxSample:
    """One per-syntax file: the factory's syntax name (or HTJ2K, which it does not write)."""

    file: str
    syntax: str  # a key of dicom_factory.TRANSFER_SYNTAXES, or "htj2k-lossless"
    bits: int

    @property
    def uid(self) -> UID:
        return HTJ2KLossless if self.syntax == "htj2k-lossless" else TRANSFER_SYNTAXES[self.syntax]

    @property
    def lossless(self) -> bool:
        return self.syntax in LOSSLESS_SYNTAXES or self.syntax == "htj2k-lossless"


# Every compressed transfer syntax LungLens reads (and deflate), one small file each.
SYNTAXES: tuple[SyntaxSample, ...] = (
    SyntaxSample("jpeg-baseline.dcm", "jpeg-baseline", 8),
    SyntaxSample("jpeg-extended-12bit.dcm", "jpeg-extended", 12),
    SyntaxSample("jpeg-lossless-sv1.dcm", "jpeg-lossless-sv1", 12),
    SyntaxSample("jpeg-lossless-p14.dcm", "jpeg-lossless", 12),
    SyntaxSample("jpeg-ls-lossless.dcm", "jpeg-ls", 12),
    SyntaxSample("jpeg-ls-near-lossless.dcm", "jpeg-ls-near", 12),
    SyntaxSample("jpeg2000-lossless.dcm", "j2k-lossless", 12),
    SyntaxSample("jpeg2000-lossy.dcm", "j2k", 12),
    SyntaxSample("htj2k-lossless.dcm", "htj2k-lossless", 12),
    SyntaxSample("rle-lossless.dcm", "rle", 12),
    SyntaxSample("deflated.dcm", "deflated", 12),
)


def read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"{path}: not readable as an image")
    return img


def write_sample(path: Path, pixels: np.ndarray, sample: SyntaxSample, patient_id: str) -> None:
    """``pixels`` as a DICOM in the sample's syntax, through the loaders' test factory."""
    tags = {**NEUTRAL_TAGS, "PatientID": patient_id}
    if sample.syntax != "htj2k-lossless":
        write_dicom(path, pixels, sample.syntax, bits_stored=sample.bits, tags=tags)
        return
    import imagecodecs  # the factory has no HTJ2K encoder; openjph (reversible by default) does

    write_dicom(path, pixels, "explicit", bits_stored=sample.bits, tags=tags)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.PixelData = encapsulate([imagecodecs.htj2k_encode(np.ascontiguousarray(pixels))])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def tile_of(image8: np.ndarray) -> dict[int, np.ndarray]:
    """The per-syntax picture: the image shrunk to TILE x TILE, at 8 and at 12 bits."""
    small = cv2.resize(image8, (TILE, TILE), interpolation=cv2.INTER_AREA)
    twelve = (small.astype(np.uint16) << 4) | (small.astype(np.uint16) >> 4)  # 0..4095
    return {8: small, 12: twelve}


def decoded_pixels(path: Path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


def write_syntax_samples(samples: Path) -> list[dict]:
    syntax_dir = samples / "syntaxes"
    syntax_dir.mkdir(parents=True, exist_ok=True)
    tiles = tile_of(read_gray(samples / "sample-normal.png"))
    references = {}
    for bits, pixels in tiles.items():
        ref = syntax_dir / f"reference-{bits}bit.png"
        cv2.imwrite(str(ref), pixels)
        references[bits] = ref
    entries = []
    for sample in SYNTAXES:
        pixels = tiles[sample.bits]
        path = syntax_dir / sample.file
        write_sample(path, pixels.astype(np.uint8 if sample.bits == 8 else np.uint16), sample, "SAMPLE-SYNTAX")
        found = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        if found != sample.uid:
            raise SystemExit(f"{sample.file}: written as {found}, not {sample.uid}")
        error = float(np.abs(decoded_pixels(path).astype(np.float64) - pixels).mean())
        if sample.lossless and error != 0.0:
            raise SystemExit(f"{sample.file}: lossless syntax {sample.uid.name} did not round-trip")
        entries.append({
            "file": f"syntaxes/{sample.file}",
            "transfer_syntax": str(sample.uid),
            "name": sample.uid.name,
            "bits_stored": sample.bits,
            "reference": f"syntaxes/{references[sample.bits].name}",
            "lossless": sample.lossless,
            # a decoder that worked at generation gave `error`; allow for other builds of it
            "max_mean_abs_error": 0.0 if sample.lossless else round(max(1.0, 2.0 * error), 3),
        })
        print(f"wrote syntaxes/{sample.file} ({path.stat().st_size} bytes, {sample.uid.name})")
    return entries


def pick(engine: Engine, label: str, exclude: set[str]) -> tuple[Path, Prediction, int]:
    """The first image of ``label`` (sorted) from a validation patient -- one the model never
    trained on -- that the model gets right by a clear margin from its default threshold."""
    threshold = engine.profile.operating_point().threshold
    held_out = read_validation_patients(VALIDATION_PATIENTS)
    files = sorted((SHARED_TRAIN / label).glob("*.jpeg"))
    if not files:
        raise SystemExit(f"no images in {SHARED_TRAIN / label} (../shared/data missing?)")
    for index, path in enumerate(files):
        if patient_id(path) in exclude or patient_id(path) not in held_out:
            continue
        pixels = read_gray(path).astype(np.float32)
        study = Study(path=path, pixels=pixels, window=(127.5, 255.0), metadata=StudyMetadata())
        prediction = engine.predict(study)
        p = prediction.probability
        clear = p <= threshold / 2 if label == "NORMAL" else p >= threshold + (1 - threshold) / 2
        if clear:
            return path, prediction, index
    raise SystemExit(f"the model classifies no held-out {label} image clearly; is it trained?")


def main() -> int:
    engine = Engine.load()
    # Written beside the old set and swapped in at the end: an interrupted run leaves the
    # shipped samples and their expected.json consistent.
    staging = REPO / "build" / "samples.new"  # outside resources/, which the spec ships whole
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    classify = []
    used: set[str] = set()  # patients already sampled: each sample is another child
    jobs = [("sample-normal.png", "NORMAL"), ("sample-pneumonia.png", "PNEUMONIA"), ("sample-pneumonia.dcm", "PNEUMONIA")]
    for name, label in jobs:
        source, prediction, index = pick(engine, label, used)
        used.add(patient_id(source))
        image = read_gray(source)
        out = staging / name
        if out.suffix == ".png":
            cv2.imwrite(str(out), image)
        else:
            write_sample(out, image, SyntaxSample(name, "jpeg-lossless-sv1", 8), "SAMPLE-PNEUMONIA")
            if not np.array_equal(decoded_pixels(out), image):
                raise SystemExit(f"{out}: JPEG Lossless did not round-trip")
        classify.append({
            "file": name,
            "label": label,
            "logit": round(prediction.logit, 6),
            "probability": round(prediction.probability, 6),
            "source": f"kermany-cxr-224/train/{label} image #{index} in sorted order (a validation patient)",
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        })
        print(f"wrote {name} ({out.stat().st_size} bytes, {label}, p={prediction.probability:.3f})")
    expected = {
        "generated_by": "packaging/make_samples.py",
        "model": {"name": engine.manifest.name, "version": engine.manifest.version, "sha256": engine.manifest.sha256},
        "profile": {"name": engine.profile.name, "sha256": engine.profile.sha256},
        "threshold": engine.profile.operating_point().threshold,
        "classify": classify,
        "decode": write_syntax_samples(staging),
    }
    (staging / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(SAMPLES, ignore_errors=True)
    staging.rename(SAMPLES)
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    print(f"wrote {SAMPLES.relative_to(REPO)}/ with expected.json: {total / 1024:.0f} KiB in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
