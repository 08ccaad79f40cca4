"""The LungLens desktop application (PySide6). Importing this package does not import Qt."""
