"""Pascal VOC XML reading and the VOC-based layouts: NEU-DET (original and Kaggle), GC10-DET, any VOC folder."""
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tqdm import tqdm

from .errors import DatasetError, read_text
from .holdout import seeded_split
from .images import image_record

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

NEU_DET_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]

# GC10-DET's XML <name> values are pinyin labels; public copies carry misspellings.
GC10_DET_CLASSES = ["1_chongkong", "2_hanfeng", "3_yueyawan", "4_shuiban", "5_youban",
                    "6_siban", "7_yiwu", "8_yahen", "9_zhehen", "10_yaozhe"]
GC10_DET_ALIASES = {"10_yaozhed": "10_yaozhe", "1_chongkon": "1_chongkong",
                    "2_hanfen": "2_hanfeng", "3_yueyawa": "3_yueyawan"}
GC10_DET_ENGLISH = ["punching_hole", "welding_line", "crescent_gap", "water_spot", "oil_spot",
                    "silk_spot", "inclusion", "rolled_pit", "crease", "waist_folding"]


def _text(xml_path, node, tag) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(xml_path, f"malformed VOC XML: <{tag}> is missing or empty")
    return child.text.strip()


def _number(xml_path, node, tag) -> float:
    value = _text(xml_path, node, tag)
    try:
        return float(value)
    except ValueError:
        raise DatasetError(xml_path, f"malformed VOC XML: <{tag}> is not a number: {value!r}") from None


