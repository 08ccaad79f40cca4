"""State the views observe. ``study_item`` is plain Python; the Qt models wrap it."""
