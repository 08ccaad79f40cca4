"""LungLens inference core: study loading, preprocessing, the ONNX engine, the attribution map, CLI.

Nothing in this package imports Qt (an import-linter contract enforces it), so everything
the desktop app shows can be produced and tested headlessly.

ONNX Runtime's official wheels collect telemetry on Linux and macOS too since 1.29: a device
identifier and queued events under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``, sent to
``mobile.events.data.microsoft.com`` (the frozen app looked that name up ten times in 90 s).
LungLens never phones home, so the opt-out is set here, before anything can import
``onnxruntime``: every module of the app, the CLI and the analysis process imports this
package first, and child processes inherit the environment. It is read once, when ONNX
Runtime initializes, so it must be set before then (``tests/inference/test_no_telemetry.py``).
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
