"""Per-level box decoding whose tensor sizes do not depend on the data, so that a traced graph
(TorchScript, ONNX: defect_il/export.py) is valid for any image of the traced size."""
import torch
from detectron2.structures import Boxes, Instances


class StaticShapeDecoding:
    """Mixin for a detectron2 DenseDetector. Its `_decode_per_level_predictions` keeps the scores above
    the threshold, then the top k of those: k = min(topk_candidates, how many passed) is a Python int
    taken from the data, which tracing freezes at the traced image's count. Here: the top k of all
    scores (k fixed by the input size), then the threshold. The same detections, in the same order."""

    def _decode_per_level_predictions(self, anchors: Boxes, pred_scores: torch.Tensor, pred_deltas: torch.Tensor,
                                      score_thresh: float, topk_candidates: int, image_size) -> Instances:
        num_classes = pred_scores.shape[1]
        flat = pred_scores.flatten()
        scores, idxs = flat.topk(min(topk_candidates, flat.numel()))  # sorted, largest first
        keep = scores > score_thresh
        scores, idxs = scores[keep], idxs[keep]
        anchor_idxs, class_idxs = idxs // num_classes, idxs % num_classes
        boxes = self.box2box_transform.apply_deltas(pred_deltas[anchor_idxs], anchors.tensor[anchor_idxs])
        return Instances(image_size, pred_boxes=Boxes(boxes), scores=scores, pred_classes=class_idxs)
