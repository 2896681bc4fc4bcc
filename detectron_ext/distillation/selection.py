"""Region selection of SD-IDD (../shared/spec/sd-idd.md), pure tensor functions on one image. The
method's settings (α, β, K, the confidence) are arguments without defaults: theirs are in detectron_ext/settings.py.

Statistics use torch's std with `unbiased=True` (n - 1) by default; numpy's default is the biased
one (ddof=0). Every function returns an empty selection, never NaN, for degenerate input
(no anchors, no ground truth, a single value).
"""
import torch
from detectron2.structures import Boxes, pairwise_iou


def mean_plus_k_std(values: torch.Tensor, k: float, unbiased: bool = True) -> torch.Tensor:
    """mean + k·std of a 1-D tensor; std is 0 for fewer than two values; +inf for none."""
    if values.numel() == 0:
        return values.new_tensor(float("inf"))
    std = values.std(unbiased=unbiased) if values.numel() > 1 else values.new_tensor(0.0)
    return values.mean() + k * std


def anchor_confidence(teacher_logits: torch.Tensor, mode: str, temperature: float = 1.0):
    """Confidence of each anchor from the teacher's old-class logits (N, oc).

    softmax: max_k softmax(T/t)_k, as the paper writes it (with one old class it is always 1);
    sigmoid: max_k sigmoid(T)_k, GFL's own score (what ERD thresholds).
    """
    if mode == "softmax":
        return torch.softmax(teacher_logits / temperature, dim=-1).max(dim=-1).values
    if mode == "sigmoid":
        return teacher_logits.sigmoid().max(dim=-1).values
    raise ValueError(f"confidence mode must be 'softmax' or 'sigmoid', not {mode!r}")


def select_high_confidence(teacher_logits: torch.Tensor, alpha: float, mode: str, temperature: float = 1.0,
                           unbiased: bool = True, candidates=None) -> torch.Tensor:
    """CR (Algorithm 1): anchors whose confidence exceeds mean + α·std over the image's anchors; with
    `candidates` (N,) bool, the statistics and the selection over those anchors only."""
    c = anchor_confidence(teacher_logits, mode, temperature)
    if candidates is None:
        return c > mean_plus_k_std(c, alpha, unbiased)
    return candidates & (c > mean_plus_k_std(c[candidates], alpha, unbiased))


def select_cascaded_regression(anchor_points: torch.Tensor, student_boxes: torch.Tensor,
                               gt_boxes: torch.Tensor, topk: int, beta: float, per_gt: bool = True,
                               unbiased: bool = True):
    """BR (Algorithm 2). Stage 1: per GT, the `topk` anchor points nearest its centre (all levels
    together). Stage 2: keep candidates whose IoU u with their max-IoU GT exceeds mean + β·std of u
    over the candidates (per GT, or pooled over all GTs' candidates).

    Returns (mask (N,), u (N,)) with u the detached max IoU of each student box with any GT.
    """
    n = student_boxes.shape[0]
    mask = torch.zeros(n, dtype=torch.bool, device=student_boxes.device)
    if n == 0 or gt_boxes.shape[0] == 0:
        return mask, student_boxes.new_zeros(n)
    u = pairwise_iou(Boxes(student_boxes.detach()), Boxes(gt_boxes)).max(dim=1).values
    gt_centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    k = min(topk, n)
    candidates = torch.cdist(anchor_points, gt_centers).topk(k, dim=0, largest=False).indices  # (k, G)
    if per_gt:
        for g in range(candidates.shape[1]):
            idx = candidates[:, g]
            mask[idx[u[idx] > mean_plus_k_std(u[idx], beta, unbiased)]] = True
    else:
        idx = candidates.flatten().unique()
        mask[idx[u[idx] > mean_plus_k_std(u[idx], beta, unbiased)]] = True
    return mask, u


def difficulty_thresholds(student_boxes: torch.Tensor, gt_boxes: torch.Tensor):
    """FR steps 1-2: I (N,) max IoU of each anchor's box, m (N,) its GT, G (num_gt,) the largest I
    among the anchors matched to each GT (0 for a GT no anchor is matched to)."""
    iou = pairwise_iou(Boxes(student_boxes.detach()), Boxes(gt_boxes))
    best, m = iou.max(dim=1)
    g_max = torch.zeros(gt_boxes.shape[0], device=iou.device, dtype=iou.dtype)
    g_max = g_max.scatter_reduce(0, m, best, reduce="amax", include_self=True)
    return best, m, g_max


def select_difficulty_aware(student_boxes: torch.Tensor, gt_boxes: torch.Tensor, lam) -> torch.Tensor:
    """FR (Algorithm 3) with a hard threshold: anchors with I > 0 and I >= λ·G[m]. λ is a number
    or one value per GT, in (0, 1): an easy GT (high G) keeps few anchors, a hard one more."""
    n = student_boxes.shape[0]
    if n == 0 or gt_boxes.shape[0] == 0:
        return torch.zeros(n, dtype=torch.bool, device=student_boxes.device)
    return difficulty_mask(*difficulty_thresholds(student_boxes, gt_boxes), lam)


def difficulty_mask(best: torch.Tensor, matched: torch.Tensor, g_max: torch.Tensor, lam) -> torch.Tensor:
    """FR's selection from difficulty_thresholds' output: I > 0 and I >= λ·G[m]."""
    lam = torch.as_tensor(lam, dtype=best.dtype, device=best.device).detach()
    threshold = (lam[matched] if lam.ndim else lam) * g_max[matched]
    return (best > 0) & (best >= threshold)


def inside_any_box(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N,) whether each point (N, 2) lies inside at least one box (G, 4, XYXY)."""
    if boxes.shape[0] == 0:
        return torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    x, y = points[:, None, 0], points[:, None, 1]
    return ((x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])).any(dim=1)
