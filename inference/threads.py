"""The thread policy: how many threads each kind of work gets, set here and nowhere else.

A study costs three kinds of CPU work that compete for the same cores: ONNX Runtime's
inference, numpy's matrix work (the input gate's distances and blurs, through the BLAS
library numpy was built with) and decoding (in the decode workers of
:mod:`inference.loaders.budget`, one process per decoding thread). Left at their defaults,
ONNX Runtime and OpenBLAS each start one thread per core and their idle threads spin-wait
for work: on 2 cores they took the CPU from each other and from the decoders, and the gate
alone went from 21 to 91 ms a study. The figures behind the values below are in
``bench/README.md`` ("Thread policy"), measured with ``bench/batch.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

#: numpy's BLAS calls here are small (vectors of a few thousand numbers, model-input images):
#: one thread does them fastest, and a pool's idle workers spin against everything else.
BLAS_THREADS = 1


@dataclass(frozen=True)
class ThreadPolicy:
    """The threads of one process that runs the engine.

    ``intra_op`` is ONNX Runtime's thread count for one inference, ``inter_op`` for
    independent nodes (the model is one chain: 1), ``spinning`` whether its idle threads
    spin-wait (never: on few cores they starve the decoders and the window), ``decoders``
    how many studies are decoded at the same time ahead of inference.
    """

    intra_op: int
    decoders: int
    inter_op: int = 1
    spinning: bool = False

    def session_options(self, ort: Any) -> Any:
        """ONNX Runtime ``SessionOptions`` with these threads (``ort`` is the module)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op
        options.inter_op_num_threads = self.inter_op
        spin = "1" if self.spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return options


def policy(threads: int | None = None, cores: int | None = None) -> ThreadPolicy:
    """The policy for this machine. ``threads`` (``--threads``, the app's setting) fixes ONNX
    Runtime's intra-op threads; by default it gets one thread per core beyond the one the
    decoding needs, at least one: inference and decoding then each have a core of their own
    instead of taking turns on all of them. ``cores`` defaults to the CPUs this process may use."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    cores = cores or _usable_cores()
    decoders = 1 if cores <= 4 else 2
    return ThreadPolicy(intra_op=threads or max(1, cores - decoders), decoders=decoders)


_blas_limit: Any = None  # the limiter in force, kept so that it is never collected


def limit_blas() -> None:
    """Hold the BLAS libraries loaded in this process to :data:`BLAS_THREADS` each (every
    process that runs the engine or the window calls this; each call also catches a library
    loaded since the last, e.g. scipy's own OpenBLAS)."""
    global _blas_limit
    _blas_limit = threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
