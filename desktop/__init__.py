"""The LungLens desktop application (PySide6). Importing this package does not import Qt."""

import inference  # noqa: F401,E402 - sets ONNX Runtime's telemetry opt-out before anything imports onnxruntime
