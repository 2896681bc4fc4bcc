"""Dataset readers: formats, splits, and a clear error naming the file for every kind of bad input."""
import json

import pytest

from detectron_ext.data.deeppcb import deeppcb, read_deeppcb_boxes
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.sources import read_dataset
from detectron_ext.data.voc import gc10_det, neu_det, voc_folder
from helpers import build_voc, make_deeppcb, make_neu, voc_xml, write_image


@pytest.mark.parametrize("layout", ["original", "kaggle"])
def test_neu_det_layouts_and_default_split(tmp_path, layout):
    make_neu(tmp_path, layout=layout)
    classes, train, test = neu_det(tmp_path)
    assert len(train) == 12 and len(test) == 12
    assert all(not r["file_name"].split("_")[-1].startswith("24") for r in train)
    # VOC's 1-based xmin/ymin become 0-based, as in detectron2's VOC loader
    assert train[0]["boxes"][0][:4] == (1.0, 2.0, 30.0, 40.0)


def test_good_voc_folder_with_imagesets(tmp_path):
    build_voc(tmp_path)  # ImageSets/Main: a, b, c train; d test
    _, train, test = voc_folder(tmp_path, ["dent"])
    assert [r["file_name"] for r in test] == ["JPEGImages/d.jpg"] and len(train) == 3


def test_voc_split_file_listing_an_absent_image(tmp_path):
    write_image(tmp_path / "JPEGImages" / "im0.jpg")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "im0.xml").write_text(voc_xml("im0.jpg", [("dent", (1, 1, 10, 10))]))
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("im0\n")
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("im9\n")
    with pytest.raises(DatasetError, match=r"test\.txt: line 1: lists 'im9'"):
        voc_folder(tmp_path, ["dent"])


