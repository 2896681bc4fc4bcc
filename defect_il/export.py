"""Export a saved model (any phase) to TorchScript and ONNX, traced.

Inside the graph: pixel normalisation, backbone, FPN, head, box decoding, score threshold, top-k
candidates per level, class-aware NMS and the per-image detection cap, i.e. everything the PyTorch
model does at test time. The caller: reads the image in the model's channel order (`input_format` in
export.json: BGR or RGB), resizes it to the traced size `input_height` x `input_width` (the model's
test resize of the sample image), passes it as a float32 CHW tensor of 0-255 values, and scales the
boxes (x1, y1, x2, y2 in the resized image's pixels) back to the original image. The graph is traced
at one input size: other sizes are not supported (export again from an image of that size).
Outputs, in order: boxes (N, 4), classes (N,) int64 (index into `classes`), scores (N,).

detectron2 v0.6's TracingAdapter cannot be imported (its `detectron2.export` package imports caffe2 on
import); `Flattened` is the few lines of it that a dense detector needs.
"""
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from detectron_ext.file_io import atomic_write_text

from .predict import Predictor

FORMATS = ("torchscript", "onnx")


class Flattened(nn.Module):
    """A detector on one image tensor, returning (boxes, classes, scores): a traceable signature."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        instances = self.model([{"image": image}])[0]["instances"]  # in the input image's pixels
        return instances.pred_boxes.tensor, instances.pred_classes, instances.scores


def write_graphs(model, inputs: tuple, out_dir, formats=FORMATS, opset: int = 17) -> dict:
    """Trace a detector (eval mode) on `inputs` (one CHW float image) into out_dir/model.ts and/or
    out_dir/model.onnx, each written atomically. Returns {format: file name}."""
    adapter = Flattened(model).eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's warnings about Python values in detectron2's code: the graph does not depend on
        # them (tests/test_export.py runs it on images of other content), and no user can act on them
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript-based ONNX export")
        if "torchscript" in formats:
            traced = torch.jit.trace(adapter, inputs, check_trace=False)
            tmp = out_dir / ".model.ts.tmp"
            traced.save(str(tmp))
            tmp.replace(out_dir / "model.ts")
            written["torchscript"] = "model.ts"
        if "onnx" in formats:
            tmp = out_dir / ".model.onnx.tmp"
            torch.onnx.export(adapter, inputs, str(tmp), input_names=["image"],
                              output_names=["boxes", "classes", "scores"], opset_version=opset, dynamo=False)
            tmp.replace(out_dir / "model.onnx")
            written["onnx"] = "model.onnx"
    return written


def export_model(model_dir, sample_image: str, out_dir, formats=FORMATS, score_thresh: float = None,
                 opset: int = 17) -> dict:
    """Write out_dir/model.ts (TorchScript), out_dir/model.onnx and out_dir/export.json (what the caller
    does: classes, input format and size, output order), traced on `sample_image` (its resized size is
    the graph's input size). `score_thresh`: the graph's detection threshold (default: the model's).
    Returns export.json's content."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {FORMATS}")
    predictor = Predictor(model_dir, device="cpu", score_thresh=score_thresh)
    inputs = (predictor.preprocess(predictor.read(sample_image)),)
    out_dir = Path(out_dir)
    written = write_graphs(predictor.model, inputs, out_dir, formats, opset)
    _, height, width = inputs[0].shape
    info = {"model": str(Path(model_dir).resolve()), "files": written, "classes": predictor.classes,
            "input_format": predictor.cfg.INPUT.FORMAT, "input_height": int(height), "input_width": int(width),
            "input": "float32 CHW, 0-255, the model's channel order, resized to input_height x input_width",
            "outputs": ["boxes (N, 4) x1 y1 x2 y2 in the input's pixels", "classes (N,) int64 index into classes",
                        "scores (N,)"],
            "torchscript": "import torchvision before torch.jit.load: the graph calls torchvision::nms, which "
                           "importing torchvision registers",
            "score_thresh": predictor.model.test_score_thresh, "nms_thresh": predictor.model.test_nms_thresh,
            "max_detections": predictor.model.max_detections_per_image}
    atomic_write_text(out_dir / "export.json", json.dumps(info, indent=1) + "\n")
    return info
