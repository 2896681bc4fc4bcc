"""GFL and FCOS learn: a few synthetic images reach AP50 >= 90 within a bounded number of CPU iterations."""
import pytest
import torch
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import inference_on_dataset

from detectron_ext.config import build_config
from detectron_ext.data.coco_format import atomic_write_json
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.engine import train
from detectron_ext.evaluation import DefectEvaluator

from helpers import tiny_params


@pytest.mark.parametrize("detector, iterations", [("gfl", 250), ("fcos", 150)])
def test_overfits_a_few_images(tmp_path, detector, iterations):
    params = tiny_params(max_iter=iterations, checkpoint_period=10_000, lr=0.01, batch=4)
    train_coco, _ = read_dataset({"format": "synthetic", "num_train": 4, "num_test": 0, "image_size": 128},
                                 seed=5, work_dir=tmp_path)
    atomic_write_json(tmp_path / "train.json", train_coco)
    name = f"overfit_{detector}"
    classes = register_coco_file(name, tmp_path / "train.json")
    cfg = build_config(params, detector, len(classes), name, name, tmp_path / "out", 4)
    torch.manual_seed(0)
    trainer = train(cfg, resume=False)
    trainer.model.eval()
    evaluator = DefectEvaluator(name)
    metrics = inference_on_dataset(trainer.model, build_detection_test_loader(cfg, name), evaluator)["bbox"]
    assert metrics["mAP50"] >= 90.0, metrics
