"""GFL's losses, Integral and box coder against values computed by hand."""
import math

import pytest
import torch
from fvcore.nn import giou_loss

from detectron_ext.modeling.box_coder import DistanceBoxCoder, integral
from detectron_ext.modeling.gfl_losses import distribution_focal_loss, quality_focal_loss


def bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_qfl_matches_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    quality = torch.tensor([[0.8, 0.0], [0.0, 0.3]])
    out = quality_focal_loss(logits, quality, beta=2.0)
    sig = lambda x: 1 / (1 + math.exp(-x))
    expected = [[bce(sig(0.0), 0.8) * (0.8 - 0.5) ** 2, bce(sig(2.0), 0.0) * sig(2.0) ** 2],
                [bce(sig(-1.0), 0.0) * sig(-1.0) ** 2, bce(sig(0.5), 0.3) * (sig(0.5) - 0.3) ** 2]]
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_qfl_is_zero_when_prediction_equals_target_quality():
    logits = torch.logit(torch.tensor([[0.6]]))
    assert quality_focal_loss(logits, torch.tensor([[0.6]])).item() == pytest.approx(0.0, abs=1e-9)


def test_dfl_matches_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0]])  # reg_max = 3
    target = torch.tensor([1.25])
    logp = torch.log_softmax(logits, dim=1)[0]
    expected = -logp[1] * 0.75 - logp[2] * 0.25
    assert distribution_focal_loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dfl_integer_target_uses_one_bin():
    logits = torch.tensor([[0.3, -0.2, 1.1]])
    logp = torch.log_softmax(logits, dim=1)[0]
    assert distribution_focal_loss(logits, torch.tensor([1.0])).item() == pytest.approx(-logp[1].item(), rel=1e-6)


def test_giou_loss_hand_case():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    iou = 1 / 7
    giou = iou - (9 - 7) / 9
    assert giou_loss(a, b, reduction="none").item() == pytest.approx(1 - giou, rel=1e-6)


def test_integral_expected_value():
    reg_max = 4
    logits = torch.full((1, 4 * (reg_max + 1)), -1e4)
    logits[0, 2] = 0.0                       # side 0: all mass on bin 2
    logits[0, 5 + 1] = logits[0, 5 + 3] = 0.0  # side 1: half on 1, half on 3
    logits[0, 10:15] = 0.0                   # side 2: uniform -> 2
    logits[0, 15 + 4] = 0.0                  # side 3: bin 4
    assert torch.allclose(integral(logits, reg_max), torch.tensor([[2.0, 2.0, 2.0, 4.0]]), atol=1e-5)


def test_box_coder_round_trip_and_stride_units():
    coder = DistanceBoxCoder(anchor_scale=8)
    anchors = torch.tensor([[-32.0, -32.0, 32.0, 32.0], [64.0, 64.0, 192.0, 192.0]])  # strides 8, 16
    boxes = torch.tensor([[-8.0, -16.0, 24.0, 4.0], [100.0, 90.0, 170.0, 160.0]])
    d = coder.get_deltas(anchors, boxes)
    assert torch.allclose(d[0], torch.tensor([1.0, 2.0, 3.0, 0.5]))  # centre (0,0), stride 8
    assert torch.allclose(coder.apply_deltas(d, anchors), boxes, atol=1e-5)
