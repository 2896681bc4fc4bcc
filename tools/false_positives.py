"""Where a model's detections of each class land: on an object of that class (true), on an object of
another class (confused), or on no object at all (background). A student whose old-class channels get no
loss away from the anchors CR selects may answer old classes on background and on the new objects: this
counts it (docs/methods.md).

A detection counts as true when it overlaps (IoU > --iou) a GT box of its own class, confused when it
overlaps only boxes of other classes, background otherwise. Counts are per 100 images.

Usage: python tools/false_positives.py MODEL_DIR SPLIT_JSON [--score 0.3] [--iou 0.5] [--every 1]
  e.g. python tools/false_positives.py models/sdidd/phase1 data/splits/phase1_val.json
"""
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from detectron2.structures import pairwise_iou  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from teacher_on_new_boxes import detections_on, run_tool  # noqa: E402  (the same images and command line)


def tally(predictor, coco: COCO, image_root: str, every: int, iou: float, score: float) -> pd.DataFrame:
    """Per predicted class: detections per 100 images that are true, confused (as which GT class) or background."""
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    counts = {c: Counter() for c in predictor.classes}
    images = 0
    for anns, gt, inst in detections_on(predictor, coco, image_root, every, score):
        images += 1
        gt_classes = [names[a["category_id"]] for a in anns]
        overlaps = pairwise_iou(inst.pred_boxes, gt) > iou  # detection x GT
        for cls, hits in zip(inst.pred_classes.tolist(), overlaps):
            name = predictor.classes[cls]
            hit = {gt_classes[g] for g in hits.nonzero().flatten().tolist()}
            counts[name]["true" if name in hit else "confused" if hit else "background"] += 1
            if hit and name not in hit:
                counts[name]["on " + "/".join(sorted(hit))] += 1
    table = pd.DataFrame(counts).T.fillna(0) * 100.0 / max(images, 1)
    for column in ("true", "confused", "background"):
        if column not in table:
            table[column] = 0.0
    first = ["true", "confused", "background"]
    return table[first + sorted(c for c in table if c not in first)].round(1)


def main(argv=None):
    run_tool(__doc__, tally, "detections per 100 images, ", argv)


if __name__ == "__main__":
    main()
