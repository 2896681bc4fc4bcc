"""Training on 2 CPU processes (gloo) through the stages' own path (pipeline.runner.train_run with
params `launch.num_gpus: 2`): the same losses and weights as one process at the same total batch, and
evaluation scoring every process's detections."""
import json
from pathlib import Path

import pytest
import torch

from detectron_ext.data.sources import read_dataset
from detectron_ext.file_io import atomic_write_json
from pipeline.runs import RunSpec

from helpers import tiny_params

TOLERANCE = 1e-4  # relative: the workers' gradients are summed in another order than one process's


def run(tmp_path, monkeypatch, workers: int, name: str):
    from pipeline.runner import train_run
    monkeypatch.chdir(tmp_path)
    params = tiny_params(max_iter=3, checkpoint_period=100, batch=4)
    params["threads"] = 1
    params["launch"]["num_gpus"] = workers
    params["scales"]["ci"]["warmup_iters"] = 1
    params["train"]["random_flip"] = "none"  # each worker draws its own flips: not those of one process
    classes = [c["name"] for c in json.loads((tmp_path / "train.json").read_text())["categories"]]
    spec = RunSpec(name, "gfl", "0", Path("train.json"), Path("train.json"), classes, [], classes)
    train_run(params, spec)
    metrics = [json.loads(line) for line in (spec.checkpoint_dir / "metrics.json").read_text().splitlines()]
    weights = torch.load(spec.model_dir / "model_final.pth", weights_only=True)
    return metrics[-1], weights.get("model", weights)


@pytest.fixture
def data(tmp_path):
    train, _ = read_dataset({"format": "synthetic", "num_train": 8, "num_test": 0, "image_size": 64}, seed=5,
                            work_dir=tmp_path)
    atomic_write_json(tmp_path / "train.json", train)
    return tmp_path


def test_two_processes_train_as_one_at_the_same_total_batch(data, monkeypatch):
    one, w1 = run(data, monkeypatch, 1, "one")
    two, w2 = run(data, monkeypatch, 2, "two")
    assert one["iteration"] == two["iteration"] == 2
    for k in ("loss_qfl", "loss_bbox", "loss_dfl", "total_loss"):
        assert two[k] == pytest.approx(one[k], rel=TOLERANCE), k
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=TOLERANCE, atol=1e-6), k


def _evaluate_half(test_json, out_file):
    """A worker: the ground truth of every other test image as its detections, then the evaluator."""
    from detectron2.data import DatasetCatalog
    from detectron2.structures import Boxes, BoxMode, Instances
    from detectron2.utils import comm

    from detectron_ext.data.register import register_coco_file
    from detectron_ext.evaluation import DefectEvaluator

    register_coco_file("gather_test", test_json)
    evaluator = DefectEvaluator("gather_test")
    for d in DatasetCatalog.get("gather_test")[comm.get_rank()::comm.get_world_size()]:
        inst = Instances((d["height"], d["width"]))
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in d["annotations"]]
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(len(boxes))
        inst.pred_classes = torch.tensor([a["category_id"] for a in d["annotations"]], dtype=torch.int64)
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": inst}])
    result = evaluator.evaluate()
    if comm.is_main_process():
        atomic_write_json(out_file, result["bbox"])
    else:
        assert result is None


def test_evaluation_scores_the_detections_of_every_process(tmp_path):
    from detectron_ext.distributed import launch
    _, test = read_dataset({"format": "synthetic", "num_train": 0, "num_test": 6, "image_size": 64}, seed=5,
                           work_dir=tmp_path)
    atomic_write_json(tmp_path / "test.json", test)
    launch(_evaluate_half, 2, device="cpu", args=(tmp_path / "test.json", tmp_path / "two.json"))
    launch(_evaluate_half, 1, device="cpu", args=(tmp_path / "test.json", tmp_path / "one.json"))
    two, one = (json.loads((tmp_path / f).read_text()) for f in ("two.json", "one.json"))
    assert one["mAP50"] == pytest.approx(100.0) and two["mAP50"] == pytest.approx(100.0)  # half alone: far less
