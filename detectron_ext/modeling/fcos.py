"""detectron2 v0.6's FCOS, registered and configurable from yaml, with two v0.6 bugs fixed:

1. its head cannot be built with GN: RetinaNetHead test-builds `get_norm("GN", 1)`, i.e.
   GroupNorm(32, 1) -> we pass a GroupNorm factory that accepts the 1-channel probe;
2. it crashes on images without boxes (max over an empty GT dimension in `match_anchors`, indexing
   empty GT tensors in `label_anchors`) -> such images get all-background labels.
"""
from typing import List

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.meta_arch.fcos import FCOS, FCOSHead
from detectron2.structures import Boxes, Instances

from .norm import head_norm


@META_ARCH_REGISTRY.register()
class ConfigurableFCOS(FCOS):
    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        f = cfg.MODEL.FCOS
        shapes = backbone.output_shape()
        input_shape = [shapes[k] for k in f.IN_FEATURES]
        head = FCOSHead(input_shape=input_shape, conv_dims=[f.HEAD_CHANNELS] * f.NUM_CONVS,
                        num_classes=f.NUM_CLASSES, norm=head_norm(f.NORM), prior_prob=f.PRIOR_PROB)
        return {"backbone": backbone, "head": head, "head_in_features": list(f.IN_FEATURES),
                "num_classes": f.NUM_CLASSES, "center_sampling_radius": f.CENTER_SAMPLING_RADIUS,
                "focal_loss_alpha": f.FOCAL_LOSS_ALPHA, "focal_loss_gamma": f.FOCAL_LOSS_GAMMA,
                "test_score_thresh": f.SCORE_THRESH_TEST, "test_topk_candidates": f.TOPK_CANDIDATES_TEST,
                "test_nms_thresh": f.NMS_THRESH_TEST,
                "max_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD}

    @torch.no_grad()
    def label_anchors(self, anchors: List[Boxes], gt_instances: List[Instances]):
        """Upstream's labelling, image by image, with images without boxes as all background."""
        num_anchors = sum(len(a) for a in anchors)
        device = anchors[0].tensor.device
        labels, boxes = [], []
        for gt in gt_instances:
            if len(gt) == 0:
                labels.append(torch.full((num_anchors,), self.num_classes, dtype=torch.long, device=device))
                boxes.append(Boxes(torch.zeros(num_anchors, 4, device=device)))
                continue
            (label,), (box,) = super().label_anchors(anchors, [gt])
            labels.append(label)
            boxes.append(box)
        return labels, boxes
