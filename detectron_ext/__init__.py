"""Detectron2 extensions for incremental surface-defect detection."""
import warnings as _warnings

from PIL import Image as _Image

# detectron2 v0.6 under torch 2.x warns where no user can act: torch.jit.script's deprecation (on
# importing detectron2) and torch.meshgrid's indexing argument (its anchor grid); both are silenced here,
# before detectron2 is imported (docs/maintenance.md: detectron2 v0.6 work-arounds)
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
_warnings.filterwarnings("ignore", message=r"torch\.meshgrid: in an upcoming release", category=UserWarning)

# detectron2 v0.6 uses Pillow constants removed in Pillow 10 (Image.LINEAR as a default argument
# at import time): alias them so the package also works where Pillow < 10 cannot be installed
# (e.g. Python 3.12). Must run before detectron2.data is imported.
for _old, _new in (("LINEAR", "BILINEAR"), ("ANTIALIAS", "LANCZOS"), ("CUBIC", "BICUBIC")):
    if _old not in vars(_Image):  # (Pillow 9 serves them through a warning __getattr__)
        setattr(_Image, _old, getattr(_Image, _new))
