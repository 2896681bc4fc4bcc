"""detectron2 v0.6's FCOS, registered and configurable from yaml, with three v0.6 bugs fixed:

1. its head cannot be built with GN: RetinaNetHead test-builds `get_norm("GN", 1)`, i.e.
   GroupNorm(32, 1) -> we pass a GroupNorm factory that accepts the 1-channel probe;
2. it crashes on images without boxes (max over an empty GT dimension in `match_anchors`, indexing
   empty GT tensors in `label_anchors`) -> such images get all-background labels;
3. its box branch predicts the distances to the box's sides (in strides) as a plain linear output, which
   may be negative: a negative one inverts the box, whose GIoU loss is then 1 with no gradient back to
   a valid box. From ImageNet features (EfficientNet-Lite0, DeepPCB, 320 px) every positive's distances
   went negative within the first 100 iterations and stayed there (GIoU loss 1.0 to the end, mAP50 0) ->
   the distances are exp of the output, as in the FCOS paper (`PositiveDistanceFCOSHead`).

With MODEL.TGFS.ENABLED the training-time assignment is TGFS's (./tgfs.py) over FCOS's own rule,
and the positives' losses are reweighted; inference is upstream's, untouched.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.meta_arch.fcos import FCOS, FCOSHead
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import get_event_storage
from fvcore.nn import giou_loss, sigmoid_focal_loss_jit

from .decoding import StaticShapeDecoding
from .norm import head_norm
from .tgfs import TGFSOptions, assign_batch, log_level_shares, tgfs_from_config
from .tgfs_training import TGFSTraining


class PositiveDistanceFCOSHead(FCOSHead):
    """FCOSHead whose box branch gives exp(output): positive distances to the box's sides (in units of
    the level's stride, the box coder's normalisation), the FCOS paper's exp(x) per level."""

    def forward(self, features):
        logits, bbox_reg, ctrness = super().forward(features)
        return logits, [torch.exp(b) for b in bbox_reg], ctrness


