"""The input gate: is this a frontal chest radiograph like the ones the model learned from?

A classifier answers every image with a number, so before a probability is shown as
meaningful LungLens checks the input against the training data:

1. The DICOM header, where it speaks: a body part other than chest, a lateral view or a
   modality that is not a radiograph put the study out of scope outright. A blank image
   (fewer than 8 grey levels) is out of scope too, and so is a film too small to judge
   (:data:`MIN_SHORT_SIDE`).
2. Likeness (works without any header): the Mahalanobis distance of one vector to the
   training images' distribution. The vector joins what the model sees -- its pooled
   last-layer features, ``Prediction.embedding`` -- and the image's layout: a 16x16
   thumbnail of the equalized model input plus two texture figures. Photographs, CT
   slices, noise and text are far away in the features; a frontal chest film also has dark
   lungs either side of a bright mediastinum, shoulders at the top and the diaphragm below,
   which the layout measures and position-blind pooled features cannot.
3. Orientation: the layout distance of the image divided by the smallest layout distance of
   its copies turned by 90/180/270 degrees or flipped upside down. Near or above 1 a turned
   copy looks at least as much like a chest X-ray as the image itself: a rotated,
   upside-down, heavily cropped or lateral-looking radiograph, which can be close enough
   in likeness alone. A left-right mirror is not a turned copy: a mirrored chest film is
   still a frontal chest film.

The distances use means and shrinkage (Ledoit-Wolf) precision matrices fitted on the
training images by ``python -m training.ood_stats`` and stored beside the model as
``<model name>.ood.npz``, with thresholds for the two figures at one common high percentile
of held-in scores, chosen so that 1 % of held-in chest X-rays fail either.
``score`` is the larger figure divided by its threshold: above 1 is out of scope.

Population warnings (an adult patient, or no recorded age; :mod:`inference.population`) are
attached here too, so every result gets them by one path; they do not change ``in_scope``.
Only numpy is used at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imageops import gaussian_blur, resize_area
from .loaders.pixels import MIN_SHORT_SIDE
from .loaders.warnings import header_findings
from .manifest import ModelManifest
from .population import population_warnings
from .preprocess import PreprocessSpec, Prepared, equalize_counted, resize_to_input
from .study import Study, StudyMetadata

STATS_SUFFIX = ".ood.npz"
STATS_FORMAT = 4  # 4: the precision matrices are kept as their upper triangles (half the bytes)
THUMBNAIL_SIDE = 16
# Texture is measured as the mean absolute difference between the equalized input and a
# Gaussian blur of it at these sigmas (pixels of the model input): radiographs are smooth,
# noise, text and checkerboards are not.
TEXTURE_SIGMAS = (1.0, 4.0)
# Fewer distinct grey levels than this in the model input is a blank or binary image.
MIN_GREY_LEVELS = 8
HEADER_REASON = "DICOM header says "  # how the reasons read from the header begin
TOO_SMALL = "too small to judge"


@dataclass(frozen=True)
class ScopeAssessment:
    """The gate's verdict on one study.

    ``score`` is the larger of the two image figures divided by its threshold (above 1:
    unlike the training images; 0 when the image check is unavailable). ``warnings`` are
    population notes (an adult, an unrecorded age) that leave ``in_scope`` alone.
    """

    in_scope: bool
    reasons: list[str]
    score: float
    warnings: list[str] = field(default_factory=list)
    # "likeness", "orientation": each figure divided by its threshold
    distances: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GaussianModel:
    """A mean, a precision matrix and a threshold on the Mahalanobis distance (1.0 for the
    layout model, whose distances only enter the orientation ratio)."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    def distance(self, x: np.ndarray) -> float:
        d = np.asarray(x, dtype=np.float64).reshape(-1) - self.mean
        return float(np.sqrt(max(float(d @ self.precision @ d), 0.0)))

    def orientation(self, layout: np.ndarray) -> float:
        """Layout distance of the image over the smallest distance of its turned copies."""
        nearest_turned = min(self.distance(t) for t in turned_copies(layout))
        return self.distance(layout) / max(nearest_turned, 1e-9)