def bad_voc(tmp_path, xml_text=None, image="ok", objects=(("dent", (1, 1, 10, 10)),)):
    (tmp_path / "Annotations").mkdir(exist_ok=True)
    if image == "ok":
        write_image(tmp_path / "JPEGImages" / "a.jpg")
    elif image == "corrupt":
        (tmp_path / "JPEGImages").mkdir(exist_ok=True)
        (tmp_path / "JPEGImages" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    elif image == "truncated":
        write_image(tmp_path / "JPEGImages" / "a.jpg", 256, 256)
        data = (tmp_path / "JPEGImages" / "a.jpg").read_bytes()
        (tmp_path / "JPEGImages" / "a.jpg").write_bytes(data[: len(data) // 2])
    else:
        (tmp_path / "JPEGImages").mkdir(exist_ok=True)
    xml = tmp_path / "Annotations" / "a.xml"
    xml.write_text(xml_text if xml_text is not None else voc_xml("a.jpg", list(objects)))
    return xml


@pytest.mark.parametrize("case, pattern", [
    (dict(image="missing"), r"a\.xml: its image \(a\.jpg\) is absent"),
    (dict(image="corrupt"), r"a\.jpg: corrupt or unreadable image"),
    (dict(image="truncated"), r"a\.jpg: corrupt or unreadable image"),
    (dict(xml_text="<annotation><object><name>dent</name"), r"a\.xml: malformed or truncated XML"),
    (dict(xml_text="<annotation><object><name>dent</name></object></annotation>"), r"a\.xml: .*no <bndbox>"),
    (dict(xml_text=voc_xml("a.jpg", [("dent", ("1", "x", 5, 5))])), r"a\.xml: .*<ymin> is not a number"),
    (dict(objects=[("dent", (1, 1, 90, 10))]), r"a\.xml: box of 'dent' .* outside the 64x48 image"),
    (dict(objects=[("dent", (5, 5, 4, 10))]), r"a\.xml: box of 'dent' .* zero or negative size"),
    (dict(objects=[("crack", (1, 1, 10, 10))]), r"a\.xml: unknown class 'crack' \(known: dent\)"),
])
def test_bad_voc_input_names_file_and_problem(tmp_path, case, pattern):
    bad_voc(tmp_path, **case)
    with pytest.raises(DatasetError, match=pattern) as err:
        voc_folder(tmp_path, ["dent"], test_fraction=0.0)
    assert str(tmp_path) in str(err.value)


def test_gc10_det_pinyin_names_and_misspellings(tmp_path):
    (tmp_path / "lable").mkdir()
    for i, name in enumerate(["1_chongkong", "10_yaozhed", "7_yiwu"]):
        write_image(tmp_path / str(i + 1) / f"img{i}.jpg")
        (tmp_path / "lable" / f"img{i}.xml").write_text(voc_xml(f"img{i}.jpg", [(name, (1, 1, 10, 10))]))
    classes, train, test = gc10_det(tmp_path, seed=0, test_fraction=0.34)
    names = sorted(b[4] for r in train + test for b in r["boxes"])
    assert names == ["10_yaozhe", "1_chongkong", "7_yiwu"] and len(classes) == 10 and len(test) == 1


@pytest.mark.parametrize("sep", [" ", ","])
def test_deeppcb_separators_missing_newline_and_seeded_split(tmp_path, sep):
    make_deeppcb(tmp_path, [[(10, 10, 50, 60, 1), (100, 100, 120, 130, 6)]] * 5, sep=sep, final_newline=False)
    classes, train, test = deeppcb(tmp_path, seed=3, test_fraction=0.4)
    assert len(train) == 3 and len(test) == 2
    assert train[0]["boxes"] == [(10.0, 10.0, 50.0, 60.0, "open"), (100.0, 100.0, 120.0, 130.0, "pin-hole")]
    again = deeppcb(tmp_path, seed=3, test_fraction=0.4)
    other = deeppcb(tmp_path, seed=4, test_fraction=0.4)
    assert [r["file_name"] for r in again[2]] == [r["file_name"] for r in test]
    assert {r["file_name"] for r in other[2]} != {r["file_name"] for r in test} or len(test) == 0


def test_deeppcb_uses_test_txt_when_present(tmp_path):
    make_deeppcb(tmp_path, [[(10, 10, 50, 60, 2)]] * 3, with_test=True)
    _, train, test = deeppcb(tmp_path)
    assert len(train) == 3 and len(test) == 1


@pytest.mark.parametrize("line, pattern", [
    ("10 10 50", r"line 1: expected 'x1 y1 x2 y2 type'"),
    ("10 10 50 sixty 1", r"line 1: non-numeric field"),
    ("10 10 50 60 9", r"line 1: class type 9 is not one of 1\.\.6"),
    ("10 10 700 60 1", r"box of 'open' .* outside the 640x640 image"),
])
def test_bad_deeppcb_annotation(tmp_path, line, pattern):
    make_deeppcb(tmp_path, [[(1, 1, 5, 5, 1)]])
    (tmp_path / "group1" / "1_not" / "10000.txt").write_text(line + "\n")
    with pytest.raises(DatasetError, match=r"10000\.txt: " + pattern):
        deeppcb(tmp_path, test_fraction=0.0)


def test_deeppcb_split_lists_absent_image(tmp_path):
    make_deeppcb(tmp_path, [[(1, 1, 5, 5, 1)]])
    with open(tmp_path / "trainval.txt", "a") as f:
        f.write("group1/1/99999999.jpg group1/1_not/99999999.txt\n")
    with pytest.raises(DatasetError, match=r"trainval\.txt: line 2: image group1/1/99999999\.jpg .* is absent"):
        deeppcb(tmp_path)


def test_user_coco_json_and_unknown_class(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / "imgs" / f"{name}.png")
        coco = {"images": [{"id": 1, "file_name": f"imgs/{name}.png", "width": 64, "height": 48}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 10]}],
                "categories": [{"id": 7, "name": "dent"}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(coco))
    (tmp_path / "c.json").write_text((tmp_path / "a.json").read_text())
    spec = {"format": "coco", "train_json": str(tmp_path / "a.json"), "test_json": str(tmp_path / "b.json")}
    train, test = read_dataset(spec, seed=0)
    assert train["categories"] == [{"id": 1, "name": "dent"}]
    assert train["annotations"][0]["bbox"] == [1.0, 2.0, 10.0, 10.0]
    with pytest.raises(DatasetError, match=r"a\.json: class\(es\) \['scratch'\] not among"):
        read_dataset(dict(spec, classes=["scratch"]), seed=0)
    (tmp_path / "bad.json").write_text('{"images": [')
    with pytest.raises(DatasetError, match=r"bad\.json: malformed JSON"):
        read_dataset(dict(spec, train_json=str(tmp_path / "bad.json")), seed=0)


def test_synthetic_is_deterministic(tmp_path):
    a = read_dataset({"format": "synthetic", "num_train": 6, "num_test": 2}, seed=1, work_dir=tmp_path / "a")
    b = read_dataset({"format": "synthetic", "num_train": 6, "num_test": 2}, seed=1, work_dir=tmp_path / "b")
    c = read_dataset({"format": "synthetic", "num_train": 6, "num_test": 2}, seed=2, work_dir=tmp_path / "c")
    assert a[0]["annotations"] == b[0]["annotations"] != c[0]["annotations"]
    assert (tmp_path / "a/synthetic/images/train_00000.png").read_bytes() == \
           (tmp_path / "b/synthetic/images/train_00000.png").read_bytes()
    assert len({x["category_id"] for x in a[0]["annotations"] + a[1]["annotations"]}) >= 3