@META_ARCH_REGISTRY.register()
class ConfigurableFCOS(TGFSTraining, StaticShapeDecoding, FCOS):
    @configurable
    def __init__(self, *, tgfs: Optional[TGFSOptions] = None, tgfs_cold_start_iters: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.setup_tgfs(tgfs, tgfs_cold_start_iters)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        f = cfg.MODEL.FCOS
        shapes = backbone.output_shape()
        input_shape = [shapes[k] for k in f.IN_FEATURES]
        head = PositiveDistanceFCOSHead(input_shape=input_shape, conv_dims=[f.HEAD_CHANNELS] * f.NUM_CONVS,
                        num_classes=f.NUM_CLASSES, norm=head_norm(f.NORM), prior_prob=f.PRIOR_PROB)
        return {"backbone": backbone, "head": head, "head_in_features": list(f.IN_FEATURES),
                "num_classes": f.NUM_CLASSES, "center_sampling_radius": f.CENTER_SAMPLING_RADIUS,
                "focal_loss_alpha": f.FOCAL_LOSS_ALPHA, "focal_loss_gamma": f.FOCAL_LOSS_GAMMA,
                "test_score_thresh": f.SCORE_THRESH_TEST, "test_topk_candidates": f.TOPK_CANDIDATES_TEST,
                "test_nms_thresh": f.NMS_THRESH_TEST,
                "max_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD, **tgfs_from_config(cfg)}

    def forward_training(self, images, features, predictions, gt_instances):
        if not self.tgfs_active():
            return super().forward_training(images, features, predictions, gt_instances)
        logits, deltas, ctrness = self._transpose_dense_predictions(predictions, [self.num_classes, 4, 1])
        anchors = self.anchor_generator(features)
        flat = Boxes.cat(anchors).tensor
        pred_boxes = torch.stack([self.box2box_transform.apply_deltas(d.detach(), flat) for d in torch.cat(deltas, 1)])
        matched, weights, level = assign_batch(anchors, self.anchor_generator.strides, torch.cat(logits, 1),
                                               pred_boxes, gt_instances, self.match_anchors(anchors, gt_instances),
                                               self.tgfs, self.tgfs_memory)
        log_level_shares(matched, level, self.head_in_features)
        labels, boxes = self.labels_from_matches(matched, gt_instances, len(flat), flat.device)
        return self.weighted_losses(anchors, logits, labels, deltas, boxes, ctrness, weights)

    @torch.no_grad()
    def match_anchors(self, anchors: List[Boxes], gt_instances: List[Instances]):
        """Upstream's FCOS rule, image by image; an image without boxes matches nothing."""
        num_anchors = sum(len(a) for a in anchors)
        return [torch.full((num_anchors,), -1, dtype=torch.long, device=anchors[0].tensor.device) if len(gt) == 0
                else super(ConfigurableFCOS, self).match_anchors(anchors, [gt])[0] for gt in gt_instances]

    def labels_from_matches(self, matched, gt_instances, num_anchors, device):
        """Class label (background = num_classes) and GT box per anchor from matched GT indices."""
        labels, boxes = [], []
        for m, gt in zip(matched, gt_instances):
            if len(gt) == 0:
                labels.append(torch.full((num_anchors,), self.num_classes, dtype=torch.long, device=device))
                boxes.append(Boxes(torch.zeros(num_anchors, 4, device=device)))
                continue
            label = gt.gt_classes[m.clamp(min=0)]
            label[m < 0] = self.num_classes
            labels.append(label)
            boxes.append(gt.gt_boxes[m.clamp(min=0)])
        return labels, boxes

    def weighted_losses(self, anchors, pred_logits, gt_labels, pred_deltas, gt_boxes, pred_ctrness, weights):
        """Upstream's FCOS losses with a weight per anchor on its classification, GIoU and
        centerness terms (1 everywhere gives upstream's `losses` exactly)."""
        gt_labels, w = torch.stack(gt_labels), torch.stack(weights)
        pos = (gt_labels >= 0) & (gt_labels != self.num_classes)
        num_pos = pos.sum().item()
        get_event_storage().put_scalar("num_pos_anchors", num_pos / len(gt_labels))
        normalizer = self._ema_update("loss_normalizer", max(num_pos, 1), 300)
        target = F.one_hot(gt_labels, num_classes=self.num_classes + 1)[:, :, :-1]
        loss_cls = sigmoid_focal_loss_jit(torch.cat(pred_logits, 1), target.to(pred_logits[0].dtype),
                                          alpha=self.focal_loss_alpha, gamma=self.focal_loss_gamma, reduction="none")
        loss_cls = (loss_cls.sum(dim=2) * w).sum()
        flat = Boxes.cat(anchors).tensor
        pred_boxes = torch.stack([self.box2box_transform.apply_deltas(d, flat) for d in torch.cat(pred_deltas, 1)])
        target_boxes = torch.stack([b.tensor for b in gt_boxes])
        loss_loc = (giou_loss(pred_boxes[pos], target_boxes[pos], reduction="none") * w[pos]).sum()
        ctr_target = self.compute_ctrness_targets(anchors, gt_boxes)
        ctr_pred = torch.cat(pred_ctrness, dim=1).squeeze(dim=2)
        loss_ctr = (F.binary_cross_entropy_with_logits(ctr_pred[pos], ctr_target[pos], reduction="none") * w[pos]).sum()
        return {"loss_fcos_cls": loss_cls / normalizer, "loss_fcos_loc": loss_loc / normalizer,
                "loss_fcos_ctr": loss_ctr / normalizer}

    @torch.no_grad()
    def label_anchors(self, anchors: List[Boxes], gt_instances: List[Instances]):
        """Upstream's labelling, with images without boxes as all background."""
        num_anchors = sum(len(a) for a in anchors)
        return self.labels_from_matches(self.match_anchors(anchors, gt_instances), gt_instances, num_anchors,
                                        anchors[0].tensor.device)
