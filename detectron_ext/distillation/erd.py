"""ERD's (Elastic Response Distillation, CVPR 2022) selection rules, as its public code does them."""
import torch
from torchvision.ops import nms

from .selection import mean_plus_k_std


def select_elastic_classification(teacher_logits: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Anchors whose max teacher sigmoid score exceeds mean + α·std over the image."""
    score = teacher_logits.sigmoid().max(dim=-1).values
    return score > mean_plus_k_std(score, alpha)


def select_elastic_regression(teacher_reg: torch.Tensor, teacher_boxes: torch.Tensor, alpha: float = 2.0,
                              nms_iou: float = 0.005) -> torch.Tensor:
    """Anchors whose max box-distribution logit exceeds mean + α·std, then NMS (IoU 0.005) on the
    teacher's decoded boxes scored by that maximum."""
    score = teacher_reg.max(dim=-1).values
    mask = score > mean_plus_k_std(score, alpha)
    idx = mask.nonzero().flatten()
    keep = idx[nms(teacher_boxes[idx].float(), score[idx].float(), nms_iou)] if idx.numel() else idx
    out = torch.zeros_like(mask)
    out[keep] = True
    return out
