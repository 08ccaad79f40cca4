"""LungLens inference core: study loading, preprocessing, the ONNX engine, the attribution map, CLI.

Nothing in this package imports Qt (an import-linter contract enforces it), so everything
the desktop app shows can be produced and tested headlessly.
"""

__version__ = "0.1.0"
