"""The validation set carved from the training images (detectron_ext/data/holdout.py) and the split
stage's sets: seeded, stratified by class, whole folders for DeepPCB, never overlapping training."""
import collections

import pytest

from detectron_ext.data.coco_format import make_coco
from detectron_ext.data.holdout import image_classes, split_off, validation_images
from detectron_ext.data.incremental import incremental_sets

CLASSES = ["a", "b", "c"]


def coco(records):
    """records: (file_name, [class, ...]) per image."""
    return make_coco([{"file_name": f, "width": 10, "height": 10, "boxes": [(0, 0, 5, 5, c) for c in cs]}
                      for f, cs in records], CLASSES, ".")


def test_image_validation_is_seeded_and_keeps_each_class_share():
    data = coco([(f"{c}_{i}.png", [c]) for c in CLASSES for i in range(50)] +
                [(f"ab_{i}.png", ["a", "b"]) for i in range(10)])
    val = validation_images(data, 0.2, seed=0)
    assert val == validation_images(data, 0.2, seed=0)
    assert val != validation_images(data, 0.2, seed=1)
    assert len(val) == 32  # 20 % of 160
    classes = image_classes(data)
    counted = collections.Counter(classes[i] for i in val)
    assert counted == {("a",): 10, ("b",): 10, ("c",): 10, ("a", "b"): 2}


def test_folder_validation_holds_out_whole_folders():
    sizes = {"g1": 40, "g2": 10, "g3": 30, "g4": 20}
    data = coco([(f"{g}/{g}/{i}.jpg", ["a"]) for g, n in sizes.items() for i in range(n)])
    for seed in range(5):
        val = validation_images(data, 0.25, seed, by="folder")
        folders = {i["file_name"].split("/")[0] for i in data["images"] if i["id"] in val}
        assert len(val) == sum(sizes[g] for g in folders) <= 25  # whole folders, within the share
        assert val == validation_images(data, 0.25, seed, by="folder")
    # no folder fits in the share: the smallest one
    val = validation_images(data, 0.05, 0, by="folder")
    assert {i["file_name"].split("/")[0] for i in data["images"] if i["id"] in val} == {"g2"}


@pytest.mark.parametrize("fraction, by, message", [(0.0, "image", "fraction"), (1.0, "image", "fraction"),
                                                   (0.2, "board", "by must be")])
def test_bad_validation_settings(fraction, by, message):
    with pytest.raises(ValueError, match=message):
        validation_images(coco([("x.png", ["a"])]), fraction, 0, by)


def test_validation_images_leave_every_training_set():
    data = coco([(f"{i}.png", [CLASSES[i % 3]]) for i in range(30)])
    train, val = split_off(data, validation_images(data, 0.2, 0))
    assert len(train["images"]) == 24 and len(val["images"]) == 6
    assert {a["image_id"] for a in val["annotations"]} == {i["id"] for i in val["images"]}
    sets = incremental_sets(train, coco([("t.png", ["a", "c"])]), [["a"], ["b", "c"]], val)
    val_names = {i["file_name"] for i in val["images"]}
    for name in ("phase0_train", "phase1_train", "joint_train"):
        assert not val_names & {i["file_name"] for i in sets[name]["images"]}, name
    for name in ("phase0_val", "phase1_val", "joint_val"):
        assert {i["file_name"] for i in sets[name]["images"]} == val_names, name
    # a phase's validation set holds the boxes of the classes seen so far, as its test set does
    assert {a["category_id"] for a in sets["phase0_val"]["annotations"]} == {1}
    assert {a["category_id"] for a in sets["phase1_val"]["annotations"]} == {1, 2, 3}
