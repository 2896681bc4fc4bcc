"""tools/teacher_on_new_boxes.py: a new-class box counts as detected by its best overlapping detection."""
import sys
from pathlib import Path

import torch
from detectron2.structures import Boxes, Instances
from pycocotools.coco import COCO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import teacher_on_new_boxes  # noqa: E402


class FakeTeacher:
    """Two old classes; on every image: a 'b' box on the spur (score 0.9) and an 'a' box on it (0.5)."""
    classes = ["a", "b"]

    def read(self, path):
        return path

    def __call__(self, images):
        inst = Instances((100, 100))
        inst.pred_boxes = Boxes(torch.tensor([[10.0, 10, 30, 30], [11, 11, 30, 30], [60, 60, 90, 90]]))
        inst.scores = torch.tensor([0.9, 0.5, 0.2])  # the third is under the score threshold
        inst.pred_classes = torch.tensor([1, 0, 0])
        return [inst for _ in images]


def test_tally_counts_the_best_overlapping_detection_per_box():
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
                    "categories": [{"id": 1, "name": "spur"}, {"id": 2, "name": "copper"}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                                    {"id": 2, "image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20]},
                                    {"id": 3, "image_id": 2, "category_id": 2, "bbox": [60, 60, 30, 30]}]}
    coco.createIndex()
    table = teacher_on_new_boxes.tally(FakeTeacher(), coco, "/nowhere", every=1, iou=0.5, score=0.3)
    assert table.loc["spur", "GT boxes"] == 2 and table.loc["spur", "detected"] == 2
    assert table.loc["spur", "as b"] == 2 and table.loc["spur", "detected %"] == 100.0
    assert table.loc["copper", "detected"] == 0 and table.loc["copper", "detected %"] == 0.0  # only a 0.2 box
    # every 2nd image: image 1 alone
    assert teacher_on_new_boxes.tally(FakeTeacher(), coco, "/", every=2, iou=0.5, score=0.3)["GT boxes"].sum() == 1
