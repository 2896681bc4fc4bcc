"""Ground truth beside predictions, drawn with detectron2's Visualizer."""
import cv2
import numpy as np
from detectron2.data import MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.utils.visualizer import Visualizer


def draw_gt_and_predictions(dataset_dict: dict, instances, dataset_name: str, score_thresh: float) -> np.ndarray:
    """Returns a BGR image: ground truth (left) and predictions with score >= score_thresh (right)."""
    meta = MetadataCatalog.get(dataset_name)
    rgb = read_image(dataset_dict["file_name"], format="RGB")
    gt = Visualizer(rgb, meta, scale=2.0).draw_dataset_dict(dataset_dict).get_image()
    inst = instances.to("cpu")
    inst = inst[inst.scores >= score_thresh]
    pred = Visualizer(rgb, meta, scale=2.0).draw_instance_predictions(inst).get_image()
    sep = np.full((gt.shape[0], 6, 3), 255, np.uint8)
    both = np.concatenate([gt, sep, pred], axis=1)
    return cv2.cvtColor(both, cv2.COLOR_RGB2BGR)
