"""The site profiles a user keeps: imported files and the app's own calibrations.

The app never applies a profile from where it was found (a USB stick, a share that goes
away, a download folder): importing checks that it was made for the model in use and copies
it into a private per-user folder (:func:`inference.userdirs.profiles_dir`, 0700, files
0600), so the profile the settings name as active is still there, unchanged, at the next
start. The copy is byte for byte: its hash is the one every result records, so it must be
the hash of the file the clinic made. The ROC and reliability plots are drawn beside each
kept profile, as ``lunglens calibrate`` draws them beside its output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .plots import profile_stem, write_plots
from .prediction import ModelInfo
from .profile import SUFFIX, ProfileError, SiteProfile
from .userdirs import profiles_dir, write_private


@dataclass(frozen=True)
class KeptProfile:
    """A profile in the per-user folder, and the file it was read from."""

    path: Path
    profile: SiteProfile


def file_stem(name: str) -> str:
    """A file name stem for a profile's name: letters, digits, "-" and "_" only ("site-profile" if none)."""
    stem = re.sub(r"[^\w-]+", "-", name, flags=re.UNICODE).strip("-_").lower()[:60]
    return stem or "site-profile"


def keep(profile: SiteProfile, stem: str | None = None) -> Path:
    """Save a profile made in the app (and its plots) into the per-user folder; returns its path."""
    return _keep(profile, profile.to_json().encode("utf-8"), stem)


def import_profile(source: str | Path, model: ModelInfo) -> KeptProfile:
    """Copy a profile file into the per-user folder, refusing (:class:`ProfileError`, with the
    reason in words) one that cannot be read or was made for another model."""
    source = Path(source)
    profile = SiteProfile.load(source)
    try:
        profile.check_model(model)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from exc  # which file, as every other refusal says
    try:
        data = source.read_bytes()
    except OSError as exc:  # it was readable a moment ago: a share that went away
        raise ProfileError(f"{source}: cannot read the profile ({exc.strerror or exc})") from exc
    return KeptProfile(_keep(profile, data, profile_stem(source)), profile)


def kept_profiles() -> tuple[list[KeptProfile], list[str]]:
    """Every profile in the per-user folder (oldest first), and why any file there could not be read."""
    kept, problems = [], []
    for path in sorted(profiles_dir().glob(f"*{SUFFIX}")):
        try:
            kept.append(KeptProfile(path, SiteProfile.load(path)))
        except ProfileError as exc:
            problems.append(str(exc))
    kept.sort(key=lambda k: (k.profile.created, k.path.name))
    return kept, problems


def load_active(path: str, shipped: SiteProfile | None, model: ModelInfo | None) -> tuple[SiteProfile | None, str]:
    """The profile the settings name (``path``; "" is the shipped one), and "" -- or, when that
    file is gone or refused, the shipped profile and a warning saying so (the app must still
    analyse, but nobody may believe their own profile is in use when it is not)."""
    if not path:
        return shipped, ""
    try:
        return SiteProfile.load(path, model), ""
    except ProfileError as exc:
        instead = "the shipped default is used instead" if shipped is not None else "no profile is in use"
        return shipped, f"The site profile chosen in Settings cannot be used ({exc}); {instead}."


def _keep(profile: SiteProfile, data: bytes, stem: str | None) -> Path:
    """Write a profile file's bytes under a free name (the same profile again reuses its file)
    and draw its plots beside it, all three private to the user from their creation."""
    path = _free_path(profiles_dir(), file_stem(stem or profile.name), profile.sha256)
    write_private(path, data)
    write_plots(profile, path, write_private)
    return path


def _free_path(folder: Path, stem: str, sha256: str) -> Path:
    """The file already holding this profile, under any name (imported again from a copy named
    otherwise, it had been listed twice); else ``<stem>.profile.json``, or
    ``<stem>-2.profile.json``... when another profile has that name."""
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            if SiteProfile.load(path).sha256 == sha256:
                return path
        except ProfileError:
            continue  # listed in Settings with its reason (kept_profiles)
    n = 1
    while True:  # a name taken by another profile, or a damaged file, keeps it; this one takes another
        path = folder / f"{stem if n == 1 else f'{stem}-{n}'}{SUFFIX}"
        if not path.exists():
            return path
        n += 1
