"""Export to TorchScript and ONNX: the traced graph runs on other images of the traced size and gives
PyTorch's detections (matched one to one by class, box within 0.05 px and score within 5e-4; a detection
within 1e-3 of the score threshold may fall on either side, as another CPU rounds it), in onnxruntime too;
`defect-il export` as a process, each export loaded in a fresh process importing only what docs/commands.md's
snippet imports, and `defect-il predict --backend onnxruntime` giving `--backend pytorch`'s detections."""
import json
import os
import shutil
import subprocess
import sys
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
from defect_il.cli import main
from defect_il.predict import Predictor

from helpers import ROOT, coco_detections, only_progress_bars, same_detections

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
            same_detections([t.numpy() for t in traced(x)], want, thresh)
    assert len(counts) > 1  # the images differ in how many detections pass: the case tracing can freeze


def test_onnx_in_onnxruntime_matches_pytorch_on_other_images(exported):
    import onnxruntime as ort
    model_dir, out, images, thresh = exported
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for path in images:
        x, want = reference(model_dir, path, thresh)
        same_detections(session.run(None, {"image": x.numpy()}), want, thresh)


def defect_il(*args):
    exe = Path(sys.executable).parent / "defect-il"
    assert exe.is_file(), "defect-il is installed by `pip install -e .` (make setup)"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


# what docs/commands.md's snippets import: TorchScript `torch, torchvision`; ONNX `json, cv2, numpy, onnxruntime`
TORCHSCRIPT_PROCESS = """
import sys, numpy as np, torch, torchvision
model = torch.jit.load(sys.argv[1])
for i, path in enumerate(sys.argv[3:]):
    with torch.no_grad():
        boxes, classes, scores = model(torch.from_numpy(np.load(path)))
    np.savez(f"{sys.argv[2]}/{i}.npz", boxes=boxes.numpy(), classes=classes.numpy(), scores=scores.numpy())
"""
ONNX_PROCESS = """
import json, sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1])
for i, path in enumerate(sys.argv[3:]):
    boxes, classes, scores = session.run(None, {"image": np.load(path)})
    np.savez(f"{sys.argv[2]}/{i}.npz", boxes=boxes, classes=classes, scores=scores)
"""


def test_exports_load_in_a_fresh_process_importing_only_what_the_readme_says(exported, tmp_path):
    model_dir, _, images, thresh = exported
    r = defect_il("export", model_dir, images[0], "-o", tmp_path / "exp", "--score-thresh", thresh)
    assert r.returncode == 0 and r.stderr == "", r.stderr  # no warnings either
    assert "model.ts, model.onnx in" in r.stdout
    info = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert "import torchvision before torch.jit.load" in info["torchscript"]
    inputs, wanted = [], []
    for i, path in enumerate(images):
        x, want = reference(model_dir, path, thresh)
        np.save(tmp_path / f"x{i}.npy", x.numpy())
        inputs.append(str(tmp_path / f"x{i}.npy"))
        wanted.append(want)
    for name, script, file in (("ts", TORCHSCRIPT_PROCESS, "model.ts"), ("onnx", ONNX_PROCESS, "model.onnx")):
        (tmp_path / name).mkdir()
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "exp" / file), str(tmp_path / name), *inputs],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        for i, want in enumerate(wanted):
            got = np.load(tmp_path / name / f"{i}.npz")
            same_detections((got["boxes"], got["classes"], got["scores"]), want, thresh)
    # without torchvision, TorchScript cannot resolve torchvision::nms: why export.json says to import it
    r = subprocess.run([sys.executable, "-c", "import sys, torch; torch.jit.load(sys.argv[1])",
                        str(tmp_path / "exp" / "model.ts")], capture_output=True, text=True)
    assert r.returncode != 0 and "torchvision::nms" in r.stderr


def test_predict_in_onnxruntime_gives_pytorchs_detections_in_the_same_format(exported, tmp_path):
    model_dir, out, images, thresh = exported
    folder = tmp_path / "images"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder / p.name)
    runs = {}
    for backend, model in (("pytorch", model_dir), ("onnxruntime", out)):
        r = defect_il("predict", model, folder, "-o", tmp_path / backend, "--backend", backend,
                      "--score-thresh", thresh, "--batch", "2")
        assert r.returncode == 0 and r.stdout == f"{len(images)} images, " + r.stdout.split(", ", 1)[1], r.stderr
        assert only_progress_bars(r.stderr), r.stderr  # no warnings, no log lines
        runs[backend] = json.loads((tmp_path / backend / "detections.json").read_text())
        assert sorted(p.name for p in (tmp_path / backend / "drawn").iterdir()) == sorted(
            p.stem + ".jpg" for p in images)
    a, b = runs["pytorch"], runs["onnxruntime"]
    assert a["categories"] == b["categories"] and a["images"] == b["images"]
    assert (a["info"]["backend"], b["info"]["backend"]) == ("pytorch", "onnxruntime")
    for im in a["images"]:
        same_detections(coco_detections(b, im["id"]), coco_detections(a, im["id"]), thresh)


def test_predict_with_onnxruntime_refuses_in_one_line(model_and_images, exported, tmp_path):
    """Not an export folder; a damaged model.onnx; a threshold under the graph's own."""
    model, folder, _ = model_and_images
    r = defect_il("predict", model, folder, "-o", tmp_path / "o", "--backend", "onnxruntime")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"error: {model}: not an export folder (no export.json; `defect-il export` writes one, with --formats onnx)"]
    _, out, _, thresh = exported
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    for content in (b"", (out / "model.onnx").read_bytes()[:3000]):
        (damaged / "model.onnx").write_bytes(content)
        r = defect_il("predict", damaged, folder, "-o", tmp_path / "o", "--backend", "onnxruntime")
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [
            f"error: {damaged / 'model.onnx'}: truncated or damaged (ONNX Runtime cannot load it); export the model "
            f"again"], r.stderr
    r = defect_il("predict", out, folder, "-o", tmp_path / "o", "--backend", "onnxruntime", "--score-thresh",
                  thresh / 2)
    assert r.returncode == 1 and "the exported graph keeps scores >= " in r.stderr and "Traceback" not in r.stderr
