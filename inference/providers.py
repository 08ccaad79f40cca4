"""ONNX Runtime execution providers: which exist here, the order ``auto`` tries, their names.

One onnxruntime wheel serves an environment (``onnxruntime``, ``-gpu`` or ``-directml``,
chosen by LungLens's ``cpu``/``gpu``/``directml`` extra), so what is available differs per
install; the engine only ever tries what this one offers. The names here need no ONNX
Runtime: the CLI validates ``--provider`` and the window names providers without it.
"""

from __future__ import annotations

from types import ModuleType

from .errors import ModelError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DIRECTML = "DmlExecutionProvider"
COREML = "CoreMLExecutionProvider"

#: ``auto`` uses the first of these that initializes; CPU always does.
AUTO_ORDER: tuple[str, ...] = (CUDA, DIRECTML, COREML, CPU)

#: The names the CLI and the settings accept, mapped to ONNX Runtime's names.
CHOICES: dict[str, str] = {"cpu": CPU, "cuda": CUDA, "directml": DIRECTML, "coreml": COREML}

_FRIENDLY: dict[str, str] = {CPU: "CPU", CUDA: "CUDA", DIRECTML: "DirectML", COREML: "CoreML"}


def onnxruntime() -> ModuleType:
    """The ONNX Runtime module. None is a dependency of the base package -- the three wheels
    install the same module, and a second one shadows the first -- so a missing one is a
    :class:`~inference.errors.ModelError` saying which extra to install, not an ImportError."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("ONNX Runtime is not installed: install LungLens with exactly one of its extras, "
                         "e.g. pip install 'lunglens[cpu]' ([gpu] for NVIDIA CUDA, [directml] for DirectX 12 "
                         "on Windows)") from exc
    return ort


def available_providers() -> list[str]:
    """The local providers this install offers, in ``auto`` order (not proof that they start).

    ONNX Runtime also lists e.g. AzureExecutionProvider (a cloud endpoint): never offered by
    an offline app, so only the providers of :data:`AUTO_ORDER` are returned.
    """
    present = set(onnxruntime().get_available_providers())
    return [p for p in AUTO_ORDER if p in present]


def friendly_name(provider: str) -> str:
    """"CUDAExecutionProvider" -> "CUDA", for the UI; unknown names pass through trimmed."""
    return _FRIENDLY.get(provider, provider.removesuffix("ExecutionProvider"))


def resolve(choice: str) -> str:
    """A user's choice ("cpu", "CUDA", "CUDAExecutionProvider", "auto") -> ORT name or "auto".

    Raises ValueError naming the accepted values, so a typo in settings is not silently CPU.
    """
    key = choice.strip()
    if key.lower() == "auto":
        return "auto"
    if key.lower() in CHOICES:
        return CHOICES[key.lower()]
    if key in _FRIENDLY:
        return key
    accepted = ", ".join(["auto", *CHOICES])
    raise ValueError(f"unknown execution provider {choice!r} (accepted: {accepted})")

