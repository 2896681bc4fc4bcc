"""A corpus of damaged inputs (generated here, > 100 cases): each must be refused with one line naming
the file (or params.yaml key) and the problem; every valid variant must still be accepted; and a refused
`prepare` must leave the earlier outputs as they were."""
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from detectron_ext.data.errors import DatasetError
from detectron_ext.data.images import inspect_image
from detectron_ext.data.sources import read_dataset
from detectron_ext.file_io import staged_dir
from pipeline.params import load_params
from pipeline.params_schema import ParamsError, validate_params
from helpers import ROOT, build_voc, make_neu, voc_xml, write_image

W, H = 64, 48  # not square: an EXIF rotation changes the size


def jpeg_bytes(w=W, h=H, mode="L", seed=0, exif_orientation=None) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, 3)
    im = Image.fromarray((rng.random(shape) * 255).astype(np.uint8))
    if mode == "CMYK":
        im = im.convert("CMYK")
    out, kwargs = io.BytesIO(), {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(out, "JPEG", quality=90, **kwargs)
    return out.getvalue()


def png_bytes(mode="L", w=W, h=H) -> bytes:
    rng = np.random.default_rng(1)
    if mode == "I;16":
        im = Image.fromarray((rng.random((h, w)) * 65535).astype(np.uint16))
    else:
        im = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).convert(mode)
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- tiny datasets, one per format
# Each builder writes a small valid dataset and returns (spec, target image, its annotation file).

def build_neu(root):
    make_neu(root)
    return ({"format": "neu-det", "root": str(root)}, root / "IMAGES" / "crazing_1.jpg",
            root / "ANNOTATIONS" / "crazing_1.xml")


def build_deeppcb(root, boxes="10 10 50 60 1\n"):
    lines = []
    for i in range(4):
        write_image(root / "g" / "1" / f"1000{i}_test.jpg", 640, 640)
        (root / "g" / "1_not").mkdir(parents=True, exist_ok=True)
        (root / "g" / "1_not" / f"1000{i}.txt").write_text(boxes)
        lines.append(f"g/1/1000{i}.jpg g/1_not/1000{i}.txt")
    (root / "trainval.txt").write_text("\n".join(lines[:3]) + "\n")
    (root / "test.txt").write_text(lines[3] + "\n")
    return {"format": "deeppcb", "root": str(root)}, root / "g" / "1" / "10000_test.jpg", root / "g" / "1_not" / "10000.txt"


def coco_dict(names, first_id=1):
    return {"images": [{"id": first_id + i, "file_name": f"imgs/{n}.jpg", "width": W, "height": H}
                       for i, n in enumerate(names)],
            "annotations": [{"id": first_id + i, "image_id": first_id + i, "category_id": 1, "bbox": [2, 3, 20, 30]}
                            for i in range(len(names))],
            "categories": [{"id": 1, "name": "dent"}, {"id": 2, "name": "crack"}]}


def build_coco(root):
    for n in "abc":
        write_image(root / "imgs" / f"{n}.jpg")
    (root / "train.json").write_text(json.dumps(coco_dict("ab")))
    (root / "test.json").write_text(json.dumps(coco_dict("c", first_id=10)))
    return ({"format": "coco", "train_json": str(root / "train.json"), "test_json": str(root / "test.json")},
            root / "imgs" / "a.jpg", root / "train.json")


BUILDERS = {"neu-det": build_neu, "voc": build_voc, "deeppcb": build_deeppcb, "coco": build_coco}


def refused(spec, tmp_path, where: str, problem: str):
    """read_dataset refuses with one line naming `where` (a path fragment) and matching `problem`."""
    with pytest.raises(DatasetError) as err:
        read_dataset(spec, seed=0, work_dir=tmp_path / "work")
    message = str(err.value)
    assert "\n" not in message
    assert re.search(rf"{re.escape(where)}( \(image \d+\))?$", err.value.path), message  # the file itself
    assert re.search(problem, err.value.problem), message
    return message


# ---------------------------------------------------------------- damaged images, in every format

def _scramble_entropy(p):
    data = bytearray(p.read_bytes())
    start = data.find(b"\xff\xda") + 200
    for i in range(start, start + 40):
        data[i] = (data[i] * 7 + 13) % 256
    p.write_bytes(bytes(data))


def _corrupt_png(p):
    data = bytearray(png_bytes("RGB"))
    i = data.find(b"IDAT")
    for k in range(i + 20, i + 30):
        data[k] ^= 0x55
    p.write_bytes(bytes(data))


def _folder(p):
    p.unlink()
    p.mkdir()


IMAGE_DAMAGE = {  # kind: (damage, problem regex)
    "empty file": (lambda p: p.write_bytes(b""), r"corrupt or unreadable image"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), r"corrupt"),
    "corrupt entropy-coded data": (_scramble_entropy, r"corrupt (JPEG data|or unreadable image)"),
    "not an image": (lambda p: p.write_bytes(b"hello, I am text"), r"corrupt or unreadable image"),
    "16-bit PNG": (lambda p: p.write_bytes(png_bytes("I;16")), r"16/32-bit .* convert it to 8-bit"),
    "broken PNG stream": (_corrupt_png, r"corrupt or unreadable image"),
    "a folder": (_folder, r"is a folder, not an image file"),
}


