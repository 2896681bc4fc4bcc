"""Export to TorchScript and ONNX: the traced graph runs on other images of the traced size and gives
PyTorch's detections (the same count and classes, boxes within 0.01 px, scores within 1e-4), in
onnxruntime too."""
import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.structures import Boxes

from detectron_ext.modeling.decoding import StaticShapeDecoding
from pipeline.cli import main
from pipeline.predict import Predictor

from helpers import ROOT

SIZE = 96  # the exported model's test size (shortest edge)


@pytest.mark.parametrize("thresh, topk", [(0.05, 1000), (0.5, 1000), (0.05, 7), (0.99, 5)])
def test_static_shape_decoding_gives_detectron2s_detections(thresh, topk):
    g = torch.Generator().manual_seed(0)
    scores, deltas = torch.rand(300, 6, generator=g), torch.rand(300, 4, generator=g)
    anchors = Boxes(torch.rand(300, 4, generator=g) * 50 + torch.tensor([0.0, 0.0, 60.0, 60.0]))
    self = types.SimpleNamespace(box2box_transform=Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0)))
    ours = StaticShapeDecoding._decode_per_level_predictions(self, anchors, scores, deltas, thresh, topk, (100, 100))
    theirs = DenseDetector._decode_per_level_predictions(self, anchors, scores, deltas, thresh, topk, (100, 100))
    assert len(ours) == len(theirs) > 0
    for field in ("scores", "pred_classes"):
        assert torch.equal(ours.get(field), theirs.get(field)), field
    assert torch.equal(ours.pred_boxes.tensor, theirs.pred_boxes.tensor)


def real_images(fallback_folder) -> list:
    """NEU-DET test images (real, 200 px, resized to SIZE by the model) when the dataset is there
    (NEU_DET_ROOT or params.yaml's root), else the synthetic ones."""
    root = Path(os.environ.get("NEU_DET_ROOT") or ROOT / yaml.safe_load((ROOT / "params.yaml").read_text())
                ["datasets"]["neu-det"]["root"])
    found = sorted((root / "IMAGES").glob("*.jpg"))[::300][:5] if (root / "IMAGES").is_dir() else []
    return found or sorted(fallback_folder.iterdir())


@pytest.fixture(scope="module")
def exported(model_and_images, tmp_path_factory):
    model, folder, _ = model_and_images
    tmp = tmp_path_factory.mktemp("export")
    resized = tmp / "model"
    shutil.copytree(model, resized)
    cfg = yaml.safe_load((resized / "config.yaml").read_text())
    cfg["INPUT"]["MIN_SIZE_TEST"] = SIZE  # every image resized to SIZE: one traced size serves them all
    (resized / "config.yaml").write_text(yaml.safe_dump(cfg))
    # a threshold that keeps some candidates and drops others (the median score of the barely trained model):
    # how many pass differs per image, which a graph traced with data-dependent sizes gets wrong
    _, (_, _, scores) = reference(resized, folder / "img_0.png", thresh=0.0)
    thresh = float(np.median(scores))
    main(["export", str(resized), str(folder / "img_0.png"), "-o", str(tmp / "out"), "--score-thresh", str(thresh)])
    return resized, tmp / "out", real_images(folder), thresh


def reference(model_dir, image_path, thresh):
    predictor = Predictor(model_dir, device="cpu", score_thresh=thresh)
    x = predictor.preprocess(predictor.read(image_path))
    with torch.no_grad():
        inst = predictor.model([{"image": x}])[0]["instances"]
    return x, (inst.pred_boxes.tensor.numpy(), inst.pred_classes.numpy(), inst.scores.numpy())


def same_detections(got, want):
    """Every detection has a partner of the same class, score within 1e-4 and box within 0.01 px
    (one to one; the order of detections with equal scores may differ)."""
    boxes, classes, scores = (np.asarray(t) for t in got)
    assert len(scores) == len(want[2]) > 0
    unused = set(range(len(scores)))
    for box, cls, score in zip(*want):
        partner = [j for j in unused if classes[j] == cls and abs(scores[j] - score) < 1e-4
                   and np.abs(boxes[j] - box).max() < 0.01]
        assert partner, (box, cls, score)
        unused.remove(partner[0])


def test_export_json_states_what_the_caller_does(exported):
    _, out, _, thresh = exported
    info = yaml.safe_load((out / "export.json").read_text())
    assert info["files"] == {"torchscript": "model.ts", "onnx": "model.onnx"}
    assert (info["input_height"], info["input_width"]) == (SIZE, SIZE) and info["input_format"] == "BGR"
    assert len(info["classes"]) == 6 and info["score_thresh"] == pytest.approx(thresh)


def test_torchscript_matches_pytorch_on_other_images(exported):
    model_dir, out, images, thresh = exported
    traced = torch.jit.load(str(out / "model.ts"))
    counts = set()
    for path in images:
        x, want = reference(model_dir, path, thresh)
        counts.add(len(want[2]))
        with torch.no_grad():
            same_detections([t.numpy() for t in traced(x)], want)
    assert len(counts) > 1  # the images differ in how many detections pass: the case tracing can freeze


def test_onnx_in_onnxruntime_matches_pytorch_on_other_images(exported):
    import onnxruntime as ort
    model_dir, out, images, thresh = exported
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for path in images:
        x, want = reference(model_dir, path, thresh)
        same_detections(session.run(None, {"image": x.numpy()}), want)
