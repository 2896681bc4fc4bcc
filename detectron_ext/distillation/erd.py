"""ERD (Elastic Response Distillation, CVPR 2022) as its public code does it: Hi-FT/ERD, MMDetection 3,
`GFLIncrementERD.sel_pos_single` (selection) and `GFLHeadIncrementERD.distill_loss_by_image_single`
(losses). Pure tensor functions on one image; the batch sums their results (MMDetection adds the
per-image losses that `multi_apply` returns).

Point by point (docs/methods.md, "ERD" lists the same):
1. classification: anchors whose max teacher sigmoid score > mean + 2·std (torch's unbiased std);
2. regression: anchors whose max box-distribution logit (over all 4·(reg_max+1)) > mean + 2·std,
   then class-aware NMS (IoU 0.005) of the teacher's decoded boxes, scored by its max class score
   and grouped by its arg-max class;
3. the teacher's boxes are decoded as its code does, anchor centre ± distances *in strides* (the
   stride is not applied: `teacher_boxes="code"`), or in pixels (`"stride"`, the evident intent);
4. classification loss: mean over the selected elements of (S − T)² on the old-class logits
   (`losses.classification_distillation(..., reduction="element")`);
5. regression loss: KL(softmax(T/τ) || softmax(S/τ)) averaged over the reg_max + 1 bins, × τ²
   (τ = 10), weighted by the student's detached max old-class score, summed over anchors × sides / 4,
   × 0.25 (the LD loss weight).
"""
import torch
from detectron2.layers import batched_nms
from torch.nn import functional as F

from .selection import mean_plus_k_std


def select_elastic_classification(teacher_logits: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """(1) Anchors whose max teacher sigmoid score exceeds mean + α·std over the image."""
    score = teacher_logits.sigmoid().max(dim=-1).values
    return score > mean_plus_k_std(score, alpha)


def decode_teacher_boxes(points: torch.Tensor, distances: torch.Tensor, strides: torch.Tensor,
                         mode: str = "code") -> torch.Tensor:
    """(3) Teacher boxes from anchor points (R, 2) and integral distances (R, 4) in strides:
    "code" = point ± distance (ERD's code: no stride), "stride" = point ± distance·stride (pixels)."""
    if mode == "stride":
        distances = distances * strides[:, None]
    elif mode != "code":
        raise ValueError(f"ERD teacher_boxes must be code or stride, not {mode!r}")
    return torch.cat([points - distances[:, :2], points + distances[:, 2:]], dim=1)


def select_elastic_regression(teacher_reg: torch.Tensor, teacher_logits: torch.Tensor, teacher_boxes: torch.Tensor,
                              alpha: float = 2.0, nms_iou: float = 0.005) -> torch.Tensor:
    """(2) Anchors whose max box-distribution logit exceeds mean + α·std, then NMS per teacher
    arg-max class (IoU `nms_iou`) scored by the teacher's max class score."""
    peak = teacher_reg.max(dim=-1).values
    idx = (peak > mean_plus_k_std(peak, alpha)).nonzero().flatten()
    mask = torch.zeros_like(peak, dtype=torch.bool)
    if idx.numel():
        score, label = teacher_logits[idx].sigmoid().max(dim=-1)
        mask[idx[batched_nms(teacher_boxes[idx].float(), score.float(), label, nms_iou)]] = True
    return mask


def elastic_regression_loss(teacher_reg, student_reg, student_old_logits, mask, reg_max: int = 16,
                            temperature: float = 10.0, weight: float = 0.25) -> torch.Tensor:
    """(5) LD's KL per side (mean over bins, × τ²), weighted by the student's detached max
    old-class sigmoid, Σ over anchors and sides / 4, × `weight`."""
    if not mask.any():
        return student_reg.sum() * 0.0
    bins = reg_max + 1
    t = teacher_reg[mask].detach().reshape(-1, bins) / temperature
    s = student_reg[mask].reshape(-1, bins) / temperature
    kl = F.kl_div(F.log_softmax(s, dim=-1), F.softmax(t, dim=-1), reduction="none").mean(dim=-1)
    w = student_old_logits[mask].detach().sigmoid().max(dim=-1).values.repeat_interleave(4)
    return weight * (kl * temperature ** 2 * w).sum() / 4.0
