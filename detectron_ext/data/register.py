"""Register the pipeline's COCO JSON files in detectron2's DatasetCatalog."""
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from .coco_format import class_names, image_root, load_coco


def register_coco_file(name: str, json_path) -> list[str]:
    """Register `name` (idempotent) and return its class names (category id order)."""
    json_path = str(Path(json_path).resolve())
    coco = load_coco(json_path)
    classes, root = class_names(coco), image_root(coco)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: load_coco_json(json_path, root, name))
    MetadataCatalog.get(name).set(thing_classes=classes, json_file=json_path, image_root=root,
                                  evaluator_type="coco")
    return classes
