"""SD-IDD distillation losses on selected anchors, pure tensor functions (one image or a batch).

An empty selection gives an exact zero that still belongs to the student's graph (never NaN).
"""
import torch
from torch.nn import functional as F


def _zero(student: torch.Tensor) -> torch.Tensor:
    return student.sum() * 0.0


def classification_distillation(teacher_logits, student_logits, mask, reduction: str = "anchor"):
    """L2 between raw old-class logits (N, oc) on the selected anchors.

    reduction "anchor": Σ over channels, mean over selected anchors (the paper's ||T_i − S_i||²);
    "element": mean over every selected element (ERD's code)."""
    if not mask.any():
        return _zero(student_logits)
    sq = (teacher_logits[mask].detach() - student_logits[mask]) ** 2
    return sq.sum(dim=1).mean() if reduction == "anchor" else sq.mean()


def regression_distillation(teacher_reg, student_reg, mask, weight=None, reg_max: int = 16,
                            temperature: float = 1.0, normalise: str = "count"):
    """(1/|BR|) Σ_j w_j · KL(softmax(T_j/τ) || softmax(S_j/τ)) · τ², the KL taken per box side over
    its reg_max + 1 bins and averaged over the 4 sides; w (detached) defaults to 1. `normalise`
    "weight" divides by Σ_j w_j instead of |BR|: a weighted mean, for weights that select softly."""
    if normalise not in ("count", "weight"):
        raise ValueError(f"normalise must be count or weight, not {normalise!r}")
    if not mask.any():
        return _zero(student_reg)
    bins = reg_max + 1
    t = teacher_reg[mask].detach().reshape(-1, 4, bins) / temperature
    s = student_reg[mask].reshape(-1, 4, bins) / temperature
    kl = F.kl_div(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), reduction="none", log_target=True)
    per_anchor = kl.sum(dim=-1).mean(dim=-1) * temperature ** 2
    w = torch.ones_like(per_anchor) if weight is None else weight[mask].detach().to(per_anchor.dtype)
    total = (w * per_anchor).sum()
    return total / mask.sum() if normalise == "count" else total / w.sum().clamp(min=1e-6)


def feature_distillation(teacher_feat, student_feat, mask, reduction: str = "mean"):
    """(1/|FR|) Σ_i MSE(F^T_i, F^S_i) on FPN features (N, C) at the selected locations; "mean"
    averages over the C channels, "sum" takes the squared norm (C times larger)."""
    if not mask.any():
        return _zero(student_feat)
    sq = (teacher_feat[mask].detach() - student_feat[mask]) ** 2
    per_anchor = sq.mean(dim=1) if reduction == "mean" else sq.sum(dim=1)
    return per_anchor.mean()


def background_qfl(student_logits, mask, beta: float = 2.0):
    """Σ of the QFL with target 0 (background) over the selected anchors' channels (N, C): the student's
    own classification loss on channels it has no label for, where `mask` says they are background."""
    from ..modeling.gfl_losses import quality_focal_loss  # here: detectron_ext.modeling imports this module

    if not mask.any():
        return _zero(student_logits)
    logits = student_logits[mask]
    return quality_focal_loss(logits, torch.zeros_like(logits), beta).sum()


def standardise(feature: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """A feature map (B, C, H, W) with each channel of each image at zero mean and unit variance over its
    locations (as PKD does before its feature MSE): the distillation sees the pattern, not the scale."""
    mean = feature.mean(dim=(2, 3), keepdim=True)
    std = feature.var(dim=(2, 3), keepdim=True, unbiased=False).add(eps).sqrt()
    return (feature - mean) / std