@pytest.mark.parametrize("fmt", BUILDERS)
@pytest.mark.parametrize("kind", IMAGE_DAMAGE)
def test_damaged_image_is_refused_naming_it(tmp_path, fmt, kind):
    spec, image, _ = BUILDERS[fmt](tmp_path / "data")
    damage, problem = IMAGE_DAMAGE[kind]
    damage(image)
    refused(spec, tmp_path, image.name, problem)


@pytest.mark.parametrize("fmt", BUILDERS)
def test_missing_image_is_refused_naming_who_asked_for_it(tmp_path, fmt):
    spec, image, ann = BUILDERS[fmt](tmp_path / "data")
    image.unlink()
    where, problem = {"neu-det": (ann.name, r"its image .* is absent"), "voc": (ann.name, r"its image .* is absent"),
                      "deeppcb": ("trainval.txt", r"line 1: image .* is absent"),
                      "coco": (image.name, r"image file is missing")}[fmt]
    refused(spec, tmp_path, where, problem)


@pytest.mark.parametrize("fmt", BUILDERS)
@pytest.mark.parametrize("factor, problem", [(1 / 4, r"too large to decode safely"),
                                             (2 / 3, r"DecompressionBombWarning")])
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, fmt, factor, problem):
    spec, image, _ = BUILDERS[fmt](tmp_path / "data")
    w, h = Image.open(image).size
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(w * h * factor))  # every image is a "bomb" now
    refused(spec, tmp_path, ".jpg", problem)


@pytest.mark.parametrize("fmt", ["neu-det", "voc", "coco"])
def test_exif_rotated_image_against_its_stated_size(tmp_path, fmt):
    spec, image, ann = BUILDERS[fmt](tmp_path / "data")
    image.write_bytes(jpeg_bytes(exif_orientation=6))  # stored 64x48, read by detectron2 as 48x64
    refused(spec, tmp_path, ann.name, r"states the size 64x48, but .* reads as 48x64 after its EXIF orientation")


def test_corrupt_jpeg_that_pillow_decodes_silently_is_refused(tmp_path):
    """Pillow turns corrupt entropy-coded data into garbage pixels without a word; libjpeg warns."""
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(seed=0))
    _scramble_entropy(image)
    with Image.open(image) as im:
        im.load()  # no error: this is what detectron2 would train on
    with pytest.raises(DatasetError, match=r"a\.jpg: corrupt JPEG data \(Corrupt JPEG data: .* extraneous bytes"):
        inspect_image(image)


# ---------------------------------------------------------------- VOC and NEU-DET annotations

def _xml(objects, filename="a.jpg", size=(W, H)):
    return voc_xml(filename, objects, *size)


