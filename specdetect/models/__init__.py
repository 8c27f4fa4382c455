"""Shipped model files, installed with the package (package data).

``default.skops`` here is, in a checkout, a symbolic link to the repository's
``models/default.skops`` (what ``make model`` writes); a built wheel carries
the file itself. :func:`specdetect.detect.default_model_path` resolves it.
"""
