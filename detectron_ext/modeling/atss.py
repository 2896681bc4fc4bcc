"""ATSS assignment (Zhang et al., CVPR 2020) as GFLv1 uses it: a pure tensor function."""
from typing import List

import torch
from detectron2.structures import Boxes, pairwise_iou


@torch.no_grad()
def atss_assign(anchors_per_level: List[torch.Tensor], gt_boxes: torch.Tensor, topk: int = 9,
                min_inside: float = 0.01) -> torch.Tensor:
    """Return, for each anchor (all levels concatenated), the index of its GT or -1.

    Per GT and per level the `topk` anchors whose centres are nearest the GT centre are candidates;
    threshold = mean + std (unbiased, torch's default) of the candidates' IoUs over all levels;
    positives have IoU >= threshold and their centre inside the GT by more than `min_inside`;
    an anchor positive for several GTs goes to the one of highest IoU.
    """
    anchors = torch.cat(anchors_per_level, dim=0)
    num_anchors, num_gt = anchors.shape[0], gt_boxes.shape[0]
    matched = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return matched

    ious = pairwise_iou(Boxes(anchors), Boxes(gt_boxes))  # (A, G)
    anchor_centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    gt_centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    distances = torch.cdist(anchor_centers, gt_centers)  # (A, G)

    candidates, start = [], 0
    for level in anchors_per_level:
        n = level.shape[0]
        k = min(topk, n)
        if k > 0:
            _, idx = distances[start:start + n].topk(k, dim=0, largest=False)
            candidates.append(idx + start)
        start += n
    candidates = torch.cat(candidates, dim=0)  # (K, G)
    cand_ious = ious.gather(0, candidates)  # (K, G)
    std = cand_ious.std(dim=0) if cand_ious.shape[0] > 1 else torch.zeros_like(cand_ious[0])
    threshold = cand_ious.mean(dim=0) + std
    is_pos = cand_ious >= threshold[None, :]

    cx, cy = anchor_centers[candidates, 0], anchor_centers[candidates, 1]  # (K, G)
    inside = torch.stack([cx - gt_boxes[:, 0], cy - gt_boxes[:, 1],
                          gt_boxes[:, 2] - cx, gt_boxes[:, 3] - cy], dim=0).min(dim=0).values
    is_pos &= inside > min_inside

    gt_index = torch.arange(num_gt, device=anchors.device).expand_as(candidates)
    ious_pos = torch.full_like(ious, -1.0)
    ious_pos[candidates[is_pos], gt_index[is_pos]] = ious[candidates[is_pos], gt_index[is_pos]]
    best_iou, best_gt = ious_pos.max(dim=1)
    return torch.where(best_iou >= 0, best_gt, matched)
