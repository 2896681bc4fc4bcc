"""GFLv1 head: RetinaNet-style towers, sigmoid classifier, distribution regression, scale per level."""
from typing import List

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from torch import nn

from .norm import head_norm


class GFLHead(RetinaNetHead):
    """Two towers of `num_convs` × (3×3 conv, GN, ReLU); classification: `num_classes` sigmoid
    channels with prior-probability bias; regression: 4 × (reg_max + 1) distribution logits
    multiplied by a learnable scalar per level (init 1). Reuses RetinaNetHead's towers."""

    @configurable
    def __init__(self, *, input_shape: List[ShapeSpec], num_classes: int, conv_dims: List[int],
                 norm="GN", prior_prob: float = 0.01, reg_max: int = 16):
        super().__init__(input_shape=input_shape, num_classes=num_classes, num_anchors=1,
                         conv_dims=conv_dims, norm=head_norm(norm), prior_prob=prior_prob)
        self.reg_max = reg_max
        self.bbox_pred = nn.Conv2d(conv_dims[-1], 4 * (reg_max + 1), kernel_size=3, padding=1)
        nn.init.normal_(self.bbox_pred.weight, std=0.01)
        nn.init.constant_(self.bbox_pred.bias, 0.0)
        self.scales = nn.Parameter(torch.ones(len(input_shape)))

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        g = cfg.MODEL.GFL
        return {"input_shape": input_shape, "num_classes": g.NUM_CLASSES,
                "conv_dims": [g.HEAD_CHANNELS] * g.NUM_CONVS, "norm": g.NORM,
                "prior_prob": g.PRIOR_PROB, "reg_max": g.REG_MAX}

    def forward(self, features: List[torch.Tensor]):
        """Returns ([N, C, Hi, Wi] class logits per level], [N, 4(reg_max+1), Hi, Wi] per level)."""
        logits, reg = [], []
        for i, f in enumerate(features):
            logits.append(self.cls_score(self.cls_subnet(f)))
            reg.append(self.bbox_pred(self.bbox_subnet(f)) * self.scales[i])
        return logits, reg
