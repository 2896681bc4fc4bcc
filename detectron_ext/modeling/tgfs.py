"""TGFS, task-guided dynamic feature selection (../shared/spec/tgfs.md), as pure tensor functions.

For one image: each ground truth's candidate points on the competing levels (P3-P5) are scored by the
task losses they currently incur (cost = focal classification loss on the GT's class + loc_weight x
(1 - GIoU) of the predicted box, detached); a level's cost is the mean over its candidates (or over
the `quality_topk` cheapest); the GT takes its positives from the cheapest level (and any level within
`margin` of it). The choice is re-made at every visit of the GT's image (an online assigner), from the
current costs or, with `cost_momentum` > 0, from the GT's costs averaged over its visits, one an epoch
(tgfs_training.py's LevelCostMemory). Levels above the competing ones (P6/P7) keep the base assigner's
positives (`high_levels: base`) or get none; a GT without any candidate point keeps the base
assigner's positives. A GT's candidate points on the levels it did not pick are background
(`unselected: background`) or ignored by the classification loss (`ignore`, as FSAF ignores an
instance's region on the adjacent levels): as background, a level that loses once is trained to score
the object low, costs more the next time and never wins again. The selected samples' losses are
reweighted by a non-linear function of their quality q = exp(-cost), normalised to mean 1 per image.
"""
import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou

from ..settings import TGFS


@dataclass(frozen=True)
class TGFSOptions:
    """TGFS's options (choices and defaults: TGFS in detectron_ext/settings.py), see tgfs_options."""
    selection: str       # tgfs | base: keep the detector's own assignment (reweighting alone)
    num_levels: int      # the first `num_levels` pyramid levels compete (P3, P4, P5)
    region: str          # candidates: points inside the GT box and within radius x stride of its centre | box
    radius: float
    loc_weight: float    # cost = L_cls + loc_weight * L_loc
    focal_gamma: float   # the classification cost's focusing parameter
    quality_topk: int    # 0: a level's cost is the mean over its candidates; k: mean of its k cheapest
    margin: float        # levels whose cost is within `margin` of the best level's are selected too
    high_levels: str     # base: levels above the competing ones keep the base assigner's positives | none
    unselected: str      # a GT's candidates on the levels it did not pick: ignore (no cls loss) | background
    cost_momentum: float  # each GT's level costs averaged over its visits with this momentum (0: the current ones)
    reweight: str        # none | quality: w ~ q^gamma | focal: w ~ (1 - q)^gamma
    reweight_gamma: float

    def __post_init__(self):
        TGFS.check(**{("levels" if k == "num_levels" else k): v for k, v in dataclasses.asdict(self).items()})


def candidate_mask(points: torch.Tensor, point_strides: torch.Tensor, gt_boxes: torch.Tensor,
                   region: str = "center", radius: float = 1.5) -> torch.Tensor:
    """(R, G) bool: point r lies strictly inside GT g (and, for region 'center', within radius x
    its level's stride of the GT centre in both x and y, FCOS's centre sampling)."""
    x, y = points[:, 0, None], points[:, 1, None]
    inside = ((x > gt_boxes[None, :, 0]) & (y > gt_boxes[None, :, 1]) &
              (x < gt_boxes[None, :, 2]) & (y < gt_boxes[None, :, 3]))
    if region == "box":
        return inside
    centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    near = (points[:, None, :] - centers[None]).abs().max(dim=2).values < radius * point_strides[:, None]
    return inside & near


def pair_costs(cls_logits: torch.Tensor, pred_boxes: torch.Tensor, gt_boxes: torch.Tensor,
               gt_classes: torch.Tensor, loc_weight: float = 1.0, focal_gamma: float = 2.0) -> torch.Tensor:
    """(R, G) task cost of point r as a positive of GT g, detached: -(1-p)^gamma log p on the GT's
    class channel plus loc_weight x (1 - GIoU(predicted box r, GT g))."""
    logits = cls_logits.detach()[:, gt_classes].float()  # (R, G)
    p = logits.sigmoid()
    cls_cost = -((1 - p) ** focal_gamma) * F.logsigmoid(logits)
    loc_cost = 1 - generalized_box_iou(pred_boxes.detach().float(), gt_boxes.float())
    return cls_cost + loc_weight * loc_cost


