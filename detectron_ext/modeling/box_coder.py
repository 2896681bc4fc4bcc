"""GFL's box parameterisation: distances from an anchor point to the four box sides, in strides.

The anchor point is the centre of a square anchor of side `anchor_scale * stride` (GFL: 8), so the
stride is recovered from the anchor itself and the coder plugs into detectron2's
`DenseDetector._decode_per_level_predictions` like any `Box2BoxTransform`.
"""
import torch
from torch.nn import functional as F


class DistanceBoxCoder:
    def __init__(self, anchor_scale: float = 8.0):
        self.anchor_scale = float(anchor_scale)

    def _centers_and_strides(self, anchors: torch.Tensor):
        cx = (anchors[:, 0] + anchors[:, 2]) / 2
        cy = (anchors[:, 1] + anchors[:, 3]) / 2
        stride = (anchors[:, 2] - anchors[:, 0]) / self.anchor_scale
        return cx, cy, stride

    def get_deltas(self, anchors: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(l, t, r, b) / stride for each (anchor, box) pair; both (R, 4) XYXY."""
        cx, cy, s = self._centers_and_strides(anchors)
        d = torch.stack([cx - boxes[:, 0], cy - boxes[:, 1], boxes[:, 2] - cx, boxes[:, 3] - cy], dim=1)
        return d / s[:, None]

    def apply_deltas(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Inverse of get_deltas: deltas (R, 4) in strides -> boxes (R, 4) XYXY."""
        cx, cy, s = self._centers_and_strides(anchors)
        d = deltas * s[:, None]
        return torch.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], dim=1)


def integral(reg_logits: torch.Tensor, reg_max: int) -> torch.Tensor:
    """GFL's Integral: (..., 4 * (reg_max + 1)) logits -> (..., 4) expected distances Σ k·softmax_k."""
    shape = reg_logits.shape[:-1]
    probs = F.softmax(reg_logits.reshape(*shape, 4, reg_max + 1), dim=-1)
    bins = torch.arange(reg_max + 1, dtype=probs.dtype, device=probs.device)
    return (probs * bins).sum(dim=-1)
