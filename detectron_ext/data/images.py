"""Image checks shared by every converter."""
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import DatasetError


def read_image_size(path) -> tuple[int, int]:
    """Decode the image fully and return (width, height); DatasetError if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "image file is missing")
    try:
        with Image.open(path) as im:
            im.load()  # full decode: catches truncated files that Image.open accepts
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(path, f"corrupt or unreadable image ({e})") from e


def check_box(path, box, width: int, height: int, what: str = "box") -> None:
    """Validate an absolute (x1, y1, x2, y2) box against the image size."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise DatasetError(path, f"{what} {list(box)} has zero or negative size")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise DatasetError(path, f"{what} {list(box)} lies outside the {width}x{height} image")