VOC_DAMAGE = {  # (new content of a.xml or a callable(root), file named, problem)
    "truncated XML": ("<annotation><object><name>dent</name", "a.xml", r"malformed or truncated XML"),
    "wrong root element": ("<voc><object/></voc>", "a.xml", r"root element is <voc>"),
    "object without name": ("<annotation><object><bndbox/></object></annotation>", "a.xml", r"<name> is missing"),
    "empty name": (_xml([(" ", (2, 3, 30, 40))]), "a.xml", r"<name> is missing or empty"),
    "unknown class": (_xml([("crack", (2, 3, 30, 40))]), "a.xml", r"unknown class 'crack'"),
    "no bndbox": ("<annotation><object><name>dent</name></object></annotation>", "a.xml", r"no <bndbox>"),
    "non-numeric coordinate": (_xml([("dent", (2, "x", 30, 40))]), "a.xml", r"<ymin> is not a number"),
    "inf coordinate": (_xml([("dent", (2, 3, "inf", 40))]), "a.xml", r"not a finite number"),
    "huge coordinate": (_xml([("dent", (2, 3, "1e400", 40))]), "a.xml", r"not a finite number"),
    "nan coordinate": (_xml([("dent", ("nan", 3, 30, 40))]), "a.xml", r"not a finite number"),
    "zero-size box": (_xml([("dent", (10, 3, 9, 40))]), "a.xml", r"zero or negative size"),
    "inverted box": (_xml([("dent", (30, 40, 2, 3))]), "a.xml", r"zero or negative size"),
    "box past the right edge": (_xml([("dent", (2, 3, 90, 40))]), "a.xml", r"outside the 64x48 image"),
    "box above the top": (_xml([("dent", (2, -5, 30, 40))]), "a.xml", r"outside the 64x48 image"),
    "stated size differs": (_xml([("dent", (2, 3, 30, 40))], size=(200, 200)), "a.xml",
                            r"states the size 200x200, but a\.jpg reads as 64x48"),
    "not UTF-8": (lambda r: (r / "Annotations" / "a.xml").write_bytes(
        b'<?xml version="1.0" encoding="utf-8"?><annotation><filename>a.jpg</filename><object><name>d\xe9nt'
        b'</name></object></annotation>'), "a.xml", r"not UTF-8 text \(byte \d+\) and no other encoding declared"),
    "filename names an absent image": (_xml([("dent", (2, 3, 30, 40))], filename="zzz.jpg"), "a.xml",
                                       r"its image \(zzz\.jpg\) is absent"),
    "two files answer to one name": (lambda r: write_image(r / "JPEGImages" / "old" / "a.jpg"), "a.xml",
                                     r"its image 'a\.jpg' matches 2 files"),
    "image absent": (lambda r: ((r / "JPEGImages" / "a.jpg").unlink(), (r / "Annotations" / "a.xml").write_text(
        _xml([("dent", (2, 3, 30, 40))], filename="zzz.jpg"))), "a.xml", r"its image \(zzz\.jpg\) is absent"),
    "two annotations, one image": (lambda r: (r / "Annotations" / "b.xml").write_text(
        _xml([("dent", (2, 3, 30, 40))], filename="a.jpg")), "b.xml", r"names the same image as .*a\.xml"),
    "split lists an image twice": (lambda r: (r / "ImageSets" / "Main" / "train.txt").write_text("a\nb\na\n"),
                                   "train.txt", r"line 3: 'a' is listed again \(first on line 1\)"),
    "split lists an unknown image": (lambda r: (r / "ImageSets" / "Main" / "test.txt").write_text("d\nq\n"),
                                     "test.txt", r"line 2: lists 'q', which has no annotation"),
    "train/test overlap": (lambda r: (r / "ImageSets" / "Main" / "test.txt").write_text("d\nb\n"),
                           "b.xml", r"test image JPEGImages/b\.jpg is also in the training set"),
    "empty test set": (lambda r: (r / "ImageSets" / "Main" / "test.txt").write_text("\n"), "/data",
                       r"the test set is empty"),
    "split file not UTF-8": (lambda r: (r / "ImageSets" / "Main" / "train.txt").write_bytes(b"a\n\xff\xfeb\n"),
                             "train.txt", r"not UTF-8 text"),
    "no annotations at all": (lambda r: [x.unlink() for x in (r / "Annotations").glob("*.xml")], "Annotations",
                              r"no \.xml annotation files"),
}


NEU_DAMAGE = {
    "not a NEU-DET folder": (lambda r: (r / "ANNOTATIONS").rename(r / "XML"), "/data", r"not a NEU-DET folder"),
    "file name without index": (lambda r: (r / "ANNOTATIONS" / "crazing.xml").write_text(
        _xml([("crazing", (2, 3, 30, 40))], "crazing_1.jpg")), "crazing.xml", r"must look like <class>_<n>\.xml"),
    "unknown class": (lambda r: (r / "ANNOTATIONS" / "crazing_1.xml").write_text(
        _xml([("rust", (2, 3, 30, 40))], "crazing_1.jpg")), "crazing_1.xml", r"unknown class 'rust'"),
    "box outside": (lambda r: (r / "ANNOTATIONS" / "crazing_1.xml").write_text(
        _xml([("crazing", (2, 3, 300, 40))], "crazing_1.jpg")), "crazing_1.xml", r"outside the 64x48 image"),
    "two annotations, one image": (lambda r: (r / "ANNOTATIONS" / "crazing_1.xml").write_text(
        _xml([("crazing", (2, 3, 30, 40))], "inclusion_1.jpg")), "inclusion_1.xml", r"names the same image as"),
    "empty test set": (lambda r: [x.unlink() for x in (r / "ANNOTATIONS").glob("*_24?.xml")], "/data",
                       r"the test set is empty"),
}


# ---------------------------------------------------------------- DeepPCB

def _ann(text):
    return lambda r: (r / "g" / "1_not" / "10000.txt").write_text(text)