def level_costs(costs: torch.Tensor, candidates: torch.Tensor, point_level: torch.Tensor, num_levels: int,
                topk: int = 0) -> torch.Tensor:
    """(L, G): per competing level, the mean cost of each GT's candidates there (topk > 0: of its
    `topk` cheapest candidates); +inf where a GT has no candidate on the level."""
    out = costs.new_full((num_levels, costs.shape[1]), float("inf"))
    for level in range(num_levels):
        mask = candidates & (point_level == level)[:, None]
        if not mask.any():
            continue
        masked = costs.masked_fill(~mask, float("inf"))
        if topk > 0:
            masked = masked.sort(dim=0).values[:topk]
        finite = torch.isfinite(masked)
        count = finite.sum(dim=0)
        total = torch.where(finite, masked, torch.zeros_like(masked)).sum(dim=0)
        out[level] = torch.where(count > 0, total / count.clamp(min=1), out[level])
    return out


def select_levels(per_level: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """(L, G) bool: the levels whose cost is within `margin` of each GT's cheapest (finite) level."""
    best = per_level.min(dim=0).values
    return torch.isfinite(per_level) & (per_level <= best[None] + margin)


def sample_weights(costs: torch.Tensor, mode: str = "quality", gamma: float = 1.0) -> torch.Tensor:
    """Loss weights of the selected samples from their costs: quality q = exp(-cost); 'quality':
    w ~ q^gamma (the well-predicted samples count more), 'focal': w ~ (1 - q)^gamma (the hard ones
    count more), 'none': 1; normalised to mean 1 so the positives' total weight is unchanged."""
    if mode == "none" or costs.numel() == 0:
        return torch.ones_like(costs)
    q = torch.exp(-costs)
    w = q ** gamma if mode == "quality" else (1 - q) ** gamma
    total = w.sum()
    return w * (w.numel() / total) if total > 0 else torch.ones_like(costs)


def smoothed_level_costs(previous: torch.Tensor, current: torch.Tensor, momentum: float) -> torch.Tensor:
    """(L, G): momentum x previous + (1 - momentum) x current where both are finite; the current costs
    where the previous are unknown (+inf), +inf where the current are (no candidate on the level now)."""
    known = torch.isfinite(previous) & torch.isfinite(current)
    mixed = momentum * previous.where(known, torch.zeros_like(previous)) + (1 - momentum) * current
    return torch.where(known, mixed, current)


def level_selection(costs: torch.Tensor, candidates: torch.Tensor, point_level: torch.Tensor,
                    opts: TGFSOptions, memory=None,
                    gt_keys: Optional[List[str]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(per-level costs (L, G), selected levels (L, G) bool) of each GT over the competing levels; with a
    memory (tgfs_training.LevelCostMemory, and the GTs' keys), the levels are chosen from the GTs' costs
    averaged over their visits."""
    per_level = level_costs(costs, candidates, point_level, opts.num_levels, opts.quality_topk)
    if memory is not None:
        per_level = memory.update(gt_keys, per_level)
    return per_level, select_levels(per_level, opts.margin)


def tgfs_match(costs: torch.Tensor, candidates: torch.Tensor, point_level: torch.Tensor,
               base_matched: torch.Tensor, opts: TGFSOptions, selection=None) -> torch.Tensor:
    """(R,) the GT index of each point or -1, from the selected levels (see the module docstring).
    A point positive for several GTs goes to the one for which it is cheapest. `selection`: the
    level_selection output when the caller already has it."""
    num_gt = costs.shape[1]
    competing = point_level < opts.num_levels
    per_level, selected = selection or level_selection(costs, candidates, point_level, opts)
    pos = candidates & competing[:, None] & selected[point_level.clamp(max=opts.num_levels - 1)]
    from_base = base_matched[:, None] == torch.arange(num_gt, device=costs.device)[None]  # (R, G)
    without_candidates = ~torch.isfinite(per_level).any(dim=0)  # (G,)
    pos |= from_base & without_candidates[None]
    if opts.high_levels == "base":
        pos |= from_base & ~competing[:, None]
    masked = costs.masked_fill(~pos, float("inf"))
    best_cost, best_gt = masked.min(dim=1)
    return torch.where(torch.isfinite(best_cost), best_gt, torch.full_like(best_gt, -1))


def unselected_candidates(candidates: torch.Tensor, point_level: torch.Tensor, selected: torch.Tensor,
                          matched: torch.Tensor) -> torch.Tensor:
    """(R,) bool: points that are a GT's candidates on a competing level that GT did not pick
    (`selected`: (L, G) from level_selection), and positive for no GT (what `unselected: ignore`
    leaves out of the classification loss)."""
    num_levels = selected.shape[0]
    lost = candidates & (point_level < num_levels)[:, None] & ~selected[point_level.clamp(max=num_levels - 1)]
    return lost.any(dim=1) & (matched < 0)


def tgfs_assign(points: torch.Tensor, point_strides: torch.Tensor, point_level: torch.Tensor,
                cls_logits: torch.Tensor, pred_boxes: torch.Tensor, gt_boxes: torch.Tensor,
                gt_classes: torch.Tensor, base_matched: torch.Tensor, opts: TGFSOptions,
                memory=None,
                gt_keys: Optional[List[str]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """One image: (matched GT index per point or -1, loss weight per point: 1 off the positives, 0 on
    the unselected candidates with `unselected: ignore`). `memory`, `gt_keys`: see level_selection."""
    num_points = points.shape[0]
    weights = points.new_ones(num_points)
    if gt_boxes.shape[0] == 0:
        return torch.full((num_points,), -1, dtype=torch.long, device=points.device), weights
    with torch.no_grad():
        costs = pair_costs(cls_logits, pred_boxes, gt_boxes, gt_classes, opts.loc_weight, opts.focal_gamma)
        if opts.selection == "base":
            matched = base_matched.clone()
        else:
            candidates = candidate_mask(points, point_strides, gt_boxes, opts.region, opts.radius)
            selection = level_selection(costs, candidates, point_level, opts, memory, gt_keys)
            matched = tgfs_match(costs, candidates, point_level, base_matched, opts, selection)
            if opts.unselected == "ignore":
                weights[unselected_candidates(candidates, point_level, selection[1], matched)] = 0
        pos = matched >= 0
        weights[pos] = sample_weights(costs[pos, matched[pos]], opts.reweight, opts.reweight_gamma).to(weights.dtype)
    return matched, weights


def points_and_levels(anchors, strides):
    """Anchor centres (R, 2) of all levels, each point's level index (R,) and stride (R,)."""
    points = torch.cat([a.get_centers() for a in anchors])
    level = torch.cat([torch.full((len(a),), k, dtype=torch.long, device=points.device) for k, a in enumerate(anchors)])
    return points, level, torch.as_tensor(strides, dtype=points.dtype, device=points.device)[level]


def assign_batch(anchors, strides, cls_logits: torch.Tensor, pred_boxes: torch.Tensor, gt_instances,
                 base_matched, opts: TGFSOptions, memory=None):
    """tgfs_assign for every image of a batch: anchors per level (Boxes), the levels' strides,
    class logits (N, R, C) and decoded predicted boxes (N, R, 4) -> lists of matched GT indices and
    loss weights per point. With opts.selection 'base' the base assignment is kept and only reweighted.
    With a memory, the GTs' keys come from their field gt_keys (tgfs_training.tag_gt_keys)."""
    points, level, point_strides = points_and_levels(anchors, strides)
    matched, weights = [], []
    for i, gt in enumerate(gt_instances):
        keys = gt.gt_keys if memory is not None else None
        m, w = tgfs_assign(points, point_strides, level, cls_logits[i], pred_boxes[i], gt.gt_boxes.tensor,
                           gt.gt_classes, base_matched[i], opts, memory, keys)
        matched.append(m)
        weights.append(w)
    return matched, weights, level


def tgfs_from_config(cfg) -> dict:
    """The detectors' TGFS arguments from cfg.MODEL.TGFS: options (None when disabled) and the
    cold-start length (iterations of the base assignment before TGFS takes over)."""
    t = cfg.MODEL.TGFS
    if not t.ENABLED:
        return {"tgfs": None, "tgfs_cold_start_iters": 0}
    return {"tgfs": tgfs_options(t), "tgfs_cold_start_iters": int(t.COLD_START_ITERS)}


def tgfs_options(t) -> TGFSOptions:
    """TGFSOptions from a MODEL.TGFS config node (whose defaults are the options' defaults)."""
    return TGFSOptions(selection=t.SELECTION, num_levels=t.NUM_LEVELS, region=t.REGION, radius=t.RADIUS,
                       loc_weight=t.LOC_WEIGHT, focal_gamma=t.FOCAL_GAMMA, quality_topk=t.QUALITY_TOPK,
                       margin=t.MARGIN, high_levels=t.HIGH_LEVELS, unselected=t.UNSELECTED,
                       cost_momentum=t.COST_MOMENTUM, reweight=t.REWEIGHT,
                       reweight_gamma=t.REWEIGHT_GAMMA)


def log_level_shares(matched, point_level, names):
    """Event-storage scalars tgfs/pos_<level>: the share of the batch's positives on each level."""
    from detectron2.utils.events import get_event_storage
    pos_levels = torch.cat([point_level[m >= 0] for m in matched])
    storage = get_event_storage()
    for k, name in enumerate(names):
        storage.put_scalar(f"tgfs/pos_{name}", float((pos_levels == k).sum()) / max(len(pos_levels), 1))
