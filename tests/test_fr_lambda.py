"""FR's learnable λ: Otsu's criterion on the relative IoU, against hand-computed values, and why the
naive soft-mask formulation collapses while this one settles inside (0, 1)."""
import pytest
import torch

from detectron_ext.distillation.fr_lambda import relative_iou, soft_otsu_separability


def test_relative_iou_divides_by_the_gt_best_and_drops_non_overlapping_anchors():
    best = torch.tensor([0.8, 0.4, 0.0, 0.3])
    matched = torch.tensor([0, 0, 1, 1])
    g_best = torch.tensor([0.8, 0.6])
    assert torch.allclose(relative_iou(best, matched, g_best), torch.tensor([1.0, 0.5, 0.5]))


def test_separability_matches_hand_computed_otsu_value_with_a_sharp_mask():
    r = torch.tensor([0.2, 0.4, 0.9, 1.0])
    lam = torch.tensor(0.5)
    # kept {0.9, 1.0}: w1 = 0.5, mu1 = 0.95; dropped: mu0 = 0.3; biased var(r) = 0.111875
    expected = 0.5 * 0.5 * 0.65 ** 2 / 0.111875
    assert soft_otsu_separability(r, lam, temperature=1e-4).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("r", [torch.zeros(0), torch.tensor([0.7]), torch.full((5,), 0.6)])
def test_degenerate_distributions_give_zero_with_a_gradient_not_nan(r):
    rho = torch.tensor(0.3, requires_grad=True)
    eta = soft_otsu_separability(r, torch.sigmoid(rho))
    eta.backward()
    assert eta.item() == 0.0 and rho.grad is not None and torch.isfinite(rho.grad)


def descend(objective, lam0, steps=400, lr=0.5):
    rho = torch.logit(torch.tensor(lam0)).requires_grad_(True)
    opt = torch.optim.SGD([rho], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        objective(torch.sigmoid(rho)).backward()
        opt.step()
    return torch.sigmoid(rho).item()


def bimodal_r():
    g = torch.Generator().manual_seed(0)
    low = 0.25 + 0.05 * torch.randn(200, generator=g)
    high = 0.85 + 0.05 * torch.randn(60, generator=g)
    return torch.cat([low, high]).clamp(0.01, 1.0)


@pytest.mark.parametrize("lam0", [0.1, 0.5, 0.95])
def test_learnable_lambda_settles_between_the_modes_from_any_start(lam0):
    r = bimodal_r()
    lam = descend(lambda lam: 1.0 - soft_otsu_separability(r, lam), lam0)
    assert 0.4 < lam < 0.7  # the valley between the modes (0.25 and 0.85)


def test_naive_soft_mask_sum_collapses_lambda_to_one():
    """The formulation the spec warns about: a loss Σ w_i·ℓ_i with w = sigmoid((r − λ)/τ) is lowest
    when nothing is selected, so λ runs to 1 whatever the per-anchor losses ℓ are."""
    r = bimodal_r()
    per_anchor_loss = torch.rand(r.shape[0], generator=torch.Generator().manual_seed(1))
    lam = descend(lambda lam: (torch.sigmoid((r - lam) / 0.05) * per_anchor_loss).mean(), 0.5)
    assert lam > 0.95


def test_lambda_follows_the_distribution_as_it_moves():
    """As the student's boxes improve, the relative IoUs shift: λ moves with them."""
    r = bimodal_r()
    lam_before = descend(lambda lam: 1.0 - soft_otsu_separability(r, lam), 0.5)
    lam_after = descend(lambda lam: 1.0 - soft_otsu_separability((r + 0.1).clamp(max=1.0), lam), lam_before)
    assert lam_after > lam_before + 0.05
