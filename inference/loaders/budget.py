"""The decode budget: every codec call runs in a worker process under a time and memory ceiling.

Native decoders (libjpeg, OpenJPEG, CharLS, Pillow's zlib and libtiff) allocate what a
stream declares and can loop for minutes, and nothing stops them from a Python thread. A
worker process can be stopped: its address space is capped (RLIMIT_AS) so an allocation past
the ceiling fails inside the decoder, and past the deadline it is killed. Its stdout goes to
/dev/null and its stderr to a file, so a decoder's panic message or printed warning is
logged at debug level and never reaches the terminal or the JSON output.

The header checks (codestream.py) refuse every contradiction they can see first; the
budget is for what they cannot see. Workers are forked, kept and reused, one per thread
decoding at the same time: a fork costs no imports and works where multiprocessing does
not (the app's analysis process is daemonic, which may not start children). The cost per
study and the alternatives are measured in bench/README.md, "Decode budget". Without
fork (Windows) decoding runs in-process, after the same header checks.
"""

from __future__ import annotations

import atexit
import gc
import logging
import mmap
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from inference.errors import DecodeBudgetError, PixelDecodeError, StudyLoadError

# One image may take this long and this much memory beyond the worker's own, to decode.
# The largest real films (a 7,000 x 8,600 px film digitised at 50 microns, a 400-megapixel
# 8-bit image within the pixel limit) decode in a few seconds and under 1 GB.
DECODE_SECONDS = 20.0
DECODE_MEMORY = 1 << 30
# Decoded pixels up to this size come back through shared memory (a 4,000² 16-bit film).
SHARED_BYTES = 32 << 20

T = TypeVar("T")
log = logging.getLogger(__name__)
_CAN_FORK = hasattr(os, "fork") and hasattr(os, "waitpid")


@dataclass
class _Worker:
    pid: int
    conn: Connection
    shared: mmap.mmap  # where the worker leaves pixels that fit: a tenth of the pipe's cost

    @classmethod
    def start(cls) -> _Worker:
        ours, theirs = Pipe()
        shared = mmap.mmap(-1, SHARED_BYTES)
        pid = os.fork()
        if pid == 0:
            try:  # the worker: never return into the caller's code
                ours.close()
                _serve(theirs, shared)
            finally:
                os._exit(0)
        theirs.close()
        return cls(pid, ours, shared)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[tuple[Any, ...], str] | None:
        """The worker's reply and what it printed, or None past the deadline."""
        self.conn.send((fn, args))
        if not self.conn.poll(DECODE_SECONDS):
            return None
        sizes, in_shared = pickle.loads(self.conn.recv_bytes())
        head = self.conn.recv_bytes()
        buffers, offset = [], 0
        view = memoryview(self.shared)
        for size in sizes:
            buf = bytearray(size)
            if in_shared:
                buf[:] = view[offset : offset + size]
                offset += size
            else:
                self.conn.recv_bytes_into(buf)
            buffers.append(buf)
        view.release()
        return pickle.loads(head, buffers=buffers)

    def stop(self) -> int:
        """Kill and reap the worker; its wait status."""
        self.shared.close()
        self.conn.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return os.waitpid(self.pid, 0)[1]


_idle: list[_Worker] = []
_lock = threading.Lock()


