"""The analysis process's last few decoded studies: decoded once, shared, bounded, never stale."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from inference.decoded import DecodedStudies
from inference.errors import StudyLoadError
from inference.loaders import load_study


class CountingLoader:
    """The real loader, counting the decodes per file; ``gate`` (when set) holds every decode."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[Path] = []
        self.started = threading.Event()
        self.gate = gate

    def __call__(self, path: Path):
        self.calls.append(Path(path))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        return load_study(path)


@pytest.fixture
def films(tmp_path, kermany_samples) -> list[Path]:
    out = []
    for i, src in enumerate(kermany_samples["NORMAL"][:3]):
        dst = tmp_path / f"film{i}.jpeg"
        shutil.copy(src, dst)
        out.append(dst)
    return out


def test_a_film_asked_for_twice_is_decoded_once(films):
    loader = CountingLoader()
    cache = DecodedStudies(loader)
    first = cache.load(films[0])
    assert cache.load(films[0]) is first
    assert loader.calls == [films[0]]  # decoded once


def test_a_changed_file_is_decoded_again(films, kermany_samples):
    loader = CountingLoader()
    cache = DecodedStudies(loader)
    before = cache.load(films[0])
    shutil.copy(kermany_samples["PNEUMONIA"][0], films[0])
    st = os.stat(films[0])
    os.utime(films[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = cache.load(films[0])
    assert len(loader.calls) == 2
    assert after.pixels.tobytes() != before.pixels.tobytes()


def test_two_callers_at_once_share_one_decode(films):
    gate = threading.Event()
    loader = CountingLoader(gate)
    cache = DecodedStudies(loader)
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(cache.load(films[1]))) for _ in range(2)]
    threads[0].start()
    assert loader.started.wait(30)  # the first caller is decoding ...
    threads[1].start()  # ... when the second asks
    gate.set()
    for t in threads:
        t.join(30)
    assert len(got) == 2 and got[0] is got[1]
    assert loader.calls == [films[1]]


def test_a_failure_reaches_the_caller_and_is_not_kept(tmp_path):
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    loader = CountingLoader()
    cache = DecodedStudies(loader)
    for _ in range(2):
        with pytest.raises(StudyLoadError, match="cut.dcm"):
            cache.load(bad)
    assert len(loader.calls) == 2


def test_bounded_by_count_and_bytes(films):
    loader = CountingLoader()
    cache = DecodedStudies(loader, max_studies=2)
    for f in films:  # three films through a cache of two: the least recently used goes
        cache.load(f)
    cache.load(films[2])
    cache.load(films[0])
    assert loader.calls == [*films, films[0]]

    size = load_study(films[0]).pixels.nbytes
    loader = CountingLoader()
    too_small = DecodedStudies(loader, max_bytes=size - 1)  # a study larger than the bound is not kept
    too_small.load(films[0])
    too_small.load(films[0])
    assert loader.calls == [films[0], films[0]]


def test_two_links_to_one_file_are_two_studies_each_with_its_own_path(films, tmp_path):
    links = [tmp_path / "a.jpeg", tmp_path / "b.jpeg"]
    for link in links:
        link.symlink_to(films[0])
    cache = DecodedStudies(CountingLoader())
    assert [cache.load(link).path for link in links] == links
