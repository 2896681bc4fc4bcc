"""Image and box checks shared by every converter: each image is decoded in full once, as detectron2
will read it (Pillow, EXIF orientation applied), and every reason it cannot be used is a DatasetError."""
import contextlib
import hashlib
import io
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

# Pillow modes that detectron2's read_image converts to RGB faithfully; 16/32-bit integer and float
# modes are clipped to 255 by that conversion (a 16-bit PNG becomes all white), so they are refused.
READABLE_MODES = {"1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "PA", "YCbCr", "RGBX", "La", "RGBa"}
EXIF_ORIENTATION = 0x0112
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # rotated by 90 or 270 degrees: width and height swap


@dataclass(frozen=True)
class ImageInfo:
    width: int    # as detectron2 reads it (after the EXIF orientation)
    height: int
    mode: str     # Pillow mode: L and RGB are usual; others are reported by the split stage
    rotated: bool  # an EXIF orientation other than 1
    digest: str   # sha1 of the file: identical images under two names are found by it


@contextlib.contextmanager
def _native_stderr():
    """Capture what C libraries write to file descriptor 2 (libjpeg's warnings) during the block."""
    captured = {"text": ""}
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            captured["text"] = f.read().decode(errors="replace").strip()


def _libjpeg_warning(data: bytes) -> str:
    """libjpeg's first warning on decoding `data` ("Corrupt JPEG data: ..."), or "" when it decodes clean.
    Pillow decodes corrupt entropy-coded data into garbage without a word; libjpeg (via OpenCV) says so."""
    with _native_stderr() as err:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        return err["text"] or "libjpeg cannot decode it"
    return err["text"].splitlines()[0].strip() if err["text"] else ""


def inspect_image(path) -> ImageInfo:
    """Decode the image fully (decoder warnings are errors; JPEG data also by libjpeg, whose warnings
    Pillow drops) and return its size as detectron2 reads it."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(path, "is a folder, not an image file")
    if not path.is_file():
        raise DatasetError(path, "image file is missing")
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # DecompressionBombWarning, corrupt EXIF, ...
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # full decode: catches truncated files that Image.open accepts
                fmt, mode, (w, h) = im.format, im.mode, im.size
                orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except Image.DecompressionBombError as e:
        raise DatasetError(path, f"image too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as e:
        raise DatasetError(path, f"corrupt or unreadable image ({type(e).__name__}: {e})") from None
    if data[:2] == b"\xff\xd8":  # JPEG data, whatever Pillow calls it (cameras' MPO too)
        problem = _libjpeg_warning(data)
        if problem:
            raise DatasetError(path, f"corrupt JPEG data ({problem})")
    if mode not in READABLE_MODES:
        raise DatasetError(path, f"{mode} image (16/32-bit or float): detectron2 would read it clipped to "
                                 f"8 bits; convert it to 8-bit grey or RGB")
    if orientation in TRANSPOSED_ORIENTATIONS:
        w, h = h, w
    return ImageInfo(w, h, mode, orientation not in (1, None), hashlib.sha1(data).hexdigest())


def check_box(path, box, width: int, height: int, what: str = "box") -> None:
    """Validate an absolute (x1, y1, x2, y2) box against the image size."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
        raise DatasetError(path, f"{what} {list(box)} has a coordinate that is not a finite number")
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise DatasetError(path, f"{what} {list(box)} has zero or negative size")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise DatasetError(path, f"{what} {list(box)} lies outside the {width}x{height} image")


def image_record(image, root, boxes, source, stated_size=None) -> dict:
    """The record of one image (file_name relative to the dataset root, its size as detectron2 reads it)
    after checking that it lies inside the root, decodes cleanly, has the size its annotation states
    (`stated_size` (w, h), if any) and holds every box; `source` is the annotation file that named it."""
    image = Path(os.path.abspath(image))
    root = Path(os.path.abspath(root))
    if not image.is_relative_to(root):
        raise DatasetError(source, f"image {image} lies outside the dataset root {root}")
    info = inspect_image(image)
    if stated_size and all(stated_size) and tuple(stated_size) != (info.width, info.height):
        rotated = " after its EXIF orientation" if info.rotated else ""
        raise DatasetError(source, f"states the size {stated_size[0]:g}x{stated_size[1]:g}, but {image.name} "
                                   f"reads as {info.width}x{info.height}{rotated}")
    for b in boxes:
        check_box(source, b[:4], info.width, info.height, what=f"box of {b[4]!r}")
    return {"file_name": str(image.relative_to(root)), "width": info.width, "height": info.height,
            "boxes": list(boxes), "source": str(source), "mode": info.mode, "rotated": info.rotated,
            "digest": info.digest}