def read_voc_objects(xml_path, class_names, aliases=None):
    """Parse one VOC XML. Returns (filename or None, (width, height) from <size> or None,
    [(x1, y1, x2, y2, class_name)]) in absolute, 0-based pixel coordinates (VOC's xmin/ymin are
    1-based, as in detectron2's VOC loader)."""
    aliases = aliases or {}
    known = set(class_names)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        try:  # undeclared non-UTF-8 bytes are the usual cause: say so
            Path(xml_path).read_bytes().decode("utf-8")
        except UnicodeDecodeError as u:
            raise DatasetError(xml_path, f"not UTF-8 text (byte {u.start}) and no other encoding declared; "
                                         f"save it as UTF-8") from None
        raise DatasetError(xml_path, f"malformed or truncated XML ({e})") from e
    except OSError as e:
        raise DatasetError(xml_path, f"cannot read annotation file ({e})") from e
    if root.tag != "annotation":
        raise DatasetError(xml_path, f"malformed VOC XML: root element is <{root.tag}>, expected <annotation>")
    filename = root.findtext("filename")
    size = root.find("size")  # optional; when it gives both, it must agree with the image
    if size is not None and size.findtext("width") and size.findtext("height"):
        size = (_number(xml_path, size, "width"), _number(xml_path, size, "height"))
    else:
        size = None
    boxes = []
    for obj in root.findall("object"):
        name = _text(xml_path, obj, "name")
        name = aliases.get(name, name)
        if name not in known:
            raise DatasetError(xml_path, f"unknown class {name!r} (known: {', '.join(class_names)})")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DatasetError(xml_path, f"malformed VOC XML: object {name!r} has no <bndbox>")
        x1, y1, x2, y2 = (_number(xml_path, bnd, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((x1 - 1.0, y1 - 1.0, x2, y2, name))
    return (filename.strip() if filename else None), size, boxes


def _image_index(folder: Path) -> dict:
    """Map file name and stem -> the image files under folder (recursive) that have it."""
    index = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            for key in {p.name, p.stem}:
                index.setdefault(key, []).append(p)
    return index


def _find_image(index, xml_path, filename, image_dir) -> Path:
    """The image an XML names: its <filename> (by name, else by stem: NEU-DET writes some without
    the extension), or the XML's own stem when it has no <filename>. Absent or ambiguous: an error."""
    keys = [filename, Path(filename).stem] if filename else [xml_path.stem]
    for key in keys:
        found = index.get(key, [])
        if len(found) > 1:
            raise DatasetError(xml_path, f"its image {key!r} matches {len(found)} files in {image_dir}: "
                                         f"{', '.join(str(f.relative_to(image_dir)) for f in found[:3])}")
        if found:
            return found[0]
    raise DatasetError(xml_path, f"its image ({filename or xml_path.stem}) is absent from {image_dir}")


def voc_records(xml_paths, image_dir, class_names, aliases=None, dataset_root=None, desc="VOC"):
    """Read and validate VOC annotations; each image is looked up in image_dir by <filename> (_find_image).
    Returns COCO-style records with file_name relative to dataset_root."""
    image_dir = Path(image_dir)
    dataset_root = Path(dataset_root or image_dir)
    index = _image_index(image_dir)
    records, xml_paths = [], list(xml_paths)
    for xml_path in tqdm(xml_paths, desc=f"reading {desc}", unit="img", mininterval=1.0, disable=not xml_paths):
        xml_path = Path(xml_path)
        filename, size, boxes = read_voc_objects(xml_path, class_names, aliases)
        image = _find_image(index, xml_path, filename, image_dir)
        records.append(image_record(image, dataset_root, boxes, source=xml_path, stated_size=size))
    return records


def neu_det(root, train_max_index=240):
    """NEU-DET in the original layout (IMAGES/, ANNOTATIONS/; split n <= 240 train, the rest test)
    or the Kaggle layout (train/ and validation/, each with images/<class>/ and annotations/)."""
    root = Path(root)
    if (root / "ANNOTATIONS").is_dir() and (root / "IMAGES").is_dir():
        xmls = sorted((root / "ANNOTATIONS").glob("*.xml"))
        if not xmls:
            raise DatasetError(root / "ANNOTATIONS", "no .xml annotation files")
        pattern = re.compile(r"^(.+)_(\d+)$")
        train, test = [], []
        for x in xmls:
            m = pattern.match(x.stem)
            if not m:
                raise DatasetError(x, "NEU-DET file names must look like <class>_<n>.xml")
            (train if int(m.group(2)) <= train_max_index else test).append(x)
        read = lambda xs, d: voc_records(xs, root / "IMAGES", NEU_DET_CLASSES, dataset_root=root, desc=d)
        return NEU_DET_CLASSES, read(train, "NEU-DET train"), read(test, "NEU-DET test")
    if (root / "train").is_dir() and (root / "validation").is_dir():
        def split(name):
            ann = root / name / "annotations"
            xmls = sorted(ann.glob("*.xml"))
            if not xmls:
                raise DatasetError(ann, "no .xml annotation files")
            return voc_records(xmls, root / name / "images", NEU_DET_CLASSES, dataset_root=root,
                               desc=f"NEU-DET {name}")
        return NEU_DET_CLASSES, split("train"), split("validation")
    raise DatasetError(root, "not a NEU-DET folder: expected IMAGES/ + ANNOTATIONS/ or train/ + validation/")


def voc_class_names(xml_paths) -> list[str]:
    """The class names a set of VOC XMLs uses, sorted (each file is checked when it is read)."""
    names = set()
    for xml_path in xml_paths:
        try:
            names.update((o.text or "").strip() for o in ET.parse(xml_path).getroot().findall("object/name"))
        except (ET.ParseError, OSError):
            continue  # read_voc_objects names the file and the problem
    return sorted(n for n in names if n)


def voc_split_files(root):
    """(train list, test list) of a VOC folder's own split, ImageSets/Main/{train,test}.txt (or trainval/test,
    train/val), or None when it has none."""
    sets = Path(root) / "ImageSets" / "Main"
    for a, b in (("train", "test"), ("trainval", "test"), ("train", "val")):
        if (sets / f"{a}.txt").is_file() and (sets / f"{b}.txt").is_file():
            return sets / f"{a}.txt", sets / f"{b}.txt"
    return None


def voc_folder(root, class_names, aliases=None, seed=0, test_fraction=0.2,
               annotations="Annotations", images="JPEGImages", desc="VOC"):
    """Any VOC folder: Annotations/*.xml + JPEGImages/ (names configurable). Split from
    ImageSets/Main/{train,test}.txt (or trainval/val) when present, otherwise seeded_split."""
    root = Path(root)
    ann_dir = root / annotations
    xmls = sorted(ann_dir.glob("*.xml"))
    if not xmls:
        raise DatasetError(ann_dir, "no .xml annotation files")
    by_stem = {x.stem: x for x in xmls}

    def listed(f):
        out, seen = [], {}
        for lineno, line in enumerate(read_text(f).splitlines(), start=1):
            if not line.strip():
                continue
            name = line.split()[0]
            if name not in by_stem:
                raise DatasetError(f, f"line {lineno}: lists {name!r}, which has no annotation in {ann_dir}")
            if name in seen:
                raise DatasetError(f, f"line {lineno}: {name!r} is listed again (first on line {seen[name]})")
            seen[name] = lineno
            out.append(by_stem[name])
        return out

    split = voc_split_files(root)
    if split:
        train, test = listed(split[0]), listed(split[1])
    else:
        train, test = seeded_split(xmls, test_fraction, seed)
    read = lambda xs, d: voc_records(xs, root / images, class_names, aliases, dataset_root=root, desc=d)
    return list(class_names), read(train, f"{desc} train"), read(test, f"{desc} test")


def gc10_det(root, seed=0, test_fraction=0.2, annotations="lable", images="."):
    """GC10-DET: VOC XMLs with pinyin class names (aliases fix known misspellings); no official
    split, so a seeded split. Public copies keep XMLs in 'lable/' and images in numbered folders."""
    root = Path(root)
    if not (root / annotations).is_dir() and (root / "Annotations").is_dir():
        annotations = "Annotations"
    return voc_folder(root, GC10_DET_CLASSES, GC10_DET_ALIASES, seed, test_fraction,
                      annotations=annotations, images=images, desc="GC10-DET")
