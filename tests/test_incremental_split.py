"""Class-incremental task sets built from ordered class groups."""
import pytest

from detectron_ext.data.coco_format import make_coco
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.incremental import box_orientation, incremental_sets, set_statistics

CLASSES = ["a", "b", "c", "d"]


def coco(records):
    return make_coco([{"file_name": f"{i}.png", "width": 10, "height": 10, "boxes": [(0, 0, 5, 5, c) for c in cs]}
                      for i, cs in enumerate(records)], CLASSES, ".")


def test_phases_filter_boxes_by_class_not_images_by_name():
    train = coco([["a"], ["c"], ["a", "c"], ["b", "d"], []])
    test = coco([["a"], ["d"], []])
    sets = incremental_sets(train, test, [["c", "a"], ["b", "d"]])
    p0, p1 = sets["phase0_train"], sets["phase1_train"]
    # global order c, a, b, d -> ids 1..4; phase 0 only knows its two classes
    assert [c["name"] for c in p0["categories"]] == ["c", "a"]
    assert [c["name"] for c in p1["categories"]] == ["c", "a", "b", "d"]
    assert [i["file_name"] for i in p0["images"]] == ["0.png", "1.png", "2.png"]
    assert [i["file_name"] for i in p1["images"]] == ["3.png"]
    assert {a["category_id"] for a in p1["annotations"]} == {3, 4}
    # image 2.png holds a and c: both boxes in phase 0
    assert sum(a["image_id"] == 3 for a in p0["annotations"]) == 2
    # test sets: all test images, boxes of every class seen so far
    assert len(sets["phase0_test"]["images"]) == 3 and len(sets["phase0_test"]["annotations"]) == 1
    assert len(sets["phase1_test"]["annotations"]) == 2
    assert len(sets["joint_train"]["images"]) == 5 and len(sets["joint_train"]["annotations"]) == 6


def test_three_steps_and_statistics():
    train = coco([["a"], ["b"], ["c"], ["d"]])
    sets = incremental_sets(train, coco([["a", "b", "c", "d"]]), [["a", "b"], ["c"], ["d"]])
    assert sorted(sets) == sorted(["phase0_train", "phase0_test", "phase1_train", "phase1_test",
                                   "phase2_train", "phase2_test", "joint_train", "joint_test"])
    stats = set_statistics(sets).set_index(["set", "class"])
    assert stats.loc[("phase1_test", "c"), "boxes"] == 1
    assert stats.loc[("phase1_test", "(all)"), "boxes"] == 3
    assert stats.loc[("phase2_train", "d"), "images"] == 1


@pytest.mark.parametrize("groups, pattern", [
    ([["a", "zz"]], r"unknown class\(es\) in class_groups: \['zz'\]"),
    ([["a"], ["a", "b"]], r"more than one group: \['a'\]"),
    ([["a"], []], r"non-empty"),
])
def test_bad_class_groups(groups, pattern):
    with pytest.raises(DatasetError, match=pattern):
        incremental_sets(coco([["a"]]), coco([["a"]]), groups)


def test_box_orientation_marks_a_class_trained_upright_and_tested_lying():
    def boxes(shapes):  # (class, w, h) per image
        return make_coco([{"file_name": f"{i}.png", "width": 40, "height": 40, "boxes": [(0, 0, w, h, c)]}
                          for i, (c, w, h) in enumerate(shapes)], CLASSES, ".")
    train = boxes([("a", 4, 20), ("a", 4, 30), ("b", 10, 10), ("b", 30, 5)])
    test = boxes([("a", 20, 4), ("b", 10, 12), ("b", 24, 4)])
    table = box_orientation(train, test)
    assert table.loc["a"].tolist() == [100, 0, 0, 100, "yes"]
    assert table.loc["b"].tolist() == [0, 0, 50, 50, "no"]
    assert "c" not in table.index  # no boxes: no row


def test_box_orientation_compares_the_percentages_shown_and_marks_one_set_classes():
    def boxes(shapes):
        return make_coco([{"file_name": f"{i}.png", "width": 40, "height": 40, "boxes": [(0, 0, w, h, c)]}
                          for i, (c, w, h) in enumerate(shapes)], CLASSES, ".")
    upright, square = (4, 20), (10, 10)
    train = boxes([("a", *upright)] * 7 + [("a", *square)] * 3 + [("b", *square)])
    test = boxes([("a", *upright)] * 3 + [("a", *square)] * 7 + [("c", *square)])
    table = box_orientation(train, test)
    assert table.loc["a", "upright train %"] - table.loc["a", "upright test %"] == 40  # 0.7 - 0.3 < 0.4 in floats
    assert table.loc["a", "shifted"] == "yes"
    assert table.loc["b", "shifted"] == "n/a" and table.loc["c", "shifted"] == "n/a"
