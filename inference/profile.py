"""Site profiles: the file that holds one site's calibration and operating points.

The shipped default and a clinic's own profile are the same kind of file, written by
:func:`make_profile` from a :class:`inference.calibration.Fit`. A profile belongs to one
model: it records the model's SHA-256 and is refused for any other model, wherever it is
applied (a calibration fitted to one network's logits means nothing for another's). It
never holds a patient identifier: only counts, fitted numbers and a description of the films.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .calibration import Calibration, Fit
from .decision import CUSTOM, Estimate, OperatingPoint, custom_point
from .errors import LungLensError
from .prediction import ModelInfo
from .userdirs import write_atomically

UNCALIBRATED = ":uncalibrated:"  # Engine.load(profile=UNCALIBRATED): raw logits, for calibrating
FORMAT = "lunglens-site-profile"
FORMAT_VERSION = 1
SUFFIX = ".profile.json"


class ProfileError(LungLensError):
    """A profile that cannot be used: unreadable, of another format, or for another model."""


@dataclass(frozen=True)
class ProfileInfo:
    """What every result records about the profile that produced it."""

    name: str
    sha256: str
    source: str  # e.g. "site sample: 292 films (117 NORMAL, 175 PNEUMONIA) of other patients"


@dataclass(frozen=True)
class SiteProfile:
    """A calibration and its operating points, fitted on one set of labelled films."""

    name: str
    model: ModelInfo
    calibration: Calibration
    operating_points: dict[str, OperatingPoint]
    default_operating_point: str
    source: str
    n_normal: int
    n_pneumonia: int
    n_groups: int
    grouping: str  # "patient" or "film": what the bootstrap resampled
    target_sensitivity: float
    metrics: dict[str, Estimate]  # auc, ece_before, ece_after
    cv_ece: dict[str, float]
    reliability: list[dict]
    roc: list[list[float]]
    created: str
    sha256: str = ""  # of the file's canonical JSON; set by to_dict()/load()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ use
    @property
    def info(self) -> ProfileInfo:
        return ProfileInfo(self.name, self.sha256, self.source)

    def probability(self, logit: float) -> float:
        return float(self.calibration.probability(logit))

    def operating_point(self, name: str | None = None, threshold: float | None = None) -> OperatingPoint:
        """The named point (default: the profile's default), or a custom one for ``threshold``."""
        if threshold is not None:
            return custom_point(threshold)
        key = name or self.default_operating_point
        if key == CUSTOM:
            raise ValueError("the custom operating point needs a threshold")
        if key not in self.operating_points:
            known = ", ".join(self.operating_points)
            raise ValueError(f"unknown operating point {key!r} (profile {self.name!r} has: {known})")
        return self.operating_points[key]

    def check_model(self, model: ModelInfo) -> None:
        """Refuse to be applied to a model it was not fitted for."""
        if self.model.sha256.lower() != model.sha256.lower():
            raise ProfileError(
                f"profile {self.name!r} was made for model {self.model.name} {self.model.version} "
                f"(sha256 {self.model.sha256[:12]}…), not for the model in use, {model.name} {model.version} "
                f"(sha256 {model.sha256[:12]}…): run `lunglens calibrate` again with this model")

    def chosen(self, name: str, default_operating_point: str) -> SiteProfile:
        """The same fit under the name and default point a user chose after seeing its figures
        (the calibration wizard asks for both only once the fit is done); a new hash."""
        if default_operating_point not in self.operating_points:
            raise ValueError(f"unknown operating point {default_operating_point!r} "
                             f"(profile {self.name!r} has: {', '.join(self.operating_points)})")
        return SiteProfile.from_dict({**self.body(), "name": name, "default_operating_point": default_operating_point})

    # ------------------------------------------------------------------ file
    def body(self) -> dict[str, Any]:
        """The JSON body without its hash (what the hash is computed over)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "model": {"name": self.model.name, "version": self.model.version, "sha256": self.model.sha256},
            "source": {"description": self.source, "n_normal": self.n_normal, "n_pneumonia": self.n_pneumonia,
                       "n_groups": self.n_groups, "grouping": self.grouping},
            "calibration": {**self.calibration.to_dict(), "cross_validated_ece": self.cv_ece},
            "target_sensitivity": self.target_sensitivity,
            "default_operating_point": self.default_operating_point,
            "operating_points": {
                k: {"threshold": op.threshold, "sensitivity": op.sensitivity.to_dict(),
                    "specificity": op.specificity.to_dict(), "description": op.description}
                for k, op in self.operating_points.items()
            },
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "reliability": self.reliability,
            "roc": self.roc,
        }

    def to_json(self) -> str:
        """The profile file's text: its body and the SHA-256 of that body."""
        body = self.body()
        return json.dumps({**body, "sha256": _digest(body)}, indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(path, self.to_json().encode("utf-8"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteProfile:
        if not isinstance(data, dict):  # a list or a string is JSON too
            raise ValueError(f"not a LungLens site profile (a JSON {type(data).__name__}, not an object)")
        if data.get("format") != FORMAT:
            raise ValueError(f"not a LungLens site profile (format {data.get('format')!r})")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"profile format {data['format_version']} is newer than this LungLens "
                             f"understands ({FORMAT_VERSION}); update LungLens")
        points = _object(data, "operating_points")
        ops = {}
        for k in points:
            op = _object(points, k, "operating_points.")
            ops[k] = OperatingPoint(k, float(op["threshold"]), Estimate.from_dict(op["sensitivity"]),
                                    Estimate.from_dict(op["specificity"]), str(op.get("description", "")))
        default = data["default_operating_point"]
        if default not in ops:
            raise ValueError(f"default operating point {default!r} is not among {sorted(ops)}")
        for op in ops.values():
            if not 0.0 <= op.threshold <= 1.0:
                raise ValueError(f"operating point {op.name!r}: threshold {op.threshold} is not a probability")
        src = _object(data, "source")
        body = {k: v for k, v in data.items() if k != "sha256"}
        digest = _digest(body)
        if "sha256" in data and str(data["sha256"]).lower() != digest:
            # Results record the profile by this hash: an edited file would be recorded under a
            # hash that names no file, and its figures would no longer be what was measured.
            raise ValueError("its contents were changed after `lunglens calibrate` made it (the sha256 it "
                             "records does not match them); make it again with lunglens calibrate")
        return cls(
            name=_text(data, "name"),
            model=_model(data),
            calibration=Calibration.from_dict(_object(data, "calibration")),
            operating_points=ops,
            default_operating_point=default,
            source=str(src["description"]),
            n_normal=int(src["n_normal"]),
            n_pneumonia=int(src["n_pneumonia"]),
            n_groups=int(src["n_groups"]),
            grouping=str(src.get("grouping", "film")),
            target_sensitivity=float(data.get("target_sensitivity", 0.95)),
            metrics={k: Estimate.from_dict(v) for k, v in data.get("metrics", {}).items()},
            cv_ece={k: float(v) for k, v in data["calibration"].get("cross_validated_ece", {}).items()},
            reliability=list(data.get("reliability", [])),
            roc=list(data.get("roc", [])),
            created=str(data.get("created", "")),
            sha256=digest,
            raw=data,
        )

    @classmethod
    def load(cls, path: str | Path, model: ModelInfo | None = None) -> SiteProfile:
        """Read a profile; with ``model``, also refuse one made for another model."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("format") == FORMAT and "sha256" not in data:
                # lunglens calibrate always writes it: without it an edit could not be told apart
                raise ValueError("it records no sha256 of its contents; make it again with lunglens calibrate")
            profile = cls.from_dict(data)
        except FileNotFoundError as exc:
            raise ProfileError(f"{path}: no such profile") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read the profile ({exc})") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # any shape a hand-edit leaves
            reason = (f"missing field {exc}" if isinstance(exc, KeyError) else
                      f"a field holds a value of the wrong kind ({exc})" if isinstance(exc, (TypeError, AttributeError))
                      else str(exc))
            raise ProfileError(f"{path}: not a usable site profile: {reason}") from exc
        if model is not None:
            profile.check_model(model)
        return profile


def uncalibrated(model: ModelInfo) -> SiteProfile:
    """sigmoid(logit) and a 0.5 threshold nobody measured: only for making a profile."""
    point = OperatingPoint("uncalibrated", 0.5, None, None, "raw model output, not calibrated")
    return SiteProfile(name="uncalibrated", model=model, calibration=Calibration("temperature", 1.0, 0.0),
                       operating_points={point.name: point}, default_operating_point=point.name,
                       source="no site data: uncalibrated", n_normal=0, n_pneumonia=0, n_groups=0,
                       grouping="film", target_sensitivity=0.0, metrics={}, cv_ece={}, reliability=[],
                       roc=[], created="", sha256="uncalibrated")


def _object(data: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """``data[key]``, which must be a JSON object: a hand-edit had surfaced as "'list' object
    has no attribute 'items'"."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"field {where}{key} is {'not a JSON object' if key in data else 'missing'}")
    return value


def _text(data: dict[str, Any], key: str, where: str = "") -> str:
    """``data[key]``, which must be non-empty text ("name": null had named a profile "None")."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {where}{key} is {'not text' if key in data else 'missing'}")
    return value


def _model(data: dict[str, Any]) -> ModelInfo:
    """The model a profile was made for. Its SHA-256 is compared with the model in use, so it
    must be one: a null there had crashed ``classify`` with a traceback."""
    model = _object(data, "model")
    sha256 = _text(model, "sha256", "model.")
    if len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise ValueError("field model.sha256 is not a SHA-256 (64 hexadecimal digits)")
    return ModelInfo(_text(model, "name", "model."), _text(model, "version", "model."), sha256)


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def make_profile(fit: Fit, model: ModelInfo, name: str, source: str, grouping: str,
                 default_operating_point: str = "high_sensitivity") -> SiteProfile:
    """A profile from a fit (the shipped default and ``lunglens calibrate`` both come here)."""
    profile = SiteProfile(
        name=name,
        model=model,
        calibration=fit.calibration,
        operating_points=fit.operating_points,
        default_operating_point=default_operating_point,
        source=source,
        n_normal=fit.n_normal,
        n_pneumonia=fit.n_pneumonia,
        n_groups=fit.n_groups,
        grouping=grouping,
        target_sensitivity=fit.target_sensitivity,
        metrics={"auc": fit.auc, "ece_before": fit.ece_before, "ece_after": fit.ece_after},
        cv_ece=fit.cv_ece,
        reliability=fit.reliability,
        roc=fit.roc,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return SiteProfile.from_dict({**profile.body()})
