"""How often an old-class model (the teacher) detects the new phase's objects as one of its own classes.

For each new-class GT box of a split (a COCO json written by stages/split.py), the teacher's best detection
overlapping it (IoU > --iou, score > --score) counts as a hit, and its class is tallied. A new class the
teacher often takes for an old one is where distillation of the teacher's confident old-class responses
(ERD: every location above mean + 2 std) teaches the student the wrong class (docs/results.md, DeepPCB).

Any model on any split works the same way: a joint model on joint_test.json gives each class's recall and
what it is taken for (docs/pipeline.md, "Data checks": NEU-DET's scratches).

Usage: python tools/teacher_on_new_boxes.py MODEL_DIR SPLIT_JSON [--every 6] [--iou 0.5] [--score 0.3]
  e.g. python tools/teacher_on_new_boxes.py models/gfl_teacher data/splits/phase1_train.json
Prints one markdown table: per new class, its GT boxes, the share the teacher detects, and as which class.
"""
import argparse
import contextlib
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import detectron_ext.modeling  # noqa: E402,F401  (registers GFL / FCOS)
from detectron2.structures import Boxes, BoxMode, pairwise_iou  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from defect_il.predict import Predictor  # noqa: E402


def detections_on(predictor, coco: COCO, image_root: str, every: int, score: float):
    """Every `every`-th image of the split (by id): its annotations, its GT boxes (XYXY) and the model's
    detections above `score`."""
    for image_id in sorted(coco.getImgIds())[::every]:
        info = coco.loadImgs(image_id)[0]
        inst = predictor([predictor.read(Path(image_root) / info["file_name"])])[0]
        anns = coco.imgToAnns[image_id]
        gt = Boxes(torch.tensor([BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in anns],
                                dtype=torch.float32).reshape(-1, 4))
        yield anns, gt, inst[inst.scores > score]


def tally(predictor: Predictor, coco: COCO, image_root: str, every: int, iou: float, score: float) -> pd.DataFrame:
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    counts = {}
    for anns, gt, inst in detections_on(predictor, coco, image_root, every, score):
        overlaps = pairwise_iou(gt, inst.pred_boxes) > iou  # GT x detection
        for ann, hits in zip(anns, overlaps):
            c = counts.setdefault(names[ann["category_id"]], Counter())
            c["GT boxes"] += 1
            if hits.any():
                c["detected"] += 1
                c["as " + predictor.classes[int(inst.pred_classes[inst.scores.masked_fill(~hits, -1).argmax()])]] += 1
    table = pd.DataFrame(counts).T.fillna(0).astype(int)
    table.insert(2 if "detected" in table else 1, "detected %",
                 (100 * table.get("detected", 0) / table["GT boxes"]).round(1))
    return table


def run_tool(doc: str, tally_fn, what: str, argv=None):
    """The command line of a tool that tallies a model's detections on a split (this one, false_positives.py):
    MODEL_DIR SPLIT_JSON [--every] [--iou] [--score] [--device], one markdown table printed."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("split_json")
    ap.add_argument("--every", type=int, default=1, help="every N-th image (sorted by id)")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--score", type=float, default=0.3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # pycocotools' loading messages: not the table's
        coco = COCO(args.split_json)
    predictor = Predictor(args.model_dir, device=args.device, score_thresh=args.score)
    table = tally_fn(predictor, coco, coco.dataset["info"]["image_root"], args.every, args.iou, args.score)
    sample = "every image" if args.every == 1 else f"1 image in {args.every}"
    print(f"{args.model_dir} on {args.split_json} ({sample}): {what}IoU > {args.iou}, "
          f"score > {args.score}")
    print(table.to_markdown())


def main(argv=None):
    run_tool(__doc__, tally, "", argv)


if __name__ == "__main__":
    main()
