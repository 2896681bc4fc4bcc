"""tools/false_positives.py: each detection is true, confused (on another class's object) or background."""
import sys
from pathlib import Path

import torch
from detectron2.structures import Boxes, Instances
from pycocotools.coco import COCO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import false_positives  # noqa: E402


class FakeModel:
    """On every image: 'a' on the spur box (true on image 1), 'b' on it (confused), 'a' on nothing."""
    classes = ["a", "b"]

    def read(self, path):
        return path

    def __call__(self, images):
        inst = Instances((100, 100))
        inst.pred_boxes = Boxes(torch.tensor([[10.0, 10, 30, 30], [11, 11, 30, 30], [60, 60, 90, 90], [0, 0, 5, 5]]))
        inst.scores = torch.tensor([0.9, 0.5, 0.6, 0.1])  # the last under the score threshold
        inst.pred_classes = torch.tensor([0, 1, 0, 1])
        return [inst for _ in images]


def test_detections_are_sorted_into_true_confused_and_background():
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
                    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "spur"}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                                    {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 10, 20, 20]}]}
    coco.createIndex()
    table = false_positives.tally(FakeModel(), coco, "/nowhere", every=1, iou=0.5, score=0.3)
    # per 100 images, 2 images: 'a' true once, confused once (on spur), background twice
    assert table.loc["a", "true"] == 50 and table.loc["a", "confused"] == 50 and table.loc["a", "background"] == 100
    assert table.loc["a", "on spur"] == 50
    # 'b' never has a GT of its own: confused on 'a' (image 1) and on spur (image 2)
    assert table.loc["b", "true"] == 0 and table.loc["b", "confused"] == 100 and table.loc["b", "background"] == 0
