"""Latency per image at batch 1 through ONNX Runtime on CPU: LungLens model vs DenseNet-121.

Prints median and p95 milliseconds with 1 and 2 intra-op threads, side by side in one run,
and the speed ratio. DenseNet-121 (the CheXNet / torchxrayvision architecture, random
weights, 1x224x224 input, the size CheXNet-style models read; LungLens reads its own size) is exported to ONNX in a temporary folder.

    .venv/bin/python bench/latency.py [--runs 200] [--densenet-runs 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import inference  # noqa: E402,F401 - ONNX Runtime's telemetry opt-out, before onnxruntime is imported
import onnxruntime as ort  # noqa: E402
MODEL = REPO / "resources" / "models" / "lunglens-cxr.onnx"


def export_densenet(folder: Path) -> Path:
    import torch

    from training.densenet import DenseNet121

    torch.manual_seed(0)
    path = folder / "densenet121.onnx"
    model = DenseNet121().eval()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 1, 224, 224),), str(path), input_names=["image"],
                          output_names=["logit"], dynamic_axes={"image": {0: "N"}, "logit": {0: "N"}},
                          opset_version=17, dynamo=False)
    return path


def time_model(path: Path, threads: int, runs: int, warmup: int = 5) -> tuple[float, float]:
    """(median, p95) milliseconds of one batch-1 run."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [1 if isinstance(d, str) else d for d in inp.shape]  # batch 1, the model's own input size
    name = inp.name
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--densenet-runs", type=int, default=40)
    args = p.parse_args(argv)
    if not MODEL.exists():
        print(f"missing {MODEL}: train or restore the bundled model first", file=sys.stderr)
        return 1
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, batch 1, float32; each model at its own "
          "input size (lunglens-cxr: its manifest's, DenseNet-121: 1x1x224x224)")
    with tempfile.TemporaryDirectory() as tmp:
        dense = export_densenet(Path(tmp))
        print(f"{'model':<16}{'threads':>8}{'median ms':>12}{'p95 ms':>10}{'MB':>8}")
        rows = {}
        for threads in (1, 2):
            for label, path, runs in (("lunglens-cxr", MODEL, args.runs), ("densenet-121", dense, args.densenet_runs)):
                med, p95 = time_model(path, threads, runs)
                rows[(label, threads)] = med
                print(f"{label:<16}{threads:>8}{med:>12.2f}{p95:>10.2f}{path.stat().st_size / 1e6:>8.1f}", flush=True)
        for threads in (1, 2):
            ratio = rows[("densenet-121", threads)] / rows[("lunglens-cxr", threads)]
            print(f"speed ratio (DenseNet-121 / lunglens-cxr median), {threads} thread(s): {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
