"""GFLv1's losses as pure, element-wise tensor functions (the caller sums and normalises)."""
import torch
from torch.nn import functional as F


def quality_focal_loss(logits: torch.Tensor, quality: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """QFL per element: BCE(σ(x), y) · |y − σ(x)|^β, with y the IoU target (0 for negatives)."""
    sigma = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, quality, reduction="none")
    return bce * (quality - sigma).abs().pow(beta)


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL per distance: logits (n, reg_max+1), target (n,) in [0, reg_max).

    CE(logits, ⌊d⌋)·(⌊d⌋+1 − d) + CE(logits, ⌊d⌋+1)·(d − ⌊d⌋).
    """
    left = target.floor().long()
    right = left + 1
    w_left = right.to(target.dtype) - target
    w_right = target - left.to(target.dtype)
    return (F.cross_entropy(logits, left, reduction="none") * w_left
            + F.cross_entropy(logits, right, reduction="none") * w_right)
