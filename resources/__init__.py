"""LungLens's bundled files -- the model, its manifest and card, icons, samples -- shipped in
the wheel as the package ``lunglens_resources`` so that an installed LungLens finds them with
``importlib.resources`` (:func:`inference.paths.resources_dir`). No code lives here."""
