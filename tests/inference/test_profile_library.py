"""The per-user profile folder: what is kept, how privately, what is refused, what the app falls back to."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from inference.paths import models_dir
from inference.plots import plot_paths
from inference.profile import ProfileError, SiteProfile
from inference.profile_library import file_stem, import_profile, keep, kept_profiles, load_active
from inference.userdirs import profiles_dir, write_private
from tests.fixtures.profiles import changed_profile

SHIPPED = models_dir() / "lunglens-cxr.profile.json"


@pytest.fixture
def shipped() -> SiteProfile:
    return SiteProfile.load(SHIPPED)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folder_is_private_and_kept_files_are_too(shipped: SiteProfile, private_data_dir: Path) -> None:
    folder = profiles_dir()
    assert folder == private_data_dir / "profiles" and mode(folder) == 0o700
    path = keep(shipped.chosen("Clinic A: 2024", "balanced"))
    assert path == folder / "clinic-a-2024.profile.json"
    plots = plot_paths(path)
    for written in (path, plots.roc, plots.reliability):
        assert written.is_file() and mode(written) == 0o600
    again = SiteProfile.load(path, shipped.model)
    assert (again.name, again.default_operating_point) == ("Clinic A: 2024", "balanced")
    assert again.sha256 != shipped.sha256  # another name and default: another profile
    # The same profile again reuses its file; another one of the same name gets a name of its own.
    assert keep(again) == path
    other = keep(shipped.chosen("Clinic A: 2024", "high_sensitivity"))
    assert other == folder / "clinic-a-2024-2.profile.json"
    assert {k.path for k in kept_profiles()[0]} == {path, other}


def test_an_imported_profile_is_copied_byte_for_byte(shipped: SiteProfile, tmp_path: Path) -> None:
    source = tmp_path / "usb" / "Hôpital Nord.profile.json"
    source.parent.mkdir()
    source.write_bytes(SHIPPED.read_bytes())
    kept = import_profile(source, shipped.model)
    assert kept.path.parent == profiles_dir() and kept.path.name == "hôpital-nord.profile.json"
    assert kept.path.read_bytes() == SHIPPED.read_bytes()  # so its hash is the one results record
    assert SiteProfile.load(kept.path).sha256 == shipped.sha256
    assert mode(kept.path) == 0o600 and plot_paths(kept.path).roc.is_file()
    copy = tmp_path / "usb" / "clinic copy.json"  # the same profile under another name: one entry
    copy.write_bytes(SHIPPED.read_bytes())
    assert import_profile(copy, shipped.model).path == kept.path
    assert [k.path for k in kept_profiles()[0]] == [kept.path]


def test_another_models_profile_and_garbage_are_refused_and_nothing_is_kept(shipped: SiteProfile,
                                                                             tmp_path: Path) -> None:
    stale = changed_profile(SHIPPED, tmp_path / "stale.profile.json",
                            model={"name": "lunglens-cxr", "version": "0.9.0", "sha256": "9" * 64})
    with pytest.raises(ProfileError, match="made for model lunglens-cxr 0.9.0"):
        import_profile(stale, shipped.model)
    garbage = tmp_path / "notes.json"
    for text in ('{"hello": 1}', "[1, 2]", '"x"'):  # a list or a string had raised AttributeError
        garbage.write_text(text)
        with pytest.raises(ProfileError, match="not a usable site profile"):
            import_profile(garbage, shipped.model)
    assert list(profiles_dir().iterdir()) == []
    write_private(profiles_dir() / "hand-edited.profile.json", b"[1, 2]")  # Settings lists the rest, says why
    kept, problems = kept_profiles()
    assert kept == [] and len(problems) == 1 and "a JSON list, not an object" in problems[0]


def test_the_active_profile_falls_back_to_the_shipped_one_saying_why(shipped: SiteProfile, tmp_path: Path) -> None:
    assert load_active("", shipped, shipped.model) == (shipped, "")
    kept = keep(shipped.chosen("Clinic", "balanced"))
    profile, warning = load_active(str(kept), shipped, shipped.model)
    assert profile.name == "Clinic" and warning == ""
    kept.unlink()
    profile, warning = load_active(str(kept), shipped, shipped.model)
    assert profile is shipped
    assert warning.startswith("The site profile chosen in Settings cannot be used (") and "no such profile" in warning
    assert warning.endswith("the shipped default is used instead.")
    other = changed_profile(SHIPPED, tmp_path / "other.profile.json",
                            model={**json.loads(SHIPPED.read_text())["model"], "sha256": "9" * 64})
    profile, warning = load_active(str(other), shipped, shipped.model)
    assert profile is shipped and "made for model" in warning


def test_file_stems_are_safe(shipped: SiteProfile) -> None:
    assert file_stem("Clinic A / X-ray room 2") == "clinic-a-x-ray-room-2"
    assert file_stem("../../etc") == "etc" and file_stem("///") == "site-profile"
    with pytest.raises(ValueError, match="unknown operating point 'nope'"):
        shipped.chosen("x", "nope")


@pytest.mark.parametrize("writer", ["save", "write_private"])
def test_a_write_stopped_before_its_rename_keeps_the_old_file_and_leaves_nothing_beside_it(
        writer: str, shipped: SiteProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clinic.profile.json"
    path.write_text("the old profile")

    def interrupted(self: Path, target: Path) -> None:
        raise KeyboardInterrupt  # Ctrl+C or SIGTERM between the write and the rename

    monkeypatch.setattr(Path, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        if writer == "save":
            shipped.save(path)
        else:
            write_private(path, shipped.to_json().encode())
    assert path.read_text() == "the old profile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinic.profile.json"]