DEEPPCB_DAMAGE = {
    "four fields": (_ann("10 10 50 60\n"), "10000.txt", r"line 1: expected 'x1 y1 x2 y2 type'"),
    "six fields": (_ann("10 10 50 60 1 1\n"), "10000.txt", r"line 1: expected"),
    "non-numeric": (_ann("10 10 fifty 60 1\n"), "10000.txt", r"line 1: non-numeric field"),
    "class 0": (_ann("10 10 50 60 0\n"), "10000.txt", r"class type 0 is not one of 1\.\.6"),
    "class 7": (_ann("10 10 50 60 7\n"), "10000.txt", r"class type 7 is not one of 1\.\.6"),
    "fractional class": (_ann("10 10 50 60 2.5\n"), "10000.txt", r"class type 2\.5 is not one of 1\.\.6"),
    "nan class": (_ann("10 10 50 60 nan\n"), "10000.txt", r"class type nan is not one of"),
    "inf coordinate": (_ann("10 10 inf 60 1\n"), "10000.txt", r"not a finite number"),
    "huge coordinate": (_ann("10 10 1e400 60 1\n"), "10000.txt", r"not a finite number"),
    "box outside": (_ann("10 10 700 60 1\n"), "10000.txt", r"outside the 640x640 image"),
    "zero-size box": (_ann("10 10 10 60 1\n"), "10000.txt", r"zero or negative size"),
    "second line bad": (_ann("10 10 50 60 1\n1 2 3\n"), "10000.txt", r"line 2: expected"),
    "not UTF-8": (lambda r: (r / "g" / "1_not" / "10000.txt").write_bytes(b"10 10 50 60 1 \xe9\n"), "10000.txt",
                  r"not UTF-8 text"),
    "annotation missing": (lambda r: (r / "g" / "1_not" / "10000.txt").unlink(), "10000.txt",
                           r"annotation file is missing"),
    "split line with one field": (lambda r: (r / "trainval.txt").write_text("g/1/10000.jpg\n"), "trainval.txt",
                                  r"line 1: expected '<image> <annotation>'"),
    "split lists an image twice": (lambda r: (r / "trainval.txt").write_text(
        "g/1/10000.jpg g/1_not/10000.txt\ng/1/10001.jpg g/1_not/10001.txt\ng/1/10000.jpg g/1_not/10000.txt\n"),
        "trainval.txt", r"line 3: image g/1/10000\.jpg is listed again \(first on line 1\)"),
    "image outside the root": (lambda r: (write_image(r.parent / "evil_test.jpg", 640, 640),
                                          (r / "trainval.txt").write_text("../evil.jpg g/1_not/10000.txt\n")),
                               "trainval.txt", r"line 1: image .*evil_test\.jpg lies outside the dataset root"),
    "annotation outside the root": (lambda r: ((r.parent / "x.txt").write_text("10 10 50 60 1\n"),
                                               (r / "trainval.txt").write_text("g/1/10000.jpg ../x.txt\n")),
                                    "trainval.txt", r"line 1: annotation .*x\.txt lies outside the dataset root"),
    "train/test overlap": (lambda r: (r / "test.txt").write_text("g/1/10001.jpg g/1_not/10001.txt\n"),
                           "10001.txt", r"test image g/1/10001_test\.jpg is also in the training set"),
    "same pixels in train and test": (lambda r: (r / "g" / "1" / "10003_test.jpg").write_bytes(
        (r / "g" / "1" / "10000_test.jpg").read_bytes()), "10003.txt", r"test image content .* also in the training"),
    "empty test split": (lambda r: (r / "test.txt").write_text(""), "/data", r"the test set is empty"),
    "one annotation for two images": (lambda r: (r / "trainval.txt").write_text(
        "g/1/10000.jpg g/1_not/10000.txt\ng/1/10001.jpg g/1_not/10000.txt\n"), "trainval.txt",
        r"line 2: annotation g/1_not/10000\.txt is listed again \(first on line 1\)"),
    "no split file": (lambda r: (r / "trainval.txt").unlink(), "trainval.txt", r"DeepPCB split file is missing"),
    "split file not UTF-8": (lambda r: (r / "test.txt").write_bytes(b"g/1/10003.jpg \xff\n"), "test.txt",
                             r"not UTF-8 text"),
}


# ---------------------------------------------------------------- COCO

def _coco(change):
    def apply(root):
        coco = json.loads((root / "train.json").read_text())
        change(coco)
        (root / "train.json").write_text(json.dumps(coco))
    return apply


