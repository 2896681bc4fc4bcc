"""SD-IDD distillation losses against hand-computed values; empty selections give 0, not NaN."""
import math

import pytest
import torch

from detectron_ext.distillation.losses import (background_qfl, classification_distillation, feature_distillation,
                                               standardise,
                                               regression_distillation)


def test_classification_distillation_hand_values():
    t = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    s = torch.tensor([[0.0, 2.0], [5.0, 5.0], [1.0, 0.0]], requires_grad=True)
    mask = torch.tensor([True, False, True])
    # anchor 0: 1; anchor 2: 4 + 1 = 5
    assert classification_distillation(t, s, mask).item() == pytest.approx(3.0)
    assert classification_distillation(t, s, mask, reduction="element").item() == pytest.approx(1.5)


def test_regression_distillation_hand_values():
    reg_max = 1  # 2 bins per side
    t = torch.zeros(2, 8)
    t[0, 0] = math.log(3.0)  # side 0 of anchor 0: teacher p = (0.75, 0.25); other sides uniform
    s = torch.zeros(2, 8, requires_grad=True)
    mask = torch.tensor([True, False])
    kl_side0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    out = regression_distillation(t, s, mask, weight=torch.tensor([0.5, 1.0]), reg_max=reg_max)
    assert out.item() == pytest.approx(0.5 * kl_side0 / 4, rel=1e-5)
    out.backward()
    assert s.grad[0].abs().sum() > 0 and s.grad[1].abs().sum() == 0


def test_regression_distillation_weighted_mean():
    """normalise="weight": Σ w·KL / Σ w, so a soft selection's scale does not depend on how many anchors
    carry a small weight; "count" divides by the selected anchors as the paper's 1/|BR|."""
    reg_max = 1
    t = torch.zeros(3, 8)
    t[:, 0] = math.log(3.0)
    s = torch.zeros(3, 8)
    kl = (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)) / 4  # the same KL on every anchor
    w = torch.tensor([0.9, 0.1, 0.0])
    mask = torch.ones(3, dtype=torch.bool)
    assert regression_distillation(t, s, mask, w, reg_max, normalise="weight").item() == pytest.approx(kl, rel=1e-5)
    assert regression_distillation(t, s, mask, w, reg_max).item() == pytest.approx(kl / 3, rel=1e-5)
    zero = torch.zeros(3)  # no weight anywhere: 0, not NaN
    assert regression_distillation(t, s, mask, zero, reg_max, normalise="weight").item() == 0.0
    with pytest.raises(ValueError, match="normalise must be count or weight"):
        regression_distillation(t, s, mask, w, reg_max, normalise="sum")


def test_feature_distillation_mean_vs_sum():
    t = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    s = torch.zeros(2, 4)
    mask = torch.tensor([True, True])
    assert feature_distillation(t, s, mask).item() == pytest.approx(0.5)
    assert feature_distillation(t, s, mask, reduction="sum").item() == pytest.approx(2.0)


def test_background_qfl_sums_the_qfl_at_target_zero_over_the_selected_anchors():
    logits = torch.tensor([[0.0, 2.0], [-3.0, 1.0], [5.0, 5.0]])
    mask = torch.tensor([True, True, False])
    sig = logits[:2].sigmoid()
    expected = (torch.nn.functional.softplus(logits[:2]) * sig ** 2).sum()  # BCE(x, 0) · σ(x)^β
    assert background_qfl(logits, mask, 2.0).item() == pytest.approx(expected.item(), rel=1e-6)
    # a confident old-class answer on background costs more than a quiet one
    assert background_qfl(torch.tensor([[3.0]]), torch.tensor([True])) > background_qfl(torch.tensor([[-3.0]]),
                                                                                          torch.tensor([True]))
    assert background_qfl(logits, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_standardised_features_ignore_the_scale_and_offset_of_a_channel():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 4, 5)
    g = 7.0 * f + 3.0  # the same pattern, 7x larger, shifted
    assert torch.allclose(standardise(f), standardise(g), atol=1e-4)
    z = standardise(g)
    assert torch.allclose(z.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(z.var(dim=(2, 3), unbiased=False), torch.ones(2, 3), atol=1e-3)
    assert torch.isfinite(standardise(torch.ones(1, 2, 3, 3))).all()  # a constant channel: 0, not NaN


@pytest.mark.parametrize("fn, shape", [(classification_distillation, (5, 3)),
                                       (regression_distillation, (5, 68)),
                                       (feature_distillation, (5, 8))])
def test_empty_selection_is_zero_not_nan(fn, shape):
    s = torch.randn(*shape, requires_grad=True)
    out = fn(torch.randn(*shape), s, torch.zeros(5, dtype=torch.bool))
    assert out.item() == 0.0 and not torch.isnan(out)
    out.backward()
    assert s.grad is not None and s.grad.eq(0).all()
    out = fn(torch.randn(0, shape[1]), torch.randn(0, shape[1], requires_grad=True), torch.zeros(0, dtype=torch.bool))
    assert out.item() == 0.0
