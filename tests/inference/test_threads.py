"""The thread policy (inference/threads.py): one place sets ONNX Runtime's, BLAS's and the decoders' threads."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from inference import threads
from inference.engine import Engine
from tests.inference.test_cli import resources, use_tiny_model  # noqa: F401 -- fixtures


def test_on_two_cores_inference_and_decoding_get_a_core_each() -> None:
    assert threads.policy(cores=2) == threads.ThreadPolicy(intra_op=1, decoders=1, inter_op=1, spinning=False)
    assert threads.policy(cores=1).intra_op == 1
    assert threads.policy(cores=8) == threads.ThreadPolicy(intra_op=6, decoders=2)
    assert threads.policy(threads=3, cores=2).intra_op == 3  # --threads and the app's setting win


def test_threads_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        threads.policy(threads=0)


def test_the_session_never_spins_and_blas_runs_one_thread() -> None:
    ort = pytest.importorskip("onnxruntime")
    options = threads.ThreadPolicy(intra_op=2, decoders=1).session_options(ort)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"

    engine = Engine.load(provider="cpu")
    assert engine.threads == threads.policy()
    assert all(pool["num_threads"] == threads.BLAS_THREADS for pool in threadpool_info()
               if pool["user_api"] == "blas")
