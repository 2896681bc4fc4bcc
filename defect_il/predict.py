"""Run a saved model (any phase) on images: COCO-format detections named by the model's classes, and
the images drawn with their detections. What `defect-il predict` does, in PyTorch (a model folder) or
in ONNX Runtime (a folder written by `defect-il export`)."""
import glob
import json
from pathlib import Path

import cv2
import torch
from detectron2.data.catalog import Metadata
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances
from detectron2.utils.visualizer import Visualizer
from tqdm import tqdm

from detectron_ext.checkpoint import load_model
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.images import inspect_image
from detectron_ext.data.voc import IMAGE_SUFFIXES
from detectron_ext.file_io import atomic_write_json


def list_images(inputs) -> list[Path]:
    """Image files from paths: a file, a folder (its images, sorted; not recursive) or a glob pattern
    (`**` recursive). An input that names nothing is an error naming it."""
    found = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                raise DatasetError(path, f"no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            found += images
        else:
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matches:
                raise DatasetError(path, "no such file or folder, and no file matches it as a pattern")
            found += matches
    return list(dict.fromkeys(p.resolve() for p in found))  # each image once, in order


class Predictor:
    """A saved model and the test-time resize of its config (detectron2's DefaultPredictor, batched)."""

    def __init__(self, model_dir, device: str = None, score_thresh: float = None):
        self.model, self.cfg = load_model(model_dir, device)
        if score_thresh is not None:  # the detector's own test threshold (GFL's and FCOS's attribute)
            self.model.test_score_thresh = float(score_thresh)
        size = self.cfg.INPUT.MIN_SIZE_TEST
        self.resize = T.ResizeShortestEdge(size, self.cfg.INPUT.MAX_SIZE_TEST) if size else None
        self.classes = list(self.cfg.MODEL.CLASS_NAMES)
        self.format = self.cfg.INPUT.FORMAT

    def read(self, path):
        """The image as the model reads it (checked like the training data: data/images.py)."""
        inspect_image(path)
        return read_image(str(path), format=self.cfg.INPUT.FORMAT)

    def preprocess(self, img) -> torch.Tensor:
        """HWC uint8 in the model's channel order -> the resized float32 CHW tensor the model takes."""
        x = self.resize.get_transform(img).apply_image(img) if self.resize else img
        return torch.as_tensor(x.astype("float32").transpose(2, 0, 1))

    @torch.no_grad()
    def __call__(self, images: list) -> list:
        """Instances per image, boxes in the original image's pixels."""
        inputs = [{"image": self.preprocess(img), "height": img.shape[0], "width": img.shape[1]} for img in images]
        return [out["instances"].to("cpu") for out in self.model(inputs)]


class OnnxPredictor:
    """An exported model (`defect-il export`'s folder: model.onnx, export.json) in ONNX Runtime, with
    Predictor's interface: each image resized to the graph's input size (detectron2's bilinear resize, as
    the PyTorch model's test resize does), boxes scaled back to the image's pixels."""

    def __init__(self, export_dir, score_thresh: float = None):
        from detectron_ext.checkpoint import CheckpointError

        export_dir = Path(export_dir)
        info_file, onnx_file = export_dir / "export.json", export_dir / "model.onnx"
        for f in (info_file, onnx_file):
            if not f.is_file():
                raise CheckpointError(f"{export_dir}: not an export folder (no {f.name}; `defect-il export` writes "
                                      f"one, with --formats onnx)")
        try:
            import onnxruntime
        except ImportError:
            raise CheckpointError(f"{onnx_file}: --backend onnxruntime needs onnxruntime "
                                  f"(pip install onnxruntime, or the project's [export] extra)") from None
        try:
            info = json.loads(info_file.read_text())
            self.classes, self.format = list(info["classes"]), info["input_format"]
            self.size = (int(info["input_height"]), int(info["input_width"]))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{info_file}: damaged ({type(e).__name__}: {e}); export the model again") from None
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime's errors (InvalidProtobuf, InvalidArgument, Fail, ...) derive from Exception
            raise CheckpointError(f"{onnx_file}: truncated or damaged (ONNX Runtime cannot load it); export the "
                                  f"model again") from None
        self.file = onnx_file
        self.graph_thresh = float(info.get("score_thresh", 0.0))
        if score_thresh is not None and score_thresh < self.graph_thresh:
            raise CheckpointError(f"{export_dir}: the exported graph keeps scores >= {self.graph_thresh:g} only; "
                                  f"export again with --score-thresh {score_thresh:g} for lower ones")
        self.score_thresh = score_thresh  # the graph's own threshold applies first (export.json score_thresh)

    def read(self, path):
        inspect_image(path)
        return read_image(str(path), format=self.format)

    def preprocess(self, img) -> torch.Tensor:
        h, w = img.shape[:2]
        x = T.ResizeTransform(h, w, *self.size).apply_image(img) if (h, w) != self.size else img
        return torch.as_tensor(x.astype("float32").transpose(2, 0, 1))

    def __call__(self, images: list) -> list:
        from detectron_ext.checkpoint import CheckpointError

        out = []
        for img in images:
            try:
                boxes, classes, scores = self.session.run(None, {"image": self.preprocess(img).numpy()})
            except Exception as e:  # (onnxruntime's errors derive from Exception)
                raise CheckpointError(f"{self.file}: ONNX Runtime failed on an image ({type(e).__name__}); export "
                                      f"the model again") from None
            inst = Instances(self.size, pred_boxes=Boxes(torch.as_tensor(boxes)), scores=torch.as_tensor(scores),
                             pred_classes=torch.as_tensor(classes))
            inst = detector_postprocess(inst, *img.shape[:2])  # to the image's pixels, as the PyTorch model does
            out.append(inst if self.score_thresh is None else inst[inst.scores >= self.score_thresh])
        return out


def predict(model_dir, inputs, out_dir, batch: int = 4, device: str = None, score_thresh: float = None,
            draw_thresh: float = 0.3, draw: bool = True, on_error: str = "skip", backend: str = "pytorch") -> dict:
    """Detections of every image into out_dir/detections.json (COCO: images, categories named by the
    model, annotations with `score`; unreadable images under info.skipped) and, with `draw`, each image
    with its detections of score >= draw_thresh into out_dir/drawn/. on_error: skip (report) | stop; no
    image readable at all is an error. backend: pytorch (model_dir a model folder) | onnxruntime
    (model_dir an export folder)."""
    if on_error not in ("skip", "stop"):
        raise ValueError(f"on_error must be skip or stop, not {on_error!r}")
    if backend not in ("pytorch", "onnxruntime"):
        raise ValueError(f"backend must be pytorch or onnxruntime, not {backend!r}")
    paths = list_images(inputs)
    if backend == "pytorch":
        predictor = Predictor(model_dir, device, score_thresh)
    else:
        predictor = OnnxPredictor(model_dir, score_thresh)
    out_dir = Path(out_dir)
    meta = Metadata(thing_classes=predictor.classes)  # unregistered: nothing global to collide
    coco = {"info": {"model": str(Path(model_dir).resolve()), "backend": backend, "skipped": []},
            "images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(predictor.classes)]}
    names = _unique_names(paths)
    bar = tqdm(total=len(paths), desc="predict", unit="img")
    for start in range(0, len(paths), batch):
        chunk, images = [], []
        for path in paths[start:start + batch]:
            try:
                images.append(predictor.read(path))
                chunk.append(path)
            except (DatasetError, OSError) as e:
                if on_error == "stop":
                    raise DatasetError(path, str(e).split(": ", 1)[-1]) from None
                coco["info"]["skipped"].append({"file_name": str(path), "error": str(e)})
                bar.update(1)
        for path, img, inst in zip(chunk, images, predictor(images) if images else []):
            image_id = len(coco["images"]) + 1
            coco["images"].append({"id": image_id, "file_name": str(path), "height": img.shape[0], "width": img.shape[1]})
            for box, score, cls in zip(inst.pred_boxes.tensor.tolist(), inst.scores.tolist(), inst.pred_classes.tolist()):
                x1, y1, x2, y2 = box
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                            "category_id": cls + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                            "area": (x2 - x1) * (y2 - y1), "score": score, "iscrowd": 0})
            if draw:
                rgb = img if predictor.format == "RGB" else img[:, :, ::-1]
                shown = inst[inst.scores >= draw_thresh]
                drawn = Visualizer(rgb, meta).draw_instance_predictions(shown).get_image()
                target = out_dir / "drawn" / f"{names[path]}.jpg"
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".tmp.jpg")
                cv2.imwrite(str(tmp), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                tmp.replace(target)
            bar.update(1)
    bar.close()
    skipped = coco["info"]["skipped"]
    if skipped and not coco["images"]:
        where = inputs[0] if len(inputs) == 1 else f"{len(inputs)} inputs"
        raise DatasetError(where, f"none of its {len(skipped)} image(s) could be read (first: {skipped[0]['error']}); "
                                  f"nothing written")
    atomic_write_json(out_dir / "detections.json", coco)
    return coco


def _unique_names(paths) -> dict:
    """A drawn image's name: the file's stem, with its parent folders' names where two stems collide (and its
    suffix where they still do)."""
    names = {}
    for depth in range(1, 1 + max((len(p.parts) for p in paths), default=1)):
        names = {p: "_".join(p.with_suffix("").parts[-depth:]) for p in paths}
        if len(set(names.values())) == len(paths):
            return names
    return {p: "_".join(p.parts[1:]).replace(".", "_") for p in paths}  # a.jpg and a.png in one folder
