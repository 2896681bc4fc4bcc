"""Where the detector's own assigner (ATSS for GFL, scale ranges for FCOS) puts the positives of a dataset.

Run in a workspace: python tools/assigner_levels.py models/RUN [--batches 25]. Builds the run's model from
models/RUN/config.yaml (weights are not needed: the assignment depends on the anchors and the boxes only),
draws training batches through detectron2's train loader (the run's resizing) and prints, over those
ground truths: their size (sqrt of area, input pixels), positives per GT, GTs without a positive, and the
share of positives on each level P3..P7. Shows whether TGFS's level selection has anything to choose.
"""
import argparse
import collections
import statistics
import sys
from pathlib import Path

import torch
from detectron2.data import build_detection_train_loader
from detectron2.modeling import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import detectron_ext.modeling  # noqa: E402,F401  (registers GFL, ConfigurableFCOS)
from detectron_ext.checkpoint import load_model_config  # noqa: E402
from detectron_ext.data.register import register_coco_file  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--batches", type=int, default=25)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    cfg = load_model_config(args.model_dir)
    register_coco_file(cfg.DATASETS.TRAIN[0], "data/splits/joint_train.json")
    cfg.DATALOADER.NUM_WORKERS = 0
    model = build_model(cfg).eval()
    assign = model.assign if hasattr(model, "assign") else model.match_anchors  # GFL: ATSS; FCOS: ranges
    loader = iter(build_detection_train_loader(cfg))
    per_level, per_gt, sizes = collections.Counter(), [], []
    for _ in range(args.batches):
        batch = next(loader)
        with torch.no_grad():
            images = model.preprocess_image(batch)
            features = model.backbone(images.tensor)
            anchors = model.anchor_generator([features[f] for f in model.head_in_features])
        level = torch.cat([torch.full((len(a),), k) for k, a in enumerate(anchors)])
        gts = [x["instances"] for x in batch]
        for matched, gt in zip(assign(anchors, gts), gts):
            sizes += gt.gt_boxes.area().sqrt().tolist()
            for g in range(len(gt)):
                per_gt.append(int((matched == g).sum()))
                per_level.update(level[matched == g].tolist())
    total = sum(per_level.values())
    print(f"{type(model).__name__}: {len(per_gt)} GTs, size median {statistics.median(sizes):.1f} px "
          f"(min {min(sizes):.1f}, max {max(sizes):.1f}); positives per GT {total / len(per_gt):.2f}, "
          f"GTs without positives {sum(n == 0 for n in per_gt)}")
    print("share of positives P3..P7:", " ".join(f"{per_level[k] / total:.3f}" for k in range(len(anchors))))


if __name__ == "__main__":
    main()
