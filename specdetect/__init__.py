"""specdetect: detect generated images and videos by their Fourier spectrum.

Importing this package is cheap: torch, scikit-learn and matplotlib load only
inside the functions that need them.
"""

__version__ = "0.1.0"
