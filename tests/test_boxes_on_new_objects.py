"""tools/boxes_on_new_objects.py: each model's decoded boxes at a GT box's ATSS positives, against the box,
in the resized input's pixels."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from pycocotools.coco import COCO

from helpers import run_config, tiny_params

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import boxes_on_new_objects  # noqa: E402

DISTANCE = 2  # every anchor point's box: the point ± 2 strides on every side


class Resizing:
    """A predictor around a real GFL whose every box is known, reading 32 px images and doubling them."""

    def __init__(self):
        self.model = build_model(run_config(tiny_params())).eval()
        head = self.model.head
        with torch.no_grad():
            head.bbox_pred.weight.zero_()
            head.bbox_pred.bias.fill_(-50.0)
            bins = self.model.reg_max + 1
            head.bbox_pred.bias[torch.arange(4) * bins + DISTANCE] = 50.0

    def read(self, path):
        return np.zeros((32, 32, 3), dtype=np.uint8)

    def preprocess(self, img):
        return torch.zeros(3, 64, 64)


def coco_of(boxes_xywh):
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "file_name": "1.jpg"}], "categories": [{"id": 1, "name": "spur"}],
                    "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b}
                                    for i, b in enumerate(boxes_xywh)]}
    coco.createIndex()
    return coco


def test_a_box_that_one_anchor_point_predicts_exactly_has_a_best_iou_of_one_in_the_resized_pixels():
    # the GT (16 px in the 32 px image) is 32 px wide at 64 px, centred on the stride-8 point (32, 32), whose
    # box is 32 ± 16: exact there (unscaled, the box would be a quarter of it: IoU 0.25)
    fit = boxes_on_new_objects.box_fit(Resizing(), coco_of([[8, 8, 16, 16], [20, 4, 8, 8]]), "/nowhere", every=1)
    assert list(fit["class"]) == ["spur", "spur"]
    assert fit.loc[0, "best"] == 1.0
    assert 0 < fit.loc[0, "mean"] < 1.0  # the other positives' boxes are shifted squares
    assert fit.loc[1, "best"] == pytest.approx(0.25)  # 16 px at 64 px, centred on (48, 16): inside its 32 px box