def run(path: Path, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker under the budget; it may raise StudyLoadError subclasses.

    Over the deadline or the memory ceiling: DecodeBudgetError; a worker that dies (a
    decoder crash): PixelDecodeError. ``fn`` must be a module-level function.
    """
    if not _CAN_FORK:
        return fn(*args)
    with _lock:
        worker = _idle.pop() if _idle else None
    worker = worker or _Worker.start()
    try:
        answer = worker.call(fn, args)
    except (EOFError, OSError) as err:
        status = worker.stop()
        log.debug("decode worker for %s died (wait status %#x)", path, status)
        raise PixelDecodeError(path, "the decoder crashed on this file") from err
    except BaseException:  # interrupted mid-call: the worker's state is unknown
        worker.stop()
        raise
    if answer is None:
        worker.stop()
        raise DecodeBudgetError(path, f"decoding took longer than {DECODE_SECONDS:.0f} s: refused")
    with _lock:
        _idle.append(worker)
    reply, chatter = answer
    if chatter:
        log.debug("decoder output for %s:\n%s", path, chatter)
    return _unpack(path, reply)


def prestart() -> None:
    """Fork one idle worker now. A fork copies the caller's page tables and makes every page it
    later writes a copy-on-write fault, so a big process (the window, with Qt loaded and a film
    on screen) stalls its GUI thread when it forks; forked early, while small, it never has to."""
    if not _CAN_FORK:
        return
    with _lock:
        if _idle:
            return
    worker = _Worker.start()
    with _lock:
        _idle.append(worker)


def check_memory(path: Path, nbytes: int, what: str) -> None:
    """Refuse before decoding when the pixels alone would not fit in the budget."""
    if nbytes > DECODE_MEMORY:
        raise DecodeBudgetError(
            path, f"{what} needs {nbytes / 2**20:,.0f} MB to decode, more than the "
            f"{DECODE_MEMORY / 2**20:,.0f} MB one image may use: refused",
        )


def _unpack(path: Path, reply: tuple[Any, ...]) -> Any:
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "error":
        raise reply[1](path, reply[2])
    if kind == "memory":
        raise DecodeBudgetError(
            path, f"decoding needs more than the {DECODE_MEMORY / 2**20:,.0f} MB one image may use: refused"
        )
    log.debug("decoder failed on %s: %s", path, reply[1])
    raise PixelDecodeError(path, f"the decoder failed on this file ({reply[1].split(':')[0]})")


def _serve(conn: Connection, shared: mmap.mmap) -> None:
    """The worker's loop: calls until the caller closes its end (or dies)."""
    gc.freeze()  # the inherited heap stays shared: collections skip it instead of copying it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    keep = conn.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, _max_fd())
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    chatter = tempfile.TemporaryFile()
    os.dup2(chatter.fileno(), 2)
    # Python-level output too, whatever sys.stdout and sys.stderr were (a test's capture).
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 -- lives as long as the worker
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    _limit_memory()
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        reply = _call(fn, args)
        sys.stdout.flush()
        sys.stderr.flush()
        chatter.seek(0)
        text = chatter.read().decode("utf-8", "replace").strip()
        chatter.seek(0)
        chatter.truncate()
        _send(conn, shared, (reply, text))
        del reply


def _send(conn: Connection, shared: mmap.mmap, answer: tuple[tuple[Any, ...], str]) -> None:
    """The answer pickled, its arrays out of band: through ``shared`` if they fit, else piped."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(answer, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    sizes = [r.nbytes for r in raws]
    in_shared = sum(sizes) <= len(shared)
    if in_shared:  # written before anything is sent: the caller reads it once told
        offset = 0
        for raw in raws:
            shared[offset : offset + raw.nbytes] = raw
            offset += raw.nbytes
    conn.send_bytes(pickle.dumps((sizes, in_shared)))
    conn.send_bytes(head)
    if not in_shared:
        for raw in raws:
            conn.send_bytes(raw)


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except StudyLoadError as err:
        return ("error", type(err), err.reason)
    except MemoryError:
        return ("memory",)
    except BaseException as err:  # noqa: BLE001 -- anything a decoder raises, Rust panics included
        return ("failed", f"{type(err).__name__}: {err}"[:500])


def _limit_memory() -> None:
    """Cap the address space at what the worker maps now plus DECODE_MEMORY (Linux)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = mapped + DECODE_MEMORY
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        log.debug("no address-space limit for decode workers here: the deadline alone applies")


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 4096


def _stop_workers() -> None:
    """At exit: reap the idle workers, so that they are accounted to this process (its peak
    memory as the shell's ``time`` reports it includes theirs) and never linger."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.stop()


def _forget_workers() -> None:
    """A forked child (a worker, or anything else) does not own its parent's workers."""
    global _idle, _lock
    _idle = []
    _lock = threading.Lock()


if _CAN_FORK:
    os.register_at_fork(after_in_child=_forget_workers)
    atexit.register(_stop_workers)
