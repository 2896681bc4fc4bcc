"""ATSS on hand-built cases."""
import torch

from detectron_ext.modeling.atss import atss_assign


def square(cx, cy, side):
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def test_atss_hand_case_threshold_and_centre_rule():
    # one level, 4 anchors of side 10; GT centred on anchor 0
    anchors = torch.tensor([square(5, 5, 10), square(15, 5, 10), square(5, 15, 10), square(40, 40, 10)])
    gt = torch.tensor([[0.0, 0.0, 11.0, 11.0]])
    # topk 3 candidates: anchors 0, 1, 2 (nearest centres). IoUs: 100/121, and anchors 1/2: 6*10/(121+100-60)
    m = atss_assign([anchors], gt, topk=3)
    ious = torch.tensor([100 / 121, 60 / 161, 60 / 161])
    thr = ious.mean() + ious.std()  # unbiased std: only anchor 0 passes
    assert ious[0] >= thr and ious[1] < thr
    assert m.tolist() == [0, -1, -1, -1]


def test_atss_conflict_goes_to_highest_iou_and_empty_gt():
    anchors = torch.tensor([square(10, 10, 20), square(50, 50, 20)])
    gts = torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 30.0, 30.0]])
    m = atss_assign([anchors], gts, topk=1)  # one candidate per GT: std 0, threshold = its IoU
    assert m.tolist() == [0, -1]  # anchor 0 matches both; GT 0 has IoU 1
    assert atss_assign([anchors], torch.zeros(0, 4)).tolist() == [-1, -1]


def test_atss_candidates_taken_per_level():
    lvl1 = torch.tensor([square(x, 8, 8) for x in (4, 12, 20, 28)])
    lvl2 = torch.tensor([square(x, 16, 32) for x in (16, 48)])
    gt = torch.tensor([square(16, 16, 30)])
    m = atss_assign([lvl1, lvl2], gt, topk=2)
    # the large anchor on level 2 (same size as the GT) must win; small far anchors must not
    assert m[4] == 0
    assert (m[[0, 3]] == -1).all()