COCO_DAMAGE = {  # (change, problem): the file named is train.json unless the problem says otherwise
    "malformed JSON": (lambda r: (r / "train.json").write_text('{"images": ['), r"malformed JSON"),
    "not UTF-8": (lambda r: (r / "train.json").write_bytes(b'{"images": "\xff"}'), r"not UTF-8 text"),
    "no images key": (_coco(lambda c: c.pop("images")), r"no 'images' key"),
    "images not a list": (_coco(lambda c: c.update(images={})), r"'images' is not a list"),
    "image entry not an object": (_coco(lambda c: c["images"].append(3)), r"images\[2\] is not an object"),
    "image without id": (_coco(lambda c: c["images"][0].pop("id")), r"images\[0\] has no 'id'"),
    "image id null": (_coco(lambda c: c["images"][0].update(id=None)), r"images\[0\] has no 'id' \(or it is null\)"),
    "image id a string": (_coco(lambda c: c["images"][0].update(id="1")), r"images\[0\] 'id' is '1', not int"),
    "image id a boolean": (_coco(lambda c: c["images"][0].update(id=True)), r"'id' is True, not int"),
    "file_name null": (_coco(lambda c: c["images"][0].update(file_name=None)), r"has no 'file_name'"),
    "duplicate image ids": (_coco(lambda c: c["images"][1].update(id=1)), r"images\[1\]: id 1 appears twice"),
    "duplicate file names": (_coco(lambda c: c["images"][1].update(file_name="imgs/a.jpg")),
                             r"images\[1\]: file_name 'imgs/a\.jpg' appears twice"),
    "duplicate category ids": (_coco(lambda c: c["categories"][1].update(id=1)), r"categories\[1\]: id 1 appears twice"),
    "duplicate category names": (_coco(lambda c: c["categories"][1].update(name="dent")),
                                 r"categories\[1\]: name 'dent' appears twice"),
    "category without name": (_coco(lambda c: c["categories"][0].pop("name")), r"categories\[0\] has no 'name'"),
    "annotation without bbox": (_coco(lambda c: c["annotations"][0].pop("bbox")), r"annotations\[0\] has no 'bbox'"),
    "bbox of three numbers": (_coco(lambda c: c["annotations"][0].update(bbox=[1, 2, 3])), r"must be \[x, y, w, h\]"),
    "bbox holding null": (_coco(lambda c: c["annotations"][0].update(bbox=[1, None, 3, 4])), r"holds a non-number"),
    "bbox holding a string": (_coco(lambda c: c["annotations"][0].update(bbox=[1, "2", 3, 4])), r"holds a non-number"),
    "bbox a string": (_coco(lambda c: c["annotations"][0].update(bbox="1 2 3 4")), r"'bbox' is '1 2 3 4', not list"),
    "huge bbox": (_coco(lambda c: c["annotations"][0].update(bbox=[1, 2, 1e308, 4])), r"outside the 64x48 image"),
    "negative width": (_coco(lambda c: c["annotations"][0].update(bbox=[10, 2, -3, 4])), r"zero or negative size"),
    "annotation of a missing image": (_coco(lambda c: c["annotations"][0].update(image_id=99)),
                                      r"image_id 99 is not among its images"),
    "unknown category id": (_coco(lambda c: c["annotations"][0].update(category_id=5)), r"unknown category id 5"),
    "duplicate annotation ids": (_coco(lambda c: c["annotations"][1].update(id=1)),
                                 r"annotations\[1\]: id 1 appears twice"),
    "path outside the root": (lambda r: (write_image(r.parent / "x.jpg"), _coco(
        lambda c: c["images"][0].update(file_name="../x.jpg"))(r)), r"lies outside the dataset root"),
    "absolute path elsewhere": (lambda r: (write_image(r.parent / "y.jpg"), _coco(
        lambda c: c["images"][0].update(file_name=str(r.parent / "y.jpg")))(r)), r"lies outside the dataset root"),
    "stated size differs": (_coco(lambda c: c["images"][0].update(width=640)),
                            r"states the size 640x48, but a\.jpg reads as 64x48"),
    "train/test overlap": (lambda r: (r / "test.json").write_text(json.dumps(coco_dict("b", first_id=10))),
                           r"test image imgs/b\.jpg is also in the training set"),
    "empty test set": (lambda r: (r / "test.json").write_text(json.dumps(dict(coco_dict(""), images=[]))),
                       r"the test set is empty"),
    "huge integer in a bbox": (_coco(lambda c: c["annotations"][0].update(bbox=[1, 2, 10 ** 400, 4])),
                               r"holds a number that is not finite"),
    "bbox of an unselected class holding a string": (_coco(lambda c: c["annotations"].append(
        {"id": 9, "image_id": 1, "category_id": 2, "bbox": ["x", 2, 3, 4]})), r"annotation 9: 'bbox' .* non-number"),
    "info null": (_coco(lambda c: c.update(info=None)), r"'info' must be an object"),
    "image_root a number": (_coco(lambda c: c.update(info={"image_root": 3})), r"'image_root', if any, is a folder"),
    "top level a number": (lambda r: (r / "train.json").write_text("3"), r"the top level is a int"),
    "width a string": (_coco(lambda c: c["images"][0].update(width="64")), r"image 1: width and height.* positive numbers"),
    "width 0": (_coco(lambda c: c["images"][0].update(width=0)), r"image 1: width and height.* positive numbers"),
    "height null": (_coco(lambda c: c["images"][0].update(height=None)), r"image 1: width and height.* positive numbers"),
}


DAMAGE = {"voc": VOC_DAMAGE, "neu-det": NEU_DAMAGE, "deeppcb": DEEPPCB_DAMAGE,
          "coco": {case: (change, "test.json" if ("test" in case or "overlap" in case) else "train.json", problem)
                   for case, (change, problem) in COCO_DAMAGE.items()}}


@pytest.mark.parametrize("fmt, case", [(fmt, case) for fmt, cases in DAMAGE.items() for case in cases])
def test_damaged_annotations_are_refused(tmp_path, fmt, case):
    """`change` is the new text of the builder's annotation file, or a function of the dataset root."""
    spec, _, ann = BUILDERS[fmt](tmp_path / "data")
    change, where, problem = DAMAGE[fmt][case]
    change(tmp_path / "data") if callable(change) else ann.write_text(change)
    refused(spec, tmp_path, where, problem)


def test_coco_unknown_class_requested(tmp_path):
    spec, _, _ = build_coco(tmp_path / "data")
    refused(dict(spec, classes=["rust"]), tmp_path, "train.json", r"class\(es\) \['rust'\] not among")


# ---------------------------------------------------------------- params.yaml

def _set(path, value):
    def apply(p):
        *parents, last = path.split(".")
        for k in parents:
            p = p[k]
        if value is _DELETE:
            p.pop(last)
        else:
            p[last] = value
    return apply


