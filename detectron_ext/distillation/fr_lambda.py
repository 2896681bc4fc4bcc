"""FR's learnable λ (../shared/spec/sd-idd.md, Algorithm 3), pure tensor functions.

FR keeps the anchors whose IoU I with their GT reaches λ·G (G: that GT's best IoU), i.e. the anchors
whose relative IoU r = I / G is at least λ. The paper's equation for λ's gradient is lost, and the
obvious formulations fail: a hard threshold passes no gradient, and a soft mask in a loss that is a
plain sum over the selection lowers the loss by selecting less, so λ runs to 1 (nothing selected).

Here λ learns from the IoU distribution itself: it maximises the separability of the anchors it keeps
from those it drops, the between-class variance of r over its total variance (Otsu's criterion η),
made differentiable with a soft mask w = sigmoid((r − λ) / τ). η is 0 when λ keeps every anchor and
when it keeps none, so its maximum is inside (0, 1) for any r that is not constant: λ cannot collapse.
As training improves the student's boxes, the distribution of r moves and λ follows it: it does not
stay put. The distillation loss itself uses the hard selection, so it exerts no pull on λ.
"""
import torch


def relative_iou(best_iou: torch.Tensor, matched_gt: torch.Tensor, gt_best_iou: torch.Tensor) -> torch.Tensor:
    """r = I / G[m] for the anchors that overlap their GT (I > 0): the values FR's threshold cuts."""
    keep = best_iou > 0
    return (best_iou[keep] / gt_best_iou[matched_gt[keep]].clamp(min=1e-12)).clamp(max=1.0)


def soft_otsu_separability(r: torch.Tensor, lam: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """η(λ) = w1·w0·(μ1 − μ0)² / var(r) in [0, 1] with soft weights sigmoid((r − λ)/τ): Otsu's
    criterion for the threshold λ on r. Differentiable in λ (r is treated as data); 0 for fewer than
    two values or a constant r, still attached to λ's graph."""
    r = r.detach().to(lam.dtype)
    zero = lam * 0.0
    if r.numel() < 2:
        return zero
    var = r.var(unbiased=False)
    if var <= 1e-12:
        return zero
    keep = torch.sigmoid((r - lam) / temperature)
    w1 = keep.mean()
    w0 = 1.0 - w1
    mu1 = (keep * r).sum() / keep.sum().clamp(min=1e-12)
    mu0 = ((1.0 - keep) * r).sum() / (1.0 - keep).sum().clamp(min=1e-12)
    return w1 * w0 * (mu1 - mu0) ** 2 / var
