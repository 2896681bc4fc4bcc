"""How well each model's boxes fit the new classes' objects at the anchor points where a student learns them.

SD-IDD's BR (and FR) select anchor points around the image's GT boxes, which in an incremental phase are the
new classes' objects: there BR pulls the student's box distributions towards the teacher's. Whether that
helps or hurts depends on how well the teacher, which never saw these classes, boxes them. For each GT box of
a split, at its ATSS positives (the anchor points where the student's own GIoU/DFL train; the same for every
model: they depend on the anchors and the box only), each model's decoded box is compared with the GT:
mean IoU over the positives, and the best positive's IoU, per class.

Usage: python tools/boxes_on_new_objects.py SPLIT_JSON MODEL_DIR [MODEL_DIR ...] [--every 1] [--device cpu]
  e.g. python tools/boxes_on_new_objects.py data/splits/phase1_val.json models/gfl_teacher models/finetune/phase1 \
         models/sdidd/phase1
Prints one markdown table: per class and model, mean IoU at the positives / best positive's IoU.
"""
import argparse
import contextlib
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import detectron_ext.modeling  # noqa: E402,F401  (registers GFL / FCOS)
from detectron2.structures import Boxes, BoxMode  # noqa: E402
from detectron2.structures.boxes import matched_pairwise_iou  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from detectron_ext.modeling.atss import atss_assign  # noqa: E402
from detectron_ext.modeling.box_coder import integral  # noqa: E402
from defect_il.predict import Predictor  # noqa: E402


@torch.no_grad()
def box_fit(predictor: Predictor, coco: COCO, image_root: str, every: int) -> pd.DataFrame:
    """One row per GT box: its class, the mean IoU of the model's boxes at its ATSS positives and the best one."""
    model, names, rows = predictor.model, {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}, []
    for image_id in sorted(coco.getImgIds())[::every]:
        anns = coco.imgToAnns[image_id]
        if not anns:
            continue
        img = predictor.read(Path(image_root) / coco.loadImgs(image_id)[0]["file_name"])
        x = predictor.preprocess(img)
        scale = torch.tensor([x.shape[2] / img.shape[1], x.shape[1] / img.shape[0]] * 2)
        gt = torch.tensor([BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in anns],
                          dtype=torch.float32).reshape(-1, 4) * scale
        images = model.preprocess_image([{"image": x.to(model.device)}])
        with model.autocast():
            feats = model.backbone(images.tensor)
            feats = [feats[f] for f in model.head_in_features]
            head = model.head(feats)
        anchors, _, reg = model.dense_predictions(model.fp32(feats), [model.fp32(p) for p in head])
        flat = Boxes.cat(anchors).tensor
        matched = atss_assign([a.tensor for a in anchors], gt.to(flat.device), model.atss_topk).cpu()
        boxes = model.box2box_transform.apply_deltas(integral(reg[0], model.reg_max), flat).cpu()
        for g, ann in enumerate(anns):
            pos = (matched == g).nonzero().flatten()
            if len(pos) == 0:
                continue
            iou = matched_pairwise_iou(Boxes(boxes[pos]), Boxes(gt[g].expand(len(pos), 4)))
            rows.append({"class": names[ann["category_id"]], "mean": float(iou.mean()), "best": float(iou.max())})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split_json")
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--every", type=int, default=1, help="every N-th image (sorted by id)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # pycocotools' loading messages: not the table's
        coco = COCO(args.split_json)
    columns = {}
    for model_dir in args.model_dirs:
        fit = box_fit(Predictor(model_dir, device=args.device), coco, coco.dataset["info"]["image_root"], args.every)
        by_class = fit.groupby("class")[["mean", "best"]].mean()
        by_class.loc["all boxes"] = fit[["mean", "best"]].mean()
        columns[model_dir] = [f"{m:.3f} / {b:.3f}" for m, b in by_class.itertuples(index=False)]
        index = by_class.index
    print(f"IoU with the GT box of each model's boxes at the box's ATSS positives (mean / best positive), "
          f"{args.split_json}, {'every image' if args.every == 1 else f'1 image in {args.every}'}:")
    print(pd.DataFrame(columns, index=index).to_markdown())


if __name__ == "__main__":
    main()