_DELETE = object()

PARAMS_DAMAGE = {  # (change, message regex after "params.yaml: ")
    "no seed": (_set("seed", _DELETE), r"^seed: required key is missing"),
    "typo at the top": (_set("sede", 0), r"^sede: unknown key \(did you mean 'seed'\?\)"),
    "typo in distill": (_set("distill.feat_wieght", 1.0), r"^distill\.feat_wieght: unknown key \(did you mean 'feat_weight'\?\)"),
    "typo in a scale": (_set("scales.ci.max_iters", 10), r"^scales\.ci\.max_iters: unknown key \(did you mean 'max_iter'\?\)"),
    "typo in a dataset": (_set("datasets.synthetic.num_trian", 10), r"^datasets\.synthetic\.num_trian: unknown key"),
    "typo in a run": (_set("runs.gfl_teacher.detectr", "gfl"), r"^runs\.gfl_teacher\.detectr: unknown key \(did you mean 'detector'"),
    "seed not a number": (_set("seed", "zero"), r"^seed: .*valid integer"),
    "fractional seed": (_set("seed", 1.5), r"^seed: .*valid integer \(got 1\.5\)"),
    "seed a string": (_set("seed", "3"), r"^seed: .*valid integer \(got '3'\)"),
    "a bool as a word": (_set("distill.br_per_gt", "no"), r"^distill\.br_per_gt: .*valid boolean \(got 'no'\)"),
    "null where a value is needed": (_set("datasets.deeppcb.test_fraction", None), r"test_fraction: .*valid number \(got None\)"),
    "negative seed": (_set("seed", -1), r"^seed: .*greater than or equal to 0"),
    "zero threads": (_set("threads", 0), r"^threads: .*greater than or equal to 1"),
    "unknown device": (_set("device", "gpu"), r"^device: .*pattern"),
    "unknown dataset": (_set("dataset", "neu"), r"^dataset: 'neu' is not defined"),
    "unknown scale": (_set("scale", "huge"), r"^scale: 'huge' is not defined"),
    "unknown task": (_set("task", "1+5"), r"^task: '1\+5' is not defined"),
    "unknown format": (_set("datasets.synthetic.format", "yolo"), r"^datasets\.synthetic\.format: Input should be"),
    "test_fraction 1.5": (_set("datasets.deeppcb.test_fraction", 1.5), r"^datasets\.deeppcb\.test_fraction: .*less than 1"),
    "test_fraction 0": (_set("datasets.deeppcb.test_fraction", 0), r"test_fraction: .*greater than 0"),
    "test_fraction for NEU-DET": (_set("datasets.neu-det.test_fraction", 0.3), r"^datasets\.neu-det: 'test_fraction' is not read by format 'neu-det'"),
    "missing root": (_set("datasets.deeppcb.root", _DELETE), r"^datasets\.deeppcb: format 'deeppcb' needs 'root'"),
    "class in two groups": (_set("datasets.synthetic.class_groups", [["scratch", "patch"], ["patch"]]), r"lists a class twice: \['patch'\]"),
    "empty class group": (_set("datasets.synthetic.class_groups", [["scratch"], []]), r"non-empty list of non-empty"),
    "voc class twice": (_set("datasets.my-voc.classes", ["class_a", "class_a"]), r"'classes' lists a class twice"),
    "lr not a number": (_set("scales.ci.lr", "fast"), r"^scales\.ci\.lr: .*valid number"),
    "batch 0": (_set("scales.ci.batch", 0), r"^scales\.ci\.batch: .*greater than 0"),
    "no schedule": (_set("scales.ci.max_iter", _DELETE), r"^scales\.ci: needs 'epochs' or 'max_iter'"),
    "step fraction 1.5": (_set("scales.ci.step_fractions", [0.5, 1.5]), r"step_fractions must lie in \(0, 1\)"),
    "unknown backbone": (_set("model.backbone", "vit"), r"^model\.backbone: Input should be"),
    "unknown detector": (_set("runs.gfl_teacher.detector", "yolo"), r"^runs\.gfl_teacher\.detector: Input should be 'gfl' or 'fcos'"),
    "teacher not a run": (_set("increments.erd.teacher", "nope"), r"^increments\.erd\.teacher: 'nope' is not defined"),
    "unknown method": (_set("increments.erd.method", "icarl"), r"^increments\.erd\.method: Input should be"),
    "method section missing": (_set("erd", _DELETE), r"increments\.erd uses method erd, which reads 'erd'"),
    "run without an assigner": (_set("runs.gfl_teacher.assigner", _DELETE), r"^runs\.gfl_teacher\.assigner: required key is missing"),
    "unknown assigner": (_set("increments.sdidd.assigner", "atss"), r"^increments\.sdidd\.assigner: Input should be 'base' or 'tgfs'"),
    "assigner section missing": (_set("assigners.tgfs", _DELETE), r"runs\.fcos_tgfs_joint uses assigner tgfs, but there is no 'assigners\.tgfs' section"),
    "base assigner with params": (_set("assigners.base", {"topk": 9}), r"^assigners\.base: .*at most 0 items"),
    "unknown precision": (_set("train.precision", "fp16"), r"^train\.precision: Input should be 'fp32', 'bf16' or 'auto'"),
    "unknown distill mode": (_set("distill.feat_mode", "some"), r"^distill\.feat_mode: Input should be"),
    "fr_lambda 1.5": (_set("distill.fr_lambda", 1.5), r"^distill\.fr_lambda: .*less than 1"),
    "negative weight": (_set("distill.feat_weight", -1), r"^distill\.feat_weight: .*greater than or equal to 0"),
    "alpha a string": (_set("alpha", "two"), r"^alpha: .*valid number"),
    "distill not a mapping": (_set("distill", [1, 2]), r"^distill: .*valid dictionary"),
}


