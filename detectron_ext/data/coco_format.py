"""Build and read the COCO-format JSON the whole pipeline exchanges.

A dataset is a dict in COCO's detection format. `file_name` is relative to
`info.image_root`, an absolute folder, so the JSON can be loaded by detectron2's
`load_coco_json` and by pycocotools alike.
"""
import json
from pathlib import Path

from .errors import DatasetError, read_text


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
