"""Read a dataset given by its params.yaml entry into COCO train/test dicts."""
import math
from pathlib import Path

from tqdm import tqdm

from .coco_format import class_names as coco_class_names
from .coco_format import image_root as coco_image_root
from .coco_format import load_coco, make_coco
from .checks import check_records, input_report
from .deeppcb import deeppcb
from .errors import DatasetError
from .images import image_record
from .synthetic import generate_synthetic
from .voc import gc10_det, neu_det, voc_folder

FORMATS = ("synthetic", "neu-det", "deeppcb", "gc10-det", "voc", "coco")


def _finite(v) -> bool:
    """A finite number once read as a float (an integer too large for a float is not)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _entries(path, coco, key, fields):
    """COCO's list `key`, each entry a dict whose `fields` (name -> type) are present and not null."""
    entries = coco[key]
    if not isinstance(entries, list):
        raise DatasetError(path, f"'{key}' is not a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise DatasetError(path, f"{key}[{i}] is not an object")
        for f, t in fields.items():
            if e.get(f) is None:
                raise DatasetError(path, f"{key}[{i}] has no '{f}' (or it is null)")
            if not isinstance(e[f], t) or isinstance(e[f], bool):
                raise DatasetError(path, f"{key}[{i}] '{f}' is {e[f]!r}, not {' or '.join(x.__name__ for x in (t if isinstance(t, tuple) else (t,)))}")
    for f in ("id", "file_name", "name"):
        if f in fields:
            seen = set()
            for i, e in enumerate(entries):
                if e[f] in seen:
                    raise DatasetError(path, f"{key}[{i}]: {f} {e[f]!r} appears twice")
                seen.add(e[f])
    return entries


def read_coco_file(path, classes):
    """A user's COCO JSON: keep `classes` (default: all, in id order); validate every entry, image and box."""
    coco = load_coco(path)
    categories = _entries(path, coco, "categories", {"id": int, "name": str})
    images = _entries(path, coco, "images", {"id": int, "file_name": str})
    annotations = _entries(path, coco, "annotations", {"id": int, "image_id": int, "category_id": int,
                                                       "bbox": list})
    names = coco_class_names(coco)
    classes = list(classes) if classes else names
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DatasetError(path, f"class(es) {unknown} not among its categories {names}")
    root = Path(coco_image_root(coco) or Path(path).parent)
    id_to_name = {c["id"]: c["name"] for c in categories}
    image_ids = {img["id"] for img in images}
    by_image = {}
    for a in annotations:
        if len(a["bbox"]) != 4:
            raise DatasetError(path, f"annotation {a['id']}: 'bbox' must be [x, y, w, h], not {a['bbox']!r}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in a["bbox"]):
            raise DatasetError(path, f"annotation {a['id']}: 'bbox' {a['bbox']!r} holds a non-number")
        if not all(_finite(v) for v in a["bbox"]):
            raise DatasetError(path, f"annotation {a['id']}: 'bbox' {a['bbox']!r} holds a number that is not finite")
        if a["image_id"] not in image_ids:
            raise DatasetError(path, f"annotation {a['id']}: image_id {a['image_id']} is not among its images")
        if a["category_id"] not in id_to_name:
            raise DatasetError(path, f"annotation {a['id']}: unknown category id {a['category_id']}")
        by_image.setdefault(a["image_id"], []).append(a)
    records = []
    for img in tqdm(images, desc=f"reading {Path(path).name}", unit="img", mininterval=1.0):
        boxes = []
        for a in by_image.get(img["id"], []):
            name = id_to_name[a["category_id"]]
            if name in classes:
                x, y, bw, bh = (float(v) for v in a["bbox"])
                boxes.append((x, y, x + bw, y + bh, name))
        stated = tuple(img.get(k) for k in ("width", "height") if k in img)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in stated):
            raise DatasetError(path, f"image {img['id']}: width and height, if given, must be positive numbers, "
                                     f"not {stated}")
        records.append(image_record(root / img["file_name"], root, boxes, source=f"{path} (image {img['id']})",
                                    stated_size=stated if len(stated) == 2 else None))
    return classes, records, root


def read_dataset(spec: dict, seed: int, work_dir="data", final_dir=None):
    """spec: one entry of params.yaml `datasets` (validated by the params schema). Returns (train_coco,
    test_coco), each with `info.input_report` (what is legal but unusual, counted). The synthetic dataset's
    images are generated under work_dir/synthetic and referenced from final_dir/synthetic (default:
    work_dir), so they can be written into a staging folder that is renamed into place afterwards."""
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise DatasetError("params.yaml", f"dataset format {fmt!r} is not one of {FORMATS}")
    root = Path(spec.get("root", "")).expanduser()
    if fmt not in ("synthetic", "coco") and not root.is_dir():
        raise DatasetError(root, f"dataset root for format {fmt!r} is not a folder")
    frac = float(spec.get("test_fraction", 0.2))
    if fmt == "synthetic":
        root = Path(final_dir or work_dir) / "synthetic"
        classes, train, test = generate_synthetic(Path(work_dir) / "synthetic", spec.get("num_train", 240),
                                                  spec.get("num_test", 60), spec.get("image_size", 128), seed)
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
        classes, train, train_root = read_coco_file(spec["train_json"], spec.get("classes"))
        classes, test, test_root = read_coco_file(spec["test_json"], classes)
        if train_root != test_root:  # keep one image_root: make paths relative to their common parent
            raise DatasetError(spec["test_json"], f"train and test images must share one image root "
                                                  f"({train_root} vs {test_root}); set info.image_root")
        root = train_root
    if fmt != "synthetic":  # generated data cannot hold these faults
        check_records(train, test, *((spec["train_json"], spec["test_json"]) if fmt == "coco" else (root, root)))
    desc = f"{fmt} from {root}"
    out = []
    for records, part in ((train, "train"), (test, "test")):
        coco = make_coco(records, classes, root, f"{desc} ({part})")
        if fmt != "synthetic":
            coco["info"]["input_report"] = input_report(records)
        out.append(coco)
    return tuple(out)
