"""Read a dataset given by its params.yaml entry into COCO train/test dicts."""
from pathlib import Path

from .coco_format import class_names as coco_class_names
from .coco_format import image_root as coco_image_root
from .coco_format import load_coco, make_coco
from .deeppcb import deeppcb
from .errors import DatasetError
from .images import check_box, read_image_size
from .synthetic import generate_synthetic
from .voc import gc10_det, neu_det, voc_folder

FORMATS = ("synthetic", "neu-det", "deeppcb", "gc10-det", "voc", "coco")


def _user_coco(path, classes):
    """A user's COCO JSON: keep `classes` (default: all, in id order); validate every image and box."""
    coco = load_coco(path)
    names = coco_class_names(coco)
    classes = list(classes) if classes else names
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DatasetError(path, f"class(es) {unknown} not among its categories {names}")
    root = Path(coco_image_root(coco) or Path(path).parent)
    id_to_name = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = {}
    for a in coco["annotations"]:
        if "bbox" not in a or len(a["bbox"]) != 4:
            raise DatasetError(path, f"annotation {a.get('id')} has no valid 'bbox' [x, y, w, h]")
        by_image.setdefault(a["image_id"], []).append(a)
    records = []
    for img in coco["images"]:
        w, h = read_image_size(root / img["file_name"])
        boxes = []
        for a in by_image.get(img["id"], []):
            name = id_to_name.get(a["category_id"])
            if name is None:
                raise DatasetError(path, f"annotation {a.get('id')}: unknown category id {a['category_id']}")
            if name not in classes:
                continue
            x, y, bw, bh = a["bbox"]
            box = (float(x), float(y), float(x + bw), float(y + bh))
            check_box(path, box, w, h, what=f"box of {name!r} in {img['file_name']}")
            boxes.append((*box, name))
        records.append({"file_name": img["file_name"], "width": w, "height": h, "boxes": boxes})
    return classes, records, root


def read_dataset(spec: dict, seed: int, work_dir="data"):
    """spec: one entry of params.yaml `datasets`. Returns (train_coco, test_coco)."""
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise DatasetError("params.yaml", f"dataset format {fmt!r} is not one of {FORMATS}")
    root = Path(spec.get("root", "")).expanduser()
    if fmt != "synthetic" and not root.exists():
        raise DatasetError(root, f"dataset root for format {fmt!r} does not exist")
    frac = float(spec.get("test_fraction", 0.2))
    if fmt == "synthetic":
        root = Path(work_dir) / "synthetic"
        classes, train, test = generate_synthetic(root, spec.get("num_train", 240), spec.get("num_test", 60),
                                                  spec.get("image_size", 128), seed)
    elif fmt == "neu-det":
        classes, train, test = neu_det(root)
    elif fmt == "deeppcb":
        classes, train, test = deeppcb(root, seed, frac)
    elif fmt == "gc10-det":
        classes, train, test = gc10_det(root, seed, frac)
    elif fmt == "voc":
        if not spec.get("classes"):
            raise DatasetError("params.yaml", "a 'voc' dataset needs its 'classes' list")
        classes, train, test = voc_folder(root, spec["classes"], spec.get("aliases"), seed, frac,
                                          spec.get("annotations", "Annotations"), spec.get("images", "JPEGImages"))
    else:  # coco
        classes, train, train_root = _user_coco(spec["train_json"], spec.get("classes"))
        classes, test, test_root = _user_coco(spec["test_json"], classes)
        if train_root != test_root:  # keep one image_root: make paths relative to their common parent
            raise DatasetError(spec["test_json"], f"train and test images must share one image root "
                                                  f"({train_root} vs {test_root}); set info.image_root")
        root = train_root
    desc = f"{fmt} from {root}"
    return make_coco(train, classes, root, desc + " (train)"), make_coco(test, classes, root, desc + " (test)")
