"""ERD point by point against Hi-FT/ERD's code (detectron_ext/distillation/erd.py's numbered points)."""
import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detectron_ext.distillation import erd
from detectron_ext.distillation.losses import classification_distillation
from detectron_ext.modeling.distill_gfl import init_student_from_teacher

from test_distill_gfl import student_cfg, teacher_path  # noqa: F401  (fixture)
from test_models import batch


def test_1_classification_selection_thresholds_the_max_sigmoid_at_mean_plus_2_std():
    logits = torch.full((20, 2), -6.0)
    logits[3, 1] = 2.0  # one confident anchor
    logits[7, 0] = -5.0  # barely above the rest: not selected
    mask = erd.select_elastic_classification(logits)
    assert mask.nonzero().flatten().tolist() == [3]


def test_2_regression_selection_is_class_aware_nms_scored_by_the_teacher_class_score():
    reg = torch.zeros(30, 4 * 17)
    reg[:3, 0] = 10.0  # three anchors with a peaked distribution: above mean + 2 std of the max logit
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [0.5, 0.5, 10, 10]] + [[0.0, 0, 1, 1]] * 27)
    cls = torch.full((30, 2), -5.0)
    cls[0, 0], cls[1, 0], cls[2, 1] = 0.0, 1.0, -1.0  # 0 and 1 overlap in class 0; 2 is class 1
    mask = erd.select_elastic_regression(reg, cls, boxes, alpha=2.0, nms_iou=0.005)
    # class 0: anchor 1 (higher class score) suppresses 0, whatever their regression peaks; class 1 kept
    assert mask.nonzero().flatten().tolist() == [1, 2]
    reg[0, 0] = 12.0  # a higher regression peak for anchor 0 does not rank the NMS: still anchor 1
    assert erd.select_elastic_regression(reg, cls, boxes).nonzero().flatten().tolist() == [1, 2]


def test_3_teacher_boxes_without_the_stride_as_its_code_or_in_pixels():
    points = torch.tensor([[100.0, 50.0]])
    dist = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    strides = torch.tensor([8.0])
    assert erd.decode_teacher_boxes(points, dist, strides, "code").tolist() == [[99.0, 48.0, 103.0, 54.0]]
    assert erd.decode_teacher_boxes(points, dist, strides, "stride").tolist() == [[92.0, 34.0, 124.0, 82.0]]
    with pytest.raises(ValueError, match="code or stride"):
        erd.decode_teacher_boxes(points, dist, strides, "pixels")


def test_4_classification_loss_is_the_mean_over_selected_elements():  # ERD uses the shared L2, "element"
    t = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    s = torch.tensor([[0.0, 2.0], [5.0, 5.0], [1.0, 0.0]], requires_grad=True)
    mask = torch.tensor([True, False, True])
    assert classification_distillation(t, s, mask, "element").item() == pytest.approx((1 + 0 + 4 + 1) / 4)
    assert classification_distillation(t, s, torch.zeros(3, dtype=torch.bool), "element").item() == 0.0


def test_5_regression_loss_mean_over_bins_times_t2_weighted_by_student_old_score_over_4_times_025():
    reg_max, T = 1, 10.0  # 2 bins per side
    t = torch.zeros(2, 8)
    t[0, 0] = 30.0  # side 0 of anchor 0: teacher logits (30, 0) / T -> p = softmax(3, 0)
    s = torch.zeros(2, 8, requires_grad=True)
    old_logits = torch.tensor([[0.0, -1.0], [5.0, 5.0]])  # anchor 0: max sigmoid 0.5
    mask = torch.tensor([True, False])
    p = torch.softmax(torch.tensor([3.0, 0.0]), 0)
    kl_side0 = sum(float(pi) * math.log(float(pi) / 0.5) for pi in p) / 2  # mean over the 2 bins
    expected = 0.25 * (kl_side0 * T ** 2 * 0.5) / 4.0  # the other sides' KL is 0
    out = erd.elastic_regression_loss(t, s, old_logits, mask, reg_max, T, 0.25)
    assert out.item() == pytest.approx(expected, rel=1e-5)
    out.backward()
    assert s.grad[1].abs().sum() == 0


@pytest.mark.parametrize("images_per_gpu", [0, 2])
def test_per_image_losses_are_summed_over_the_images_of_one_gpu(teacher_path, images_per_gpu):  # noqa: F811
    """Its code sums per-image losses over a GPU's 2 images: the per-image mean × images_per_gpu, so a
    batch of 4 weighs as one of 2; 0 sums over the whole batch (4 images weigh twice 2)."""
    cfg = student_cfg(teacher_path, "erd")
    cfg.MODEL.ERD.IMAGES_PER_GPU = images_per_gpu
    model = build_model(cfg)
    init_student_from_teacher(model)
    with torch.no_grad():  # a student that differs from its teacher
        model.head.cls_score.weight.add_(torch.randn_like(model.head.cls_score.weight))
        model.head.bbox_pred.weight.add_(torch.randn_like(model.head.bbox_pred.weight))
    model.train()
    a, b = batch(True), batch(True)
    b["image"] = torch.flip(b["image"], dims=[2])
    with EventStorage():
        two = model([a, b])
        four = model([a, b, a, b])
        alone = [model([x]) for x in (a, b)]
    for k in ("loss_distill_cls", "loss_distill_reg"):
        assert alone[0][k].item() > 1e-3 and alone[1][k].item() > 1e-3
        if images_per_gpu:  # alone: one image's loss × 2; two: their sum
            assert two[k].item() == pytest.approx((alone[0][k].item() + alone[1][k].item()) / 2, rel=1e-4), k
            assert four[k].item() == pytest.approx(two[k].item(), rel=1e-4), k
        else:
            assert two[k].item() == pytest.approx(alone[0][k].item() + alone[1][k].item(), rel=1e-4), k
            assert four[k].item() == pytest.approx(2 * two[k].item(), rel=1e-4), k


def test_erd_reads_its_own_options_and_its_giou_weight_ignores_old_channels(teacher_path):  # noqa: F811
    cfg = student_cfg(teacher_path, "erd")
    cfg.MODEL.ERD.WEIGHT = 0.0
    model = build_model(cfg)
    init_student_from_teacher(model)
    model.train()
    image = batch(True)
    with EventStorage():
        losses = model([image])
        assert losses["loss_distill_cls"].item() == 0.0 and losses["loss_distill_reg"].item() == 0.0
        # the old classes' channels do not weigh the GIoU / DFL terms: changing them changes nothing
        with torch.no_grad():
            model.head.cls_score.bias[:2] += 3.0
        shifted = model([image])
    assert shifted["loss_bbox"].item() == pytest.approx(losses["loss_bbox"].item(), rel=1e-6)
