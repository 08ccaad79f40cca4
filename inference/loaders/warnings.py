"""The study warnings: reasons to doubt a result, shown beside it, never silent."""

from __future__ import annotations

from inference.study import StudyMetadata

CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT"})
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", ""})
SMALL_SIDE = 256
MAX_ASPECT = 2.0


def header_findings(meta: StudyMetadata) -> dict[str, str]:
    """What the DICOM header says that the model was not built for, keyed "body_part",
    "view" or "modality" with the header's own value. Empty tags say nothing.

    The study warnings and the input gate both read this, so they never disagree.
    """
    found: dict[str, str] = {}
    body = meta.body_part.strip()
    if body and body.upper() not in CHEST_BODY_PARTS:
        found["body_part"] = body
    view = meta.view_position.strip()
    if view.upper() in LATERAL_VIEWS:
        found["view"] = view
    modality = meta.modality.strip()
    if modality.upper() not in RADIOGRAPH_MODALITIES:
        found["modality"] = modality
    return found


# How the warnings drawn from the header begin: the input gate refuses the film for the same
# findings ("DICOM header says lateral view (LL), not frontal"), and a result says each once.
HEADER_WARNINGS = ("Body part is ", "Lateral view (", "Modality is ")
SMALL_WARNING = ("Small image (",)  # and the gate's "too small to judge", below MIN_SHORT_SIDE


def study_warnings(
    meta: StudyMetadata,
    height: int,
    width: int,
    colour: bool = False,
    frames: int = 1,
    transparent: bool = False,
    shown: tuple[int, ...] | None = None,
) -> list[str]:
    """Short sentences for everything that makes this study unlike the model's training data.

    ``shown``: the (rows, cols) of the pixels kept, when a huge image was reduced.
    """
    out: list[str] = []
    found = header_findings(meta)
    if "body_part" in found:
        out.append(f"{HEADER_WARNINGS[0]}{found['body_part']}, not chest: the model only knows chest X-rays.")
    if "view" in found:
        out.append(f"{HEADER_WARNINGS[1]}{found['view']}): the model was trained on frontal (PA/AP) views.")
    if "modality" in found:
        out.append(f"{HEADER_WARNINGS[2]}{found['modality']}, not a radiograph (CR/DX).")
    if min(height, width) < SMALL_SIDE:
        out.append(f"{SMALL_WARNING[0]}{width}x{height} px): detail may be lost.")
    if max(height, width) > MAX_ASPECT * min(height, width):
        out.append(f"Unusual aspect ratio ({width}x{height} px): it may not be a whole chest film.")
    if colour:
        out.append("Colour image: converted to greyscale.")
    if transparent:
        out.append("Image has transparency: the alpha channel was ignored.")
    if shown is not None and tuple(shown[:2]) != (height, width):
        out.append(f"Very large image ({width}x{height} px): analysed at {shown[1]}x{shown[0]} px.")
    if frames > 1:
        out.append(f"Multi-frame image ({frames} frames): only the first frame is shown and analysed.")
    return out
