"""GFLv1 (Li et al., NeurIPS 2020) as a detectron2 meta-architecture on top of DenseDetector."""
import logging
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.layers import batched_nms
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.structures import Boxes, Instances
from detectron2.structures.boxes import matched_pairwise_iou
from detectron2.utils.events import get_event_storage
from fvcore.nn import giou_loss
from torch import nn

from ..distributed import shared_normaliser
from ..precision import resolve_precision
from .atss import atss_assign
from .box_coder import DistanceBoxCoder, integral
from .decoding import StaticShapeDecoding
from .gfl_head import GFLHead
from .gfl_losses import distribution_focal_loss, quality_focal_loss
from .tgfs import TGFSOptions, assign_batch, log_level_shares, tgfs_from_config
from .tgfs_training import TGFSTraining


@META_ARCH_REGISTRY.register()
class GFL(TGFSTraining, StaticShapeDecoding, DenseDetector):
    """GFLv1: ATSS assignment, Quality Focal Loss, Distribution Focal Loss and GIoU loss.

    Loss normalisation follows MMDetection's reference: QFL summed over channels and anchors and
    divided by the number of positives; GIoU and DFL weighted per positive by its maximum detached
    class score w and divided by Σw (DFL also by 4 sides); both normalisers at least 1.
    With `tgfs` (MODEL.TGFS.ENABLED) TGFS re-assigns ATSS's positives and reweights their losses.
    """

    @configurable
    def __init__(self, *, backbone, head: nn.Module, head_in_features: Optional[List[str]] = None,
                 num_classes: int, reg_max: int, anchor_scale: float, atss_topk: int, qfl_beta: float,
                 qfl_weight: float, dfl_weight: float, giou_weight: float, test_score_thresh: float,
                 test_topk_candidates: int, test_nms_thresh: float, max_detections_per_image: int,
                 tgfs: Optional[TGFSOptions], tgfs_cold_start_iters: int, precision: str, pixel_mean, pixel_std):
        """Arguments as `from_config` reads them from MODEL.GFL (defaults: detectron_ext/config.py)."""
        super().__init__(backbone, head, head_in_features, pixel_mean=pixel_mean, pixel_std=pixel_std)
        self.num_classes = num_classes
        self.reg_max = reg_max
        shapes = backbone.output_shape()
        strides = [shapes[k].stride for k in self.head_in_features]
        # one point per location at x * stride (MMDetection's offset 0), carrying a square anchor
        self.anchor_generator = DefaultAnchorGenerator(
            sizes=[[anchor_scale * s] for s in strides], aspect_ratios=[1.0], strides=strides, offset=0.0)
        self.box2box_transform = DistanceBoxCoder(anchor_scale)
        self.atss_topk = atss_topk
        self.qfl_beta, self.qfl_weight = qfl_beta, qfl_weight
        self.dfl_weight, self.giou_weight = dfl_weight, giou_weight
        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image
        self.setup_tgfs(tgfs, tgfs_cold_start_iters)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.precision = precision

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        g = cfg.MODEL.GFL
        shapes = backbone.output_shape()
        head = GFLHead(cfg, [shapes[f] for f in g.IN_FEATURES])
        precision = resolve_precision(cfg.MODEL.PRECISION, cfg.MODEL.DEVICE)
        if cfg.MODEL.PRECISION == "auto":
            logging.getLogger(__name__).info(f"precision auto: {precision} on {cfg.MODEL.DEVICE}")
        return {"backbone": backbone, "head": head, "head_in_features": list(g.IN_FEATURES),
                "num_classes": g.NUM_CLASSES, "reg_max": g.REG_MAX, "anchor_scale": g.ANCHOR_SCALE,
                "atss_topk": g.ATSS_TOPK, "qfl_beta": g.QFL_BETA, "qfl_weight": g.QFL_WEIGHT,
                "dfl_weight": g.DFL_WEIGHT, "giou_weight": g.GIOU_WEIGHT,
                "test_score_thresh": g.SCORE_THRESH_TEST, "test_topk_candidates": g.TOPK_CANDIDATES_TEST,
                "test_nms_thresh": g.NMS_THRESH_TEST,
                "max_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE, "precision": precision,
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD, **tgfs_from_config(cfg)}

    # ---- precision -------------------------------------------------------------------------------
    def autocast(self, enabled: bool = True):
        """bf16 autocast for the backbone and head when `precision` is bf16 (a no-op context for fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled and self.precision == "bf16")

    def forward(self, batched_inputs):
        with self.autocast():
            return super().forward(batched_inputs)

    @staticmethod
    def fp32(tensors):
        return [t.float() for t in tensors]

    # ---- dense predictions -------------------------------------------------------------------
    def dense_predictions(self, features, predictions):
        """Flatten per-level outputs: anchors (list of Boxes per level), class logits (N, R, C),
        regression logits (N, R, 4(reg_max+1))."""
        cls, reg = self._transpose_dense_predictions(predictions, [self.num_classes, 4 * (self.reg_max + 1)])
        anchors = self.anchor_generator(features)
        return anchors, torch.cat(cls, dim=1), torch.cat(reg, dim=1)

    def assign(self, anchors: List[Boxes], gt_instances: List[Instances]) -> List[torch.Tensor]:
        per_level = [a.tensor for a in anchors]
        return [atss_assign(per_level, gt.gt_boxes.tensor, self.atss_topk) for gt in gt_instances]

    def training_assignment(self, anchors: List[Boxes], cls_logits, reg_logits, gt_instances):
        """ATSS's matches, or after TGFS's cold start TGFS's matches and loss weights (else None)."""
        matched = self.assign(anchors, gt_instances)
        if not self.tgfs_active():
            return matched, None
        flat = Boxes.cat(anchors).tensor
        pred_boxes = torch.stack([self.box2box_transform.apply_deltas(integral(r.detach(), self.reg_max), flat)
                                  for r in reg_logits])
        matched, weights, level = assign_batch(anchors, self.anchor_generator.strides, cls_logits, pred_boxes,
                                               gt_instances, matched, self.tgfs, self.tgfs_memory)
        log_level_shares(matched, level, self.head_in_features)
        return matched, weights

    def forward_training(self, images, features, predictions, gt_instances):
        with self.autocast(enabled=False):  # assignment and losses in fp32
            return self.forward_losses(images, self.fp32(features), [self.fp32(p) for p in predictions],
                                       gt_instances)

    def forward_losses(self, images, features, predictions, gt_instances):
        anchors, cls_logits, reg_logits = self.dense_predictions(features, predictions)
        matched, weights = self.training_assignment(anchors, cls_logits, reg_logits, gt_instances)
        return self.losses(Boxes.cat(anchors).tensor, cls_logits, reg_logits, gt_instances, matched,
                           sample_weights=weights)

    def losses(self, anchors: torch.Tensor, cls_logits, reg_logits, gt_instances, matched,
               class_channels: Optional[slice] = None, sample_weights=None) -> Dict[str, torch.Tensor]:
        """GFL losses for a batch. `class_channels` restricts QFL to a channel range (the new
        classes in incremental learning); None means all channels. `sample_weights` (per image, a
        weight per anchor, TGFS's) scale each anchor's QFL, GIoU and DFL terms."""
        n_img, n_anchor, _ = cls_logits.shape
        matched = torch.stack(matched)  # (N, R)
        pos = matched >= 0
        num_pos = int(pos.sum())
        get_event_storage().put_scalar("num_pos_anchors", num_pos / max(n_img, 1))

        gt_boxes = torch.zeros(n_img, n_anchor, 4, device=anchors.device)
        gt_classes = torch.zeros(n_img, n_anchor, dtype=torch.long, device=anchors.device)
        for i, gt in enumerate(gt_instances):
            if len(gt) > 0:
                idx = matched[i].clamp(min=0)
                gt_boxes[i] = gt.gt_boxes.tensor[idx]
                gt_classes[i] = gt.gt_classes[idx]

        pos_anchors = anchors[None].expand(n_img, -1, -1)[pos]
        pos_reg = reg_logits[pos]  # (P, 4(reg_max+1))
        pos_gt = gt_boxes[pos]
        pred_dist = integral(pos_reg, self.reg_max)
        pred_boxes = self.box2box_transform.apply_deltas(pred_dist, pos_anchors)

        quality = torch.zeros_like(cls_logits)
        if num_pos > 0:
            iou = matched_pairwise_iou(Boxes(pred_boxes.detach()), Boxes(pos_gt))
            quality[pos, gt_classes[pos]] = iou.clamp(min=0).to(quality.dtype)
        if class_channels is None:
            class_channels = slice(0, self.num_classes)
        qfl = quality_focal_loss(cls_logits[..., class_channels], quality[..., class_channels], self.qfl_beta)
        sample_w = torch.stack(sample_weights) if sample_weights is not None else None
        if sample_w is not None:
            qfl = qfl * sample_w[..., None]
        loss_qfl = qfl.sum() / shared_normaliser(num_pos)

        # GIoU / DFL weight: the positive's max score over the QFL's channels (ERD: the new classes')
        weight = cls_logits[..., class_channels].detach().sigmoid()[pos].max(dim=1).values if num_pos > 0 \
            else pred_dist.new_zeros(0)
        weight_sum = shared_normaliser(float(weight.sum()))
        if sample_w is not None:
            weight = weight * sample_w[pos]
        loss_giou = (giou_loss(pred_boxes, pos_gt, reduction="none") * weight).sum() / weight_sum
        target_dist = self.box2box_transform.get_deltas(pos_anchors, pos_gt).clamp(0, self.reg_max - 0.1)
        dfl = distribution_focal_loss(pos_reg.reshape(-1, self.reg_max + 1), target_dist.reshape(-1))
        loss_dfl = (dfl * weight.repeat_interleave(4)).sum() / 4.0 / weight_sum
        return {"loss_qfl": self.qfl_weight * loss_qfl, "loss_bbox": self.giou_weight * loss_giou,
                "loss_dfl": self.dfl_weight * loss_dfl}

    # ---- inference ----------------------------------------------------------------------------
    def forward_inference(self, images, features, predictions):
        with self.autocast(enabled=False):  # decoding and NMS in fp32
            return self.decode_detections(images, self.fp32(features), [self.fp32(p) for p in predictions])

    def decode_detections(self, images, features, predictions):
        cls, reg = self._transpose_dense_predictions(predictions, [self.num_classes, 4 * (self.reg_max + 1)])
        anchors = self.anchor_generator(features)
        results = []
        for i, image_size in enumerate(images.image_sizes):
            scores = [x[i].sigmoid() for x in cls]
            deltas = [integral(x[i], self.reg_max) for x in reg]
            pred = self._decode_multi_level_predictions(anchors, scores, deltas, self.test_score_thresh,
                                                        self.test_topk_candidates, image_size)
            pred.pred_boxes.clip(image_size)
            keep = batched_nms(pred.pred_boxes.tensor, pred.scores, pred.pred_classes, self.test_nms_thresh)
            results.append(pred[keep[: self.max_detections_per_image]])
        return results

