"""DeepPCB: `x1 y1 x2 y2 type` text boxes (spaces or commas), trainval.txt / test.txt split files."""
import os
import re
from pathlib import Path

from tqdm import tqdm

from .errors import DatasetError, read_text
from .holdout import seeded_split
from .images import image_record

DEEPPCB_CLASSES = ["open", "short", "mousebite", "spur", "copper", "pin-hole"]


def read_deeppcb_boxes(txt_path):
    txt_path = Path(txt_path)
    if not txt_path.is_file():
        raise DatasetError(txt_path, "annotation file is missing")
    boxes = []
    for lineno, line in enumerate(read_text(txt_path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f for f in re.split(r"[\s,]+", line.strip()) if f]
        if len(fields) != 5:
            raise DatasetError(txt_path, f"line {lineno}: expected 'x1 y1 x2 y2 type', got {line.strip()!r}")
        try:
            x1, y1, x2, y2, t = (float(f) for f in fields)
        except ValueError:
            raise DatasetError(txt_path, f"line {lineno}: non-numeric field in {line.strip()!r}") from None
        if not t.is_integer() or not 1 <= t <= len(DEEPPCB_CLASSES):
            raise DatasetError(txt_path, f"line {lineno}: class type {fields[4]} is not one of 1..6 "
                               f"({', '.join(DEEPPCB_CLASSES)})")
        t = int(t)
        boxes.append((x1, y1, x2, y2, DEEPPCB_CLASSES[t - 1]))
    return boxes


def _read_split_file(split_file: Path, root: Path):
    pairs, seen = [], {}
    for lineno, line in enumerate(read_text(split_file).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(split_file, f"line {lineno}: expected '<image> <annotation>', got {line.strip()!r}")
        for field, what in zip(fields, ("image", "annotation")):
            if field in seen:
                raise DatasetError(split_file, f"line {lineno}: {what} {field} is listed again (first on line "
                                               f"{seen[field]})")
            seen[field] = lineno
        image, ann = fields
        # the split lists NNNNNNNN.jpg; the file on disk is NNNNNNNN_test.jpg
        p = root / image
        on_disk = p.with_name(p.stem + "_test" + p.suffix)
        if not on_disk.exists() and p.exists():
            on_disk = p
        if not on_disk.exists():
            raise DatasetError(split_file, f"line {lineno}: image {image} (as {on_disk.name}) is absent")
        for path, what in ((on_disk, "image"), (root / ann, "annotation")):
            if not os.path.abspath(path).startswith(os.path.abspath(root) + os.sep):
                raise DatasetError(split_file, f"line {lineno}: {what} {path} lies outside the dataset root {root}")
        pairs.append((on_disk, root / ann))
    return pairs


def deeppcb(root, seed=0, test_fraction=0.2):
    """root = the PCBData folder. Uses test.txt when present; otherwise splits trainval.txt by
    seeded_split (sorted lines, random.Random(seed) shuffle, first round(fraction*n) lines = test)."""
    root = Path(root)
    trainval = root / "trainval.txt"
    if not trainval.is_file():
        raise DatasetError(trainval, "DeepPCB split file is missing (is root the PCBData folder?)")
    train_pairs = _read_split_file(trainval, root)
    test_file = root / "test.txt"
    if test_file.is_file():
        test_pairs = _read_split_file(test_file, root)
    else:
        train_pairs, test_pairs = seeded_split(train_pairs, test_fraction, seed)

    def records(pairs, desc):
        out = []
        for image, ann in tqdm(pairs, desc=f"reading DeepPCB {desc}", unit="img", mininterval=1.0):
            out.append(image_record(image, root, read_deeppcb_boxes(ann), source=ann))
        return out

    return list(DEEPPCB_CLASSES), records(train_pairs, "train"), records(test_pairs, "test")