@pytest.mark.parametrize("case", PARAMS_DAMAGE)
def test_bad_params_are_refused_naming_the_key(case):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change, pattern = PARAMS_DAMAGE[case]
    change(params)
    with pytest.raises(ParamsError) as err:
        validate_params(params)
    message = str(err.value)
    assert "\n" not in message and message.startswith("params.yaml: "), message
    assert re.search(pattern, message.removeprefix("params.yaml: ")), message


@pytest.mark.parametrize("content, pattern", [
    (b"", r"expected a mapping of parameters, got NoneType \(is the file empty\?\)"),
    (b"- 1\n- 2\n", r"expected a mapping of parameters, got list"),
    (b"seed: [0\n", r"line \d+: not valid YAML"),
    (b"seed: 0\ndataset: \xff\n", r"not UTF-8 text"),
])
def test_unreadable_params_file(tmp_path, content, pattern):
    (tmp_path / "params.yaml").write_bytes(content)
    with pytest.raises(ParamsError, match=pattern):
        load_params(tmp_path / "params.yaml")


def test_the_project_params_are_valid():
    validate_params(yaml.safe_load((ROOT / "params.yaml").read_text()))


# ---------------------------------------------------------------- valid variants are accepted

def _png_named_jpg(r):
    (r / "JPEGImages" / "a.jpg").write_bytes(png_bytes("RGB"))


VALID = {  # VOC folder variants: (change, check on the train/test COCO dicts)
    "PNG named .jpg": (_png_named_jpg, None),
    "CMYK JPEG": (lambda r: (r / "JPEGImages" / "a.jpg").write_bytes(jpeg_bytes(mode="CMYK")),
                  lambda tr, te: tr["info"]["input_report"]["image_modes"] == {"CMYK": 1, "L": 2}),
    "palette PNG": (lambda r: (r / "JPEGImages" / "a.jpg").write_bytes(png_bytes("P")), None),
    "RGBA PNG": (lambda r: (r / "JPEGImages" / "a.jpg").write_bytes(png_bytes("RGBA")), None),
    "1-bit PNG": (lambda r: (r / "JPEGImages" / "a.jpg").write_bytes(png_bytes("1")), None),
    "UTF-16 XML": (lambda r: (r / "Annotations" / "a.xml").write_bytes(
        ('<?xml version="1.0" encoding="UTF-16"?>' + _xml([("dent", (2, 3, 30, 40))])).encode("utf-16")), None),
    "XML with a byte-order mark": (lambda r: (r / "Annotations" / "a.xml").write_bytes(
        b"\xef\xbb\xbf" + _xml([("dent", (2, 3, 30, 40))]).encode()), None),
    "XML without <size>": (lambda r: (r / "Annotations" / "a.xml").write_text(
        '<annotation><filename>a.jpg</filename><object><name>dent</name><bndbox><xmin>2</xmin><ymin>3</ymin>'
        '<xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>'), None),
    "image without defects": (lambda r: (r / "Annotations" / "a.xml").write_text(_xml([])),
                              lambda tr, te: tr["info"]["input_report"]["images_without_boxes"] == 1),
    "EXIF-rotated with its rotated size": (lambda r: ((r / "JPEGImages" / "a.jpg").write_bytes(
        jpeg_bytes(exif_orientation=6)), (r / "Annotations" / "a.xml").write_text(
        _xml([("dent", (2, 3, 30, 40))], size=(H, W)))),
        lambda tr, te: tr["images"][0]["width"] == H and tr["info"]["input_report"]["exif_rotated"] == 1),
    "identical copy within a set": (lambda r: (r / "JPEGImages" / "b.jpg").write_bytes(
        (r / "JPEGImages" / "a.jpg").read_bytes()),
        lambda tr, te: tr["info"]["input_report"]["identical_copies"] == 1),
    "split files with CRLF and blank lines": (lambda r: (r / "ImageSets" / "Main" / "train.txt").write_text(
        "a\r\n\r\nb\r\nc\r\n"), None),
}


@pytest.mark.parametrize("case", VALID)
def test_valid_voc_variant_is_accepted(tmp_path, case):
    spec, _, _ = build_voc(tmp_path / "data")
    change, check = VALID[case]
    change(tmp_path / "data")
    train, test = read_dataset(spec, seed=0, work_dir=tmp_path / "work")
    assert len(train["images"]) == 3 and len(test["images"]) == 1
    assert check is None or check(train, test)


