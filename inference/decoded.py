"""The last few decoded studies, so a file the reader opens is not decoded a second time.

In the app one process decodes: the analysis process, for the batch pipeline and for the
study on screen alike. Both ask :class:`DecodedStudies` for a path; a study decoded for one
is there for the other (the reader opens the study just analysed, or one the pipeline is
about to reach), and a path asked for by both at once is decoded by the first caller while
the second waits for it. A file changed on disk since it was decoded is decoded again (the
key holds its size and modification time).

The cache is bounded by a count and by bytes, so it never holds more than a few films: a
study larger than the byte bound is decoded and handed on, not kept.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from .study import Study

# A few films: the one on screen, the ones next to it in the batch. A 3,000 x 3,000 film is
# 36 MB of float32, so the byte bound holds about seven of the largest usual ones.
MAX_STUDIES = 8
MAX_BYTES = 256 * 1024 * 1024

# (absolute path as asked, size, mtime in ns). Not resolved: two links to one file are two
# studies to the list and the worklist, and each gets a Study that carries its own path.
_Key = tuple[str, int, int]


class _Decoding:
    """A decode in progress, which later callers for the same file wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.study: Study | None = None
        self.error: BaseException | None = None


class DecodedStudies:
    """``load(path)``: the decoded study, from the cache or from ``loader`` (thread-safe)."""

    def __init__(self, loader: Callable[[Path], Study], max_studies: int = MAX_STUDIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self._loader = loader
        self._max_studies = max_studies
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._studies: OrderedDict[_Key, Study] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._decoding: dict[_Key, _Decoding] = {}

    def load(self, path: Path) -> Study:
        """The study at ``path``; raises what ``loader`` raises (a waiting caller gets the same error)."""
        key = _key(path)
        if key is None:  # cannot stat it: let the loader say why, uncached
            return self._loader(path)
        with self._lock:
            study = self._studies.get(key)
            if study is not None:
                self._studies.move_to_end(key)
                return study
            pending = self._decoding.get(key)
            if pending is None:
                mine = self._decoding[key] = _Decoding()
        if pending is not None:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            assert pending.study is not None
            return pending.study
        try:
            mine.study = self._loader(path)
            self._keep(key, mine.study)
            return mine.study
        except BaseException as err:
            mine.error = err
            raise
        finally:
            with self._lock:
                del self._decoding[key]
            mine.done.set()

    def _keep(self, key: _Key, study: Study) -> None:
        size = int(study.pixels.nbytes)
        if size > self._max_bytes:
            return
        with self._lock:
            self._studies[key] = study
            self._bytes += size
            while len(self._studies) > self._max_studies or self._bytes > self._max_bytes:
                _, old = self._studies.popitem(last=False)
                self._bytes -= int(old.pixels.nbytes)


def _key(path: Path) -> _Key | None:
    try:
        st = os.stat(path)
        return str(Path(path).absolute()), st.st_size, st.st_mtime_ns
    except (OSError, ValueError):
        return None
