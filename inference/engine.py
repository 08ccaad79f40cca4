"""The ONNX engine: a verified model, an execution provider, and ``predict(study)``.

Thread-safety: an :class:`Engine` holds one ONNX Runtime session. Create it once and call
:meth:`Engine.predict` from one worker thread (the GUI's worker, the CLI's main loop);
calls are serialised by a lock anyway, so a second caller waits instead of corrupting
timings. Loading a study and rendering overlays need no engine and can run elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import warnings as pywarnings
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from . import providers as prov
from .errors import ModelError
from .attribution import Attribution, attribution_grid
from .manifest import ModelManifest
from .ood import ScopeGate
from .paths import models_dir as default_models_dir
from .prediction import ModelInfo, Prediction
from .profile import UNCALIBRATED, ProfileError, SiteProfile, uncalibrated
from .preprocess import prepare
from .study import Study
from .threads import ThreadPolicy, limit_blas
from .threads import policy as thread_policy

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

def find_manifest(location: str | Path | None = None) -> Path:
    """The manifest to use: ``location`` if it is a .json file, else the one manifest in
    that folder (default: the bundled ``resources/models``)."""
    where = Path(location) if location is not None else default_models_dir()
    if where.is_file():
        return where
    if not where.is_dir():
        raise ModelError(f"model folder not found: {where} (the installation is incomplete)")
    jsons = sorted(where.glob("*.json"))
    found = [p for p in jsons if _is_manifest(p)]
    if not found:
        unreadable = f"; {', '.join(p.name for p in jsons)} is not a readable manifest" if jsons else ""
        raise ModelError(f"no model manifest in {where} (the installation is incomplete{unreadable})")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelError(f"more than one model manifest in {where}: {names}; keep exactly one")
    return found[0]


def _is_manifest(path: Path) -> bool:
    """Whether a .json file is a model manifest, not e.g. metrics kept beside the model."""
    try:
        ModelManifest.load(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class _Outputs:
    logit: float
    features: np.ndarray  # [C, h, w]
    grads: np.ndarray  # [C, h, w]


class Engine:
    """A loaded, verified model ready to classify studies. Build it with :meth:`load`."""

    def __init__(
        self,
        manifest: ModelManifest,
        session: ort.InferenceSession,
        model_path: Path,
        warnings: list[str],
        load_ms: float,
        gate: ScopeGate,
        profile: SiteProfile,
        threads: ThreadPolicy,
    ) -> None:
        self.manifest = manifest
        self.gate = gate  # the input gate: is this a frontal chest X-ray like the training ones?
        self.model_path = model_path
        self.warnings = warnings  # shown by the UI: e.g. "CUDA unavailable, running on CPU"
        self.load_ms = load_ms
        self._session = session
        self._lock = threading.Lock()
        self.provider: str = session.get_providers()[0]  # what really runs, not what was asked
        self.model_info = ModelInfo(name=manifest.name, version=manifest.version, sha256=manifest.sha256)
        self.profile = profile  # calibration and operating points in use; see set_profile()
        self.threads = threads  # the session's threads, and how many studies to decode at once

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        models_dir: str | Path | None = None,
        provider: str = "auto",
        threads: int | None = None,
        profile: str | Path | SiteProfile | None = None,
    ) -> Engine:
        """Read the manifest, verify the model's SHA-256, open a session, warm it up.

        ``models_dir`` is the folder holding ``<name>.onnx`` + ``<name>.json`` (default the
        bundled ``resources/models``) or the manifest path itself. ``provider`` is "auto" or
        one of cpu|cuda|directml|coreml (ORT names accepted); an explicit one that is unknown,
        absent or cannot start falls back to CPU with a warning in :attr:`warnings`. ``threads`` sets ONNX
        Runtime's intra-op threads (None: :func:`inference.threads.policy`'s choice for this
        machine, which also holds numpy's BLAS to one thread in this process). ``profile`` is a site
        profile (a path or a loaded one; default: the shipped profile the manifest names); one
        made for another model is refused (:class:`inference.profile.ProfileError`).
        """
        t0 = time.perf_counter()
        manifest_path = find_manifest(models_dir)
        try:
            manifest = ModelManifest.load(manifest_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"model manifest {manifest_path.name} is unreadable: {exc}") from exc
        model_path = manifest_path.parent / manifest.onnx_file
        if not model_path.is_file():
            raise ModelError(f"model file {model_path} is missing (the installation is incomplete)")
        # Hash the very bytes the session is built from, so nothing can change in between.
        model_bytes = model_path.read_bytes()
        found = hashlib.sha256(model_bytes).hexdigest()
        if found.lower() != manifest.sha256.lower():
            raise ModelError(
                f"model file {model_path.name} is corrupted or has been modified: "
                f"expected sha256 {manifest.sha256}, found {found}"
            )
        model_info = ModelInfo(name=manifest.name, version=manifest.version, sha256=manifest.sha256)
        site = _load_profile(profile, manifest, manifest_path.parent, model_info)
        threading_policy = thread_policy(threads)  # refuses threads < 1
        limit_blas()

        ort = prov.onnxruntime()
        options = threading_policy.session_options(ort)
        options.log_severity_level = 3  # ORT's own fallback chatter; we report our own warnings
        available = prov.available_providers()
        log.info("ONNX Runtime %s, providers: %s", ort.__version__, ", ".join(available))
        session, warnings = _open_session(model_bytes, options, provider, available)
        _check_contract(session, manifest, model_path)
        gate = ScopeGate.load(manifest_path.parent, manifest)
        warnings.extend(gate.warnings)  # e.g. no gate statistics: only headers are checked

        engine = cls(manifest, session, model_path, warnings, load_ms=0.0, gate=gate, profile=site,
                     threads=threading_policy)
        engine._run(np.zeros((1, 1, manifest.preprocess.height, manifest.preprocess.width), np.float32))
        engine.load_ms = (time.perf_counter() - t0) * 1000.0
        log.info(
            "model %s %s loaded on %s in %.0f ms", manifest.name, manifest.version, engine.provider, engine.load_ms
        )
        return engine

    def set_profile(self, profile: str | Path | SiteProfile) -> None:
        """Use another site profile from the next prediction on (refused if made for another model)."""
        self.profile = _load_profile(profile, self.manifest, self.model_path.parent, self.model_info)

    # --------------------------------------------------------------- prediction
    def predict(
        self,
        study: Study,
        threshold: float | None = None,
        operating_point: str | None = None,
    ) -> Prediction:
        """Classify one study: calibrated probability, label, the attribution grid that explains
        the logit, and the input gate's verdict (``in_scope``, ``scope_reasons``).

        ``threshold`` (a probability) overrides the operating point and is reported as
        "custom"; otherwise ``operating_point`` names one of the profile's (default: the
        profile's default).
        """
        profile = self.profile
        operating = profile.operating_point(operating_point, threshold)
        t0 = time.perf_counter()
        prepared = prepare(study.pixels, self.manifest.preprocess)
        t1 = time.perf_counter()
        out = self._run(prepared.tensor)
        t2 = time.perf_counter()
        attribution = Attribution(attribution_grid(out.features, out.grads), self.manifest.attribution_full_scale)
        t3 = time.perf_counter()
        embedding = out.features.mean(axis=(1, 2)).astype(np.float32)
        scope = self.gate.assess(study, embedding, prepared)
        t4 = time.perf_counter()

        return Prediction(
            probability=profile.probability(out.logit),
            operating=operating,
            profile=profile.info,
            model=self.model_info,
            provider=self.provider,
            timings_ms={
                "load": round(self.load_ms, 3),
                "preprocess": round((t1 - t0) * 1000.0, 3),
                "inference": round((t2 - t1) * 1000.0, 3),
                "attribution": round((t3 - t2) * 1000.0, 3),
                "gate": round((t4 - t3) * 1000.0, 3),
            },
            warnings=[*study.warnings, *scope.warnings, *self.warnings],
            logit=out.logit,
            in_scope=scope.in_scope,
            scope_reasons=list(scope.reasons),
            embedding=embedding,
            attribution=attribution,
        )

    def _run(self, x: np.ndarray) -> _Outputs:
        names = self.manifest.outputs
        with self._lock:
            logit, features, grads = self._session.run(
                [names["logit"], names["features"], names["features_grad"]], {self.manifest.input_name: x}
            )
        return _Outputs(logit=float(np.asarray(logit).reshape(-1)[0]), features=features[0], grads=grads[0])


def _open_session(
    model: bytes, options: ort.SessionOptions, choice: str, available: list[str]
) -> tuple[ort.InferenceSession, list[str]]:
    """The first provider that really starts, and warnings about any that was asked for but not."""
    ort = prov.onnxruntime()
    warnings: list[str] = []
    try:
        requested = prov.resolve(choice)
    except ValueError as exc:  # e.g. a stale settings file: run, but say so
        warnings.append(f"{exc}; running on CPU")
        requested = prov.CPU
    if requested == "auto":
        order = [p for p in prov.AUTO_ORDER if p in available]
    else:
        order = [requested]
        if requested not in available:
            warnings.append(
                f"{prov.friendly_name(requested)} execution provider is not available in this "
                f"installation; running on CPU"
            )
            order = []
    for name in order:
        try:
            with pywarnings.catch_warnings():  # ORT warns and falls back to CPU; we report it ourselves
                pywarnings.simplefilter("ignore")
                session = ort.InferenceSession(model, sess_options=options, providers=[name])
        except Exception as exc:  # a GPU provider failing to start must not stop the app
            log.warning("execution provider %s failed to initialize: %s", name, exc)
            if requested != "auto":
                warnings.append(
                    f"{prov.friendly_name(name)} execution provider failed to start ({exc}); running on CPU"
                )
            continue
        got = session.get_providers()[0]
        if got == name:
            log.info("execution provider in use: %s", got)
            return session, warnings
        log.warning("execution provider %s did not initialize (session uses %s)", name, got)
        if requested != "auto":
            warnings.append(f"{prov.friendly_name(name)} execution provider failed to start; running on CPU")
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=[prov.CPU])
    except Exception as exc:
        raise ModelError(f"the model could not be opened by ONNX Runtime: {exc}") from exc
    log.info("execution provider in use: %s", session.get_providers()[0])
    return session, warnings


def _load_profile(profile: str | Path | SiteProfile | None, manifest: ModelManifest, folder: Path,
                  model: ModelInfo) -> SiteProfile:
    """The profile to use, checked against the model. The shipped one failing is a broken
    installation (ModelError); a user's profile failing is the user's to fix (ProfileError)."""
    if isinstance(profile, SiteProfile):
        profile.check_model(model)
        return profile
    if profile == UNCALIBRATED:
        return uncalibrated(model)
    if profile is not None:
        return SiteProfile.load(profile, model)
    if not manifest.default_profile:
        raise ModelError(f"model manifest of {manifest.name} names no default site profile (the installation is incomplete)")
    try:
        return SiteProfile.load(folder / manifest.default_profile, model)
    except ProfileError as exc:
        raise ModelError(f"the shipped site profile is unusable (the installation is incomplete): {exc}") from exc


def _check_contract(session: ort.InferenceSession, manifest: ModelManifest, model_path: Path) -> None:
    """Refuse a model whose inputs/outputs are not the ones the manifest promises."""
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if manifest.input_name not in inputs:
        raise ModelError(f"model {model_path.name} has no input {manifest.input_name!r} (it has {sorted(inputs)})")
    roles = ("logit", "features", "features_grad")
    if any(role not in manifest.outputs for role in roles):
        raise ModelError(f"manifest of {model_path.name} must name the outputs {list(roles)}")
    missing = [manifest.outputs[r] for r in roles if manifest.outputs[r] not in outputs]
    if missing:
        raise ModelError(f"model {model_path.name} lacks the outputs {missing} its manifest names")
    if not manifest.attribution_full_scale > 0:
        raise ModelError(f"manifest of {model_path.name} lacks attribution.full_scale, the scale its heat-map is drawn on")
