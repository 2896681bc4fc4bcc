"""GFL and FCOS learn: a few synthetic images reach AP50 >= 90 within a bounded number of CPU iterations."""
import pytest
import torch
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.structures import pairwise_iou

from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.engine import train
from detectron_ext.evaluation import DefectEvaluator
from detectron_ext.file_io import atomic_write_json

from helpers import run_config, tiny_params


# GFL's quality-coupled losses start a rare thin class (one streak in 4 images) slowly: its
# quality target is the IoU of a still-poor box and its regression is weighted by its score.
@pytest.mark.parametrize("detector, iterations, images", [("gfl", 250, 6), ("fcos", 150, 4)])
def test_overfits_a_few_images(tmp_path, detector, iterations, images):
    params = tiny_params(max_iter=iterations, checkpoint_period=10_000, lr=0.01, batch=images)
    train_coco, _ = read_dataset({"format": "synthetic", "num_train": images, "num_test": 0, "image_size": 128},
                                 seed=5, work_dir=tmp_path)
    atomic_write_json(tmp_path / "train.json", train_coco)
    name = f"overfit_{detector}"
    classes = register_coco_file(name, tmp_path / "train.json")
    cfg = run_config(params, detector, classes, name, tmp_path / "out", images)
    cfg.INPUT.RANDOM_FLIP = "none"  # memorising needs no augmentation; and flips made it hinge on the RNG
    trainer = train(cfg, resume=False)
    trainer.model.eval()
    evaluator = DefectEvaluator(name)
    metrics = inference_on_dataset(trainer.model, build_detection_test_loader(cfg, name), evaluator)["bbox"]
    assert metrics["mAP50"] >= 90.0, metrics
    if detector == "gfl":
        check_bf16_inference_parity(trainer.model, cfg, name, metrics)


def check_bf16_inference_parity(model, cfg, name, fp32_metrics):
    """The trained model under bf16 autocast (train.precision: bf16): mAP50 within 2 points of fp32,
    and each fp32 detection scored >= 0.3 has a bf16 detection of its class with IoU >= 0.9 and a
    score within 0.05 (the stated tolerance, docs/pipeline.md, "bf16")."""
    loader = build_detection_test_loader(cfg, name)
    with torch.no_grad():
        fp32 = [model(x)[0]["instances"] for x in loader]
        model.precision = "bf16"
        bf16 = [model(x)[0]["instances"] for x in loader]
        metrics = inference_on_dataset(model, loader, DefectEvaluator(name))["bbox"]
        model.precision = "fp32"
    assert abs(metrics["mAP50"] - fp32_metrics["mAP50"]) <= 2.0, (metrics, fp32_metrics)
    checked = 0
    for a, b in zip(fp32, bf16):
        a = a[a.scores >= 0.3]
        iou = pairwise_iou(a.pred_boxes, b.pred_boxes)
        same = a.pred_classes[:, None] == b.pred_classes[None, :]
        for i in range(len(a)):
            j = (iou[i] * same[i]).argmax()
            assert iou[i, j] >= 0.9 and abs(a.scores[i] - b.scores[j]) <= 0.05, (i, iou[i, j], a.scores[i], b.scores[j])
            checked += 1
    assert checked > 0
