import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _threads():
    import torch
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def model_and_images(tmp_path_factory):
    """(model folder, a folder of 3 images, classes): a GFL trained for a few iterations on synthetic
    images and saved as a model folder (predict, export)."""
    from detectron_ext.checkpoint import save_model
    from detectron_ext.data.register import register_coco_file
    from detectron_ext.data.sources import read_dataset
    from detectron_ext.engine import train
    from detectron_ext.file_io import atomic_write_json
    from helpers import run_config, tiny_params

    tmp = tmp_path_factory.mktemp("predict")
    train_coco, test_coco = read_dataset({"format": "synthetic", "num_train": 4, "num_test": 3, "image_size": 96},
                                         seed=3, work_dir=tmp)
    atomic_write_json(tmp / "train.json", train_coco)
    classes = register_coco_file("predict_train", tmp / "train.json")
    cfg = run_config(tiny_params(max_iter=4, checkpoint_period=100), "gfl", classes, "predict_train", tmp / "ckpt", 4)
    cfg.MODEL.GFL.SCORE_THRESH_TEST = 0.0  # an untrained-ish model still outputs boxes to check
    trainer = train(cfg, resume=False)
    save_model(tmp / "model", trainer.model.state_dict(), cfg, 4)
    images = [Path(test_coco["info"]["image_root"]) / im["file_name"] for im in test_coco["images"]]
    folder = tmp / "new_images"
    folder.mkdir()
    for i, p in enumerate(images):
        (folder / f"img_{i}.png").write_bytes(p.read_bytes())
    return tmp / "model", folder, classes
