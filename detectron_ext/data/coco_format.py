"""Build, write (atomically) and read the COCO-format JSON the whole pipeline exchanges.

A dataset is a dict in COCO's detection format. `file_name` is relative to
`info.image_root`, an absolute folder, so the JSON can be loaded by detectron2's
`load_coco_json` and by pycocotools alike.
"""
import contextlib
import ctypes
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import DatasetError, read_text


def atomic_write_text(path, text: str) -> None:
    """Write text so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    at_fdcwd, rename_exchange = -100, 2
    return renameat2 is not None and renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                                               rename_exchange) == 0


@contextlib.contextmanager
def staged_dir(path):
    """Yield an empty staging folder beside `path`; when the block succeeds the staging folder replaces
    `path` in one step (readers see the old folder or the complete new one, never a mix, and no stale
    file of an earlier run survives); when it fails `path` is untouched and the staging folder removed.
    Staging folders left by a killed run are removed on the next call."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
        elif not _exchange(tmp, path):  # not Linux: two renames, the old folder kept until the second
            old = tmp.with_name(tmp.name.replace(".tmp", ".old.tmp"))
            os.replace(path, old)
            os.replace(tmp, path)
            tmp = old
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_coco(records, class_names, image_root, description="") -> dict:
    """records: [{file_name, width, height, boxes: [(x1, y1, x2, y2, class_name), ...]}].

    Category ids are 1..K in the order of `class_names`; image ids 1..N in record order.
    """
    cat_id = {name: i + 1 for i, name in enumerate(class_names)}
    images, annotations = [], []
    for img_id, rec in enumerate(records, start=1):
        images.append({"id": img_id, "file_name": rec["file_name"],
                       "width": rec["width"], "height": rec["height"]})
        for x1, y1, x2, y2, name in rec["boxes"]:
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": img_id,
                                "category_id": cat_id[name], "bbox": [x1, y1, w, h],
                                "area": w * h, "iscrowd": 0})
    return {
        "info": {"description": description, "image_root": str(Path(image_root).resolve())},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }


def load_coco(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "COCO JSON file is missing")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DatasetError(path, f"malformed JSON ({e})") from e
    if not isinstance(data, dict):
        raise DatasetError(path, f"not a COCO detection file: the top level is a {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(path, f"not a COCO detection file: no '{key}' key")
    info = data.get("info", {})
    if not isinstance(info, dict) or not isinstance(info.get("image_root", ""), str):
        raise DatasetError(path, "'info' must be an object whose 'image_root', if any, is a folder path")
    return data


def class_names(coco: dict) -> list[str]:
    return [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]


def image_root(coco: dict) -> str:
    return coco.get("info", {}).get("image_root", "")
