"""SD-IDD region selection on hand-built cases (CR, BR, FR)."""
import numpy as np
import pytest
import torch

from detectron_ext.distillation.selection import (anchor_confidence, difficulty_thresholds,
                                                  mean_plus_k_std, select_cascaded_regression,
                                                  select_difficulty_aware, select_high_confidence)


def test_cr_threshold_matches_numpy_with_stated_std_convention():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 3)).astype(np.float32)
    logits[:10, 0] += 6.0  # a few confident anchors
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    c = p.max(1)
    for unbiased, ddof in ((True, 1), (False, 0)):
        theta = c.mean() + 2.0 * c.std(ddof=ddof)
        mask = select_high_confidence(torch.from_numpy(logits), alpha=2.0, mode="softmax", unbiased=unbiased)
        assert mask.numpy().tolist() == (c > theta).tolist()
    assert mask[:10].all() and mask.sum() < 30


def test_cr_softmax_with_one_old_class_selects_nothing_sigmoid_still_works():
    logits = torch.tensor([[5.0], [-5.0], [-4.0], [-6.0], [-5.5]])
    assert anchor_confidence(logits, "softmax").eq(1).all()
    assert not select_high_confidence(logits, alpha=1.0, mode="softmax").any()
    assert select_high_confidence(logits, alpha=1.0, mode="sigmoid").tolist() == [True, False, False, False, False]


def test_mean_plus_k_std_degenerate_inputs():
    assert mean_plus_k_std(torch.zeros(0), 2.0) == float("inf")
    assert mean_plus_k_std(torch.tensor([0.3]), 2.0).item() == pytest.approx(0.3)
    assert not select_high_confidence(torch.zeros(0, 3), alpha=2.0, mode="sigmoid").any()


def test_br_topk_per_gt_then_statistics():
    # 6 anchor points on a line; one GT around x in [0, 10]; student boxes of decreasing quality
    points = torch.tensor([[5.0, 5.0], [6.0, 5.0], [4.0, 5.0], [8.0, 5.0], [30.0, 5.0], [50.0, 5.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 9.0, 10.0], [0.0, 0.0, 5.0, 10.0],
                          [0.0, 0.0, 2.0, 10.0], [0.0, 0.0, 10.0, 10.0], [40.0, 0.0, 60.0, 10.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    mask, u = select_cascaded_regression(points, boxes, gt, topk=4, beta=0.5)
    assert torch.allclose(u, torch.tensor([1.0, 0.9, 0.5, 0.2, 1.0, 0.0]))
    cand = torch.tensor([1.0, 0.9, 0.5, 0.2])  # the 4 nearest points (anchor 4 is far: excluded)
    theta = cand.mean() + 0.5 * cand.std()
    assert mask.tolist() == [bool(v > theta) for v in cand] + [False, False]
    assert mask.tolist() == [True, True, False, False, False, False]


def test_br_no_gt_and_pooled_statistics():
    points = torch.rand(10, 2) * 20
    boxes = torch.cat([points - 2, points + 2], dim=1)
    mask, u = select_cascaded_regression(points, boxes, torch.zeros(0, 4), topk=100, beta=2.0)
    assert not mask.any() and u.eq(0).all()
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0]])
    mask_pooled, _ = select_cascaded_regression(points, boxes, gts, topk=5, beta=0.0, per_gt=False)
    assert mask_pooled.dtype == torch.bool and mask_pooled.any()


def test_fr_per_gt_thresholds_easy_gt_keeps_fewer_anchors():
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],      # IoU 1.0 with GT 0 (easy GT: G = 1.0)
        [0.0, 0.0, 8.0, 10.0],       # 0.8
        [0.0, 0.0, 4.0, 10.0],       # 0.4
        [100.0, 100.0, 104.0, 110.0],  # 0.4 with GT 1 (hard GT: G = 0.4)
        [100.0, 100.0, 102.0, 110.0],  # 0.2
        [300.0, 300.0, 310.0, 310.0],  # overlaps nothing
    ])
    best, m, g = difficulty_thresholds(boxes, gts)
    assert torch.allclose(g, torch.tensor([1.0, 0.4]))
    mask = select_difficulty_aware(boxes, gts, lam=0.5)
    assert mask.tolist() == [True, True, False, True, True, False]
    mask = select_difficulty_aware(boxes, gts, lam=torch.tensor([0.7, 0.9]))  # one λ per GT
    assert mask.tolist() == [True, True, False, True, False, False]
    assert not select_difficulty_aware(boxes, torch.zeros(0, 4), 0.5).any()


def test_br_small_topk_bounds_what_the_cut_can_keep():
    # Samuelson: among K values no one lies more than (K-1)/sqrt(K) unbiased stds above their mean.
    # K = 6 (K = 100 at 800 px scaled to NEU-DET's 200 px) and beta = 2 (bound 2.04): at most one
    # candidate per GT survives, and only an isolated outlier; beta = 2.05 keeps none, whatever the boxes.
    gen = torch.Generator().manual_seed(0)
    gt = torch.tensor([[20.0, 20.0, 60.0, 60.0]])
    points = torch.rand(40, 2, generator=gen) * 80
    for _ in range(50):
        corner = torch.rand(40, 2, generator=gen) * 40
        boxes = torch.cat([corner, corner + 10 + torch.rand(40, 2, generator=gen) * 40], dim=1)
        assert select_cascaded_regression(points, boxes, gt, topk=6, beta=2.0)[0].sum() <= 1
        assert not select_cascaded_regression(points, boxes, gt, topk=6, beta=2.05)[0].any()
    # the one case that passes at beta = 2: five equal IoUs and one far above them
    points6 = torch.tensor([[40.0, 40.0]] * 6)
    boxes6 = torch.tensor([[20.0, 20.0, 60.0, 60.0]] + [[0.0, 0.0, 25.0, 25.0]] * 5)
    assert select_cascaded_regression(points6, boxes6, gt, topk=6, beta=2.0)[0].tolist() == [True] + [False] * 5


def test_inside_any_box():
    from detectron_ext.distillation.selection import inside_any_box
    points = torch.tensor([[5.0, 5.0], [15.0, 5.0], [50.0, 50.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [12.0, 0.0, 20.0, 8.0]])
    assert inside_any_box(points, boxes).tolist() == [True, True, False]
    assert inside_any_box(points, boxes[:0]).tolist() == [False, False, False]


def test_cr_over_candidates_takes_its_statistics_and_selection_there():
    """cr_on_labelled exclude: CR's mean + α·std over the anchors outside labelled boxes, and only those kept."""
    from detectron_ext.distillation.selection import select_high_confidence
    logits = torch.tensor([[5.0], [4.0], [-5.0], [-5.0], [-5.0], [-5.0], [-5.0], [0.0]])
    outside = torch.tensor([False, True, True, True, True, True, True, True])
    everywhere = select_high_confidence(logits, alpha=1.0, mode="sigmoid")
    assert everywhere.tolist()[:2] == [True, True]
    kept = select_high_confidence(logits, alpha=1.0, mode="sigmoid", candidates=outside)
    assert not kept[0] and kept[1] and not (kept & ~outside).any()
