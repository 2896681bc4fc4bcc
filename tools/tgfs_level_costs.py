"""Diagnose TGFS level selection on a trained model: per GT, which competing level (P3-P5) is cheapest.

Run in a workspace: python tools/tgfs_level_costs.py models/RUN   (uses data/splits/joint_train.json;
prints how many GTs each level wins over 4 batches of 8, and the mean cost per level). Gave docs/methods.md's
numbers for the collapsed first design (P3 5.6 / P4 1.5 / P5 5.7) and plain FCOS (2.2 / 2.0 / 3.3).
"""
import sys, torch, collections
from detectron2.modeling import build_model
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import build_detection_train_loader
from detectron_ext.checkpoint import load_model_config
from detectron_ext.data.register import register_coco_file
from detectron_ext.modeling import tgfs as T
torch.set_num_threads(1); torch.manual_seed(0)
model_dir = sys.argv[1]
cfg = load_model_config(model_dir)
register_coco_file(cfg.DATASETS.TRAIN[0], "data/splits/joint_train.json")
cfg.SOLVER.IMS_PER_BATCH = 8; cfg.DATALOADER.NUM_WORKERS = 0
model = build_model(cfg); DetectionCheckpointer(model).load(f"{model_dir}/model_final.pth"); model.eval()
loader = iter(build_detection_train_loader(cfg))
opts = T.tgfs_options(cfg.MODEL.TGFS)  # the model's, or TGFS's defaults where it trained without
wins = collections.Counter(); base_lv = collections.Counter(); allcosts = []
for b in range(4):
    batch = next(loader)
    with torch.no_grad():
        images = model.preprocess_image(batch)
        feats = [model.backbone(images.tensor)[f] for f in model.head_in_features]
        preds = model.head(feats)
        logits, deltas, ctr = model._transpose_dense_predictions(preds, [model.num_classes, 4, 1])
        anchors = model.anchor_generator(feats)
        from detectron2.structures import Boxes
        flat = Boxes.cat(anchors).tensor
        pb = torch.stack([model.box2box_transform.apply_deltas(d, flat) for d in torch.cat(deltas, 1)])
        gts = [x["instances"] for x in batch]
        base = model.match_anchors(anchors, gts)
        points, level, strides = T.points_and_levels(anchors, model.anchor_generator.strides)
        L = torch.cat(logits, 1)
        for i, gt in enumerate(gts):
            c = T.pair_costs(L[i], pb[i], gt.gt_boxes.tensor, gt.gt_classes)
            cand = T.candidate_mask(points, strides, gt.gt_boxes.tensor, opts.region, opts.radius)
            pl = T.level_costs(c, cand, level, 3)
            for g in range(pl.shape[1]):
                wins[int(pl[:, g].argmin())] += 1
                allcosts.append(pl[:, g])
            for m in base[i][base[i] >= 0].unique():
                lv = level[base[i] == m]; base_lv[int(lv.float().mean().round())] += 1
ac = torch.stack(allcosts)
print("wins", dict(wins), "base level of GTs", dict(base_lv))
print("mean level cost", ac[torch.isfinite(ac).all(1)].mean(0))
print("n cand per level (example)", [int((cand & (level == k)[:, None]).sum()) for k in range(5)])
