import inference  # noqa: F401 - sets ONNX Runtime's telemetry opt-out before anything imports onnxruntime