@pytest.mark.parametrize("text", ["10,10,50,60,1\n", "10\t10\t50\t60\t1\n", "10 10 50 60 1\r\n",
                                  "\ufeff10 10 50 60 1\n", "10.5 10 50.25 60 1\n", "10 10 50 60 1.0\n", ""])
def test_valid_deeppcb_variant_is_accepted(tmp_path, text):
    spec, _, ann = build_deeppcb(tmp_path / "data")
    ann.write_bytes(text.encode("utf-8"))
    train, _ = read_dataset(spec, seed=0, work_dir=tmp_path / "work")
    boxes = [a["bbox"] for a in train["annotations"] if a["image_id"] == 1]
    assert boxes == ([] if not text else [[10.5, 10.0, 39.75, 50.0]] if "10.5" in text else [[10.0, 10.0, 40.0, 50.0]])


# ---------------------------------------------------------------- the stage: one line, nothing lost

def _stage(cwd, name):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(ROOT / "stages" / name)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_prepare_refuses_in_one_line_and_keeps_the_earlier_outputs(tmp_path):
    spec, image, _ = build_voc(tmp_path / "data")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["my-voc"].update(root=spec["root"], classes=["dent"], class_groups=[["dent"]])
    params["dataset"] = "my-voc"
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    good = _stage(project, "prepare.py")
    assert good.returncode == 0, good.stderr
    before = {p.name: p.read_bytes() for p in (project / "data" / "prepared").iterdir()}
    _scramble_entropy(image)
    bad = _stage(project, "prepare.py")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    # Pillow refuses this file itself on some machines (CI's, 2026-11-26) and decodes it silently on
    # others, where libjpeg's warning catches it: either way one line naming the file and the problem.
    assert re.fullmatch(f"error: {re.escape(str(image))}: corrupt (JPEG data|or unreadable image) \\(.*\\)",
                        bad.stderr.strip().splitlines()[-1])
    assert sum(line.startswith("error:") for line in bad.stderr.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (project / "data" / "prepared").iterdir()} == before
    assert sorted(p.name for p in (project / "data").iterdir()) == ["prepared"]  # no staging folder left
    params["datasets"]["my-voc"]["classes"] = ["dent", "dent"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    bad = _stage(project, "prepare.py")
    assert bad.returncode == 1 and bad.stderr.strip() == \
        "error: params.yaml: datasets.my-voc: 'classes' lists a class twice: ['dent', 'dent']"


def test_staged_dir_replaces_a_folder_as_a_whole(tmp_path):
    target = tmp_path / "splits"
    target.mkdir()
    for name in ("phase0_train.json", "phase2_train.json"):  # phase2: from an earlier 2+2+2 task
        (target / name).write_text("old")
    with pytest.raises(KeyboardInterrupt):  # killed half-way: nothing changes, nothing is left over
        with staged_dir(target) as staging:
            (staging / "phase0_train.json").write_text("new")
            raise KeyboardInterrupt
    assert {p.name: p.read_text() for p in target.iterdir()} == {"phase0_train.json": "old", "phase2_train.json": "old"}
    with staged_dir(target) as staging:
        (staging / "phase0_train.json").write_text("new")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"phase0_train.json": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["splits"]


def test_dvc_keeps_the_staged_folders_for_the_stage_to_replace():
    """DVC deletes a stage's outputs before running it unless they persist: the earlier data would be gone."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage, folder in (("prepare", "data/prepared"), ("split", "data/splits")):
        outs = [o for o in stages[stage]["outs"] if isinstance(o, dict) and folder in o]
        assert outs and outs[0][folder].get("persist") is True


def test_overrides_set_yaml_values_and_refuse_what_is_not_a_key():
    from pipeline.params import apply_overrides
    params = {"alpha": 2.0, "scales": {"ci": {"step_fractions": [0.5]}}}
    apply_overrides(params, ["alpha=3", "scales.ci.step_fractions=[0.6, 0.9]"])
    assert params == {"alpha": 3, "scales": {"ci": {"step_fractions": [0.6, 0.9]}}}
    with pytest.raises(ParamsError, match=r"^alpha: expected KEY=VALUE$"):
        apply_overrides(params, ["alpha"])
    with pytest.raises(ParamsError, match=r"^alpha\.x=1: p\.yaml has no section 'alpha'$"):
        apply_overrides(params, ["alpha.x=1"], "p.yaml")


@pytest.mark.parametrize("launch, message", [
    ({"machine_rank": 2, "num_machines": 2}, r"^launch: .*machine_rank 2 is not below num_machines 2"),
    ({"num_machines": 2}, r"^launch: .*dist_url auto works on one machine only"),
    ({"num_gpus": 0}, r"^launch\.num_gpus: .*greater than 0")])
def test_bad_launch_settings_are_refused(launch, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["launch"].update(launch)
    with pytest.raises(ParamsError) as err:
        validate_params(params)
    assert re.search(message, str(err.value).removeprefix("params.yaml: ")), str(err.value)