def over_limit(ratio: float) -> str:
    """A distance over its limit, never reading as at it: rounded up to two decimals ("1.01",
    where one decimal read "1.0x the limit" for a film refused as over it)."""
    return f"{math.ceil(round(ratio * 100, 6)) / 100:.2f}"  # round: 1.1 * 100 is 110.00000000000001


# ------------------------------------------------------------------------------- header
def pack_symmetric(m: np.ndarray) -> np.ndarray:
    """The upper triangle of a symmetric matrix, row by row. The gate's precision matrix over
    three networks' features and the layout is 834 x 834: stored whole it made the model
    files 11.4 MB, over their 10 MB budget; its triangle holds the same numbers in half."""
    return np.asarray(m)[np.triu_indices(m.shape[0])]


def unpack_symmetric(packed: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose upper triangle :func:`pack_symmetric` gave."""
    if packed.ndim != 1:
        raise ValueError(f"an array of shape {packed.shape} is not the upper triangle of a square matrix")
    size = int(packed.shape[0])
    n = int(round((math.sqrt(8 * size + 1) - 1) / 2))
    if n * (n + 1) // 2 != size:
        raise ValueError(f"{size} values are not the upper triangle of a square matrix")
    m = np.zeros((n, n), dtype=packed.dtype)
    m[np.triu_indices(n)] = packed
    return m + np.triu(m, 1).T


def header_reasons(meta: StudyMetadata) -> list[str]:
    """Reasons the DICOM header gives for this not being a frontal chest radiograph.

    Empty tags say nothing (rasters have none); the vocabularies are the loaders', so the
    study warnings and the gate never disagree.
    """
    found = header_findings(meta)
    reasons: list[str] = []
    if "body_part" in found:
        reasons.append(f"{HEADER_REASON}body part {found['body_part']}, not chest")
    if "view" in found:
        reasons.append(f"{HEADER_REASON}lateral view ({found['view']}), not frontal")
    if "modality" in found:
        reasons.append(f"{HEADER_REASON}modality {found['modality']}, not a radiograph (CR/DX)")
    return reasons


def size_reasons(shape: tuple[int, ...]) -> list[str]:
    """Why a film of this (height, width) is too small to judge, if it is."""
    height, width = shape[:2]
    if min(height, width) >= MIN_SHORT_SIDE:
        return []
    return [f"{TOO_SMALL}: {width} × {height} px, the minimum is {MIN_SHORT_SIDE} px on the short side"]


# ------------------------------------------------------------------------- image figures
def model_view(pixels: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, int]:
    """The equalized model input (0..1, before mean/std) and its number of grey levels
    (the engine has them from :func:`inference.preprocess.prepare`)."""
    return equalize_counted(resize_to_input(pixels, spec))


def layout_vector(equalized: np.ndarray) -> np.ndarray:
    """16x16 thumbnail of the equalized input followed by the texture figures."""
    thumb = resize_area(equalized, (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    texture = [float(np.mean(np.abs(equalized - gaussian_blur(equalized, sigma)))) for sigma in TEXTURE_SIGMAS]
    return np.concatenate([thumb.reshape(-1), np.asarray(texture, np.float32)]).astype(np.float32)


def turned_copies(layout: np.ndarray) -> np.ndarray:
    """Layout vectors [4, L] (or [4, N, L] for a batch) of the image rotated 90/180/270 degrees
    and flipped upside down; texture figures are isotropic and stay as they are."""
    batch = np.atleast_2d(layout)
    side = THUMBNAIL_SIDE
    thumbs = batch[:, : side * side].reshape(-1, side, side)
    rest = batch[:, side * side :]
    turned = [np.rot90(thumbs, k, axes=(1, 2)) for k in (1, 2, 3)] + [thumbs[:, ::-1, :]]
    out = np.stack([np.concatenate([t.reshape(len(batch), -1), rest], axis=1) for t in turned])
    return out if layout.ndim == 2 else out[:, 0]


# ---------------------------------------------------------------------------------- gate
class ScopeGate:
    """Judges each study against the training data; build it with :meth:`load`."""

    def __init__(
        self,
        spec: PreprocessSpec,
        likeness: GaussianModel | None,
        layout: GaussianModel | None,
        orientation_threshold: float = 1.0,
        warnings: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.likeness = likeness  # over [embedding, layout vector]
        self.layout = layout  # over the layout vector alone, for the orientation ratio
        self.orientation_threshold = orientation_threshold
        # Why the image check is unavailable, if it is; the engine shows these.
        self.warnings = list(warnings or [])

    @property
    def image_check(self) -> bool:
        return self.likeness is not None and self.layout is not None

    @staticmethod
    def stats_path(models_dir: str | Path, manifest: ModelManifest) -> Path:
        return Path(models_dir) / f"{manifest.name}{STATS_SUFFIX}"

    @classmethod
    def load(cls, models_dir: str | Path, manifest: ModelManifest) -> ScopeGate:
        """The gate for ``manifest``'s model, from ``<models_dir>/<name>.ood.npz``.

        Missing, unreadable or stale statistics (fitted for another model) leave a gate that
        checks headers only and says so in :attr:`warnings`: a stale fit would measure
        distances in the wrong feature space, which is worse than no image check.
        """
        path = cls.stats_path(models_dir, manifest)
        fix = "refit with: python -m training.ood_stats"

        def header_only(problem: str) -> ScopeGate:
            return cls(manifest.preprocess, None, None,
                       warnings=[f"Input gate: {problem}; only DICOM headers are checked ({fix})."])  # fmt: skip

        if not path.is_file():
            return header_only(f"no statistics file {path.name}")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            fmt, sha = int(data["format"]), str(data["model_sha256"])
            if fmt != STATS_FORMAT or sha.lower() != manifest.sha256.lower():
                return header_only(f"{path.name} was fitted for another model or format")
            likeness = GaussianModel(data["likeness_mean"], unpack_symmetric(data["likeness_precision"]),
                                     float(data["likeness_threshold"]))  # fmt: skip
            layout = GaussianModel(data["layout_mean"], unpack_symmetric(data["layout_precision"]), 1.0)
            orientation_threshold = float(data["orientation_threshold"])
        except (OSError, ValueError, KeyError) as exc:
            return header_only(f"statistics file {path.name} is unreadable ({exc})")
        return cls(manifest.preprocess, likeness, layout, orientation_threshold)

    def assess(self, study: Study, embedding: np.ndarray | None, prepared: Prepared | None = None) -> ScopeAssessment:
        """The verdict for ``study``; ``embedding`` is ``Prediction.embedding`` (pooled features
        [C]); ``prepared`` is the film as the engine prepared it for the model (computed here
        when not given)."""
        reasons = header_reasons(study.metadata) + size_reasons(study.pixels.shape)
        warnings = population_warnings(study.metadata)
        if prepared is None:
            equalized, levels = model_view(study.pixels, self.spec)
        else:
            equalized, levels = prepared.equalized, prepared.levels
        if levels < MIN_GREY_LEVELS:
            reasons.append(f"image is blank or nearly so ({levels} grey level{'s' if levels != 1 else ''})")
        if self.likeness is None or self.layout is None or embedding is None:
            return ScopeAssessment(in_scope=not reasons, reasons=reasons, score=0.0, warnings=warnings)
        layout = layout_vector(equalized)
        joint = np.concatenate([np.asarray(embedding, np.float32).reshape(-1), layout])
        ratios = {
            "likeness": self.likeness.distance(joint) / self.likeness.threshold,
            "orientation": self.layout.orientation(layout) / self.orientation_threshold,
        }
        if ratios["likeness"] > 1.0:
            reasons.append(
                f"image does not look like the chest X-rays the model learned from "
                f"(distance {over_limit(ratios['likeness'])}x the limit)"
            )
        if ratios["orientation"] > 1.0:
            reasons.append(
                "image looks rotated, upside down, cropped or lateral: a turned copy of it "
                "resembles a frontal chest X-ray more than the image itself"
            )
        return ScopeAssessment(
            in_scope=not reasons, reasons=reasons, score=float(max(ratios.values())), warnings=warnings,
            distances=ratios,
        )  # fmt: skip
