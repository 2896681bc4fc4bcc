"""Detectron2 extensions for incremental surface-defect detection."""
from PIL import Image as _Image

# detectron2 v0.6 uses Pillow constants removed in Pillow 10 (Image.LINEAR as a default argument
# at import time): alias them so the package also works where Pillow < 10 cannot be installed
# (e.g. Python 3.12). Must run before detectron2.data is imported.
for _old, _new in (("LINEAR", "BILINEAR"), ("ANTIALIAS", "LANCZOS"), ("CUBIC", "BICUBIC")):
    if _old not in vars(_Image):  # (Pillow 9 serves them through a warning __getattr__)
        setattr(_Image, _old, getattr(_Image, _new))
