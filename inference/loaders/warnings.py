"""The study warnings: reasons to doubt a result, shown beside it, never silent."""

from __future__ import annotations

from inference.study import StudyMetadata

CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT"})
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", ""})
SMALL_SIDE = 256
MAX_ASPECT = 2.0


def study_warnings(
    meta: StudyMetadata,
    height: int,
    width: int,
    colour: bool = False,
    frames: int = 1,
    transparent: bool = False,
) -> list[str]:
    """Short sentences for everything that makes this study unlike the model's training data."""
    out: list[str] = []
    body = meta.body_part.strip().upper()
    if body and body not in CHEST_BODY_PARTS:
        out.append(f"Body part is {meta.body_part.strip()}, not chest: the model only knows chest X-rays.")
    view = meta.view_position.strip().upper()
    if view in LATERAL_VIEWS:
        out.append(f"Lateral view ({meta.view_position.strip()}): the model was trained on frontal (PA/AP) views.")
    modality = meta.modality.strip().upper()
    if modality not in RADIOGRAPH_MODALITIES:
        out.append(f"Modality is {meta.modality.strip()}, not a radiograph (CR/DX).")
    if min(height, width) < SMALL_SIDE:
        out.append(f"Small image ({width}x{height} px): detail may be lost.")
    if max(height, width) > MAX_ASPECT * min(height, width):
        out.append(f"Unusual aspect ratio ({width}x{height} px): it may not be a whole chest film.")
    if colour:
        out.append("Colour image: converted to greyscale.")
    if transparent:
        out.append("Image has transparency: the alpha channel was ignored.")
    if frames > 1:
        out.append(f"Multi-frame image ({frames} frames): only the first frame is shown and analysed.")
    return out
