"""Loading weights, checkpoints and models without running code from the file; saving a model folder
that rebuilds its detector alone.

A PyTorch file is read with `torch.load(weights_only=True)` (tensors and plain containers only), a
detectron2 / Caffe2 `.pkl` with an unpickler that accepts numpy arrays and nothing else, and a model's
`config.yaml` with `yaml.safe_load` (detectron2's `allow_unsafe=False`). A file that asks for anything
more is refused with one line naming it.
"""
import errno
import json
import os
import pickle
import re
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from .config import new_config
from .file_io import atomic_write_text

WEIGHTS_FILE = "model_final.pth"
CONFIG_FILE = "config.yaml"
TEST_SET_FILE = "test_set.json"  # {"coco": the model's test set, a COCO file, relative to the model folder}
# what numpy arrays (and their dtypes) need to unpickle, under numpy 1 and numpy 2 module names
_PICKLE_GLOBALS = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                   for n in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype"),
                                                           ("collections", "OrderedDict")}


class CheckpointError(ValueError):
    """A weights file or model folder that cannot be (safely) loaded; the message names the file."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _PICKLE_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, and only numpy arrays are allowed")


def load_pickle(path) -> dict:
    """A detectron2 / Caffe2 `.pkl` of weights: dicts, lists, strings, numbers and numpy arrays only."""
    try:
        with open(path, "rb") as f:
            return _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    except pickle.UnpicklingError as e:
        if str(e).startswith("it asks for"):  # _ArraysOnlyUnpickler's refusal
            raise CheckpointError(f"{path}: not loaded: {e}") from None
        raise CheckpointError(f"{path}: truncated or damaged (not a readable pickle of weights)") from None
    except (EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError):
        raise CheckpointError(f"{path}: truncated or damaged (not a readable pickle of weights)") from None


def load_torch(path):
    """A PyTorch file (weights or a training checkpoint) with torch.load(weights_only=True). A file that
    holds more than tensors and plain containers is refused; a truncated or damaged one is named so."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.EPERM):
            raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
        raise CheckpointError(f"{path}: truncated or damaged (not a readable PyTorch file)") from None
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):  # PyTorch's refusal (its advice to load unsafely is not repeated)
            asks = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
            what = f"it asks for {asks.group(1)}" if asks else "it holds objects other than tensors"
            raise CheckpointError(f"{path}: not a weights-only PyTorch file: {what}; refused, as only tensors and "
                                  f"plain containers are loaded") from None
        raise CheckpointError(f"{path}: truncated or damaged (not a readable PyTorch file)") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise CheckpointError(f"{path}: truncated or damaged (not a readable PyTorch file)") from None


class SafeCheckpointer(DetectionCheckpointer):
    """detectron2's DetectionCheckpointer with safe readers for `.pkl` and `.pth` (v0.6 unpickles
    `.pkl` with plain `pickle.load`, which runs whatever the file names)."""

    def _load_file(self, filename):
        if filename.endswith(".pkl"):
            data = load_pickle(filename)
            if not isinstance(data, dict):
                raise CheckpointError(f"{filename}: not a dict of weights")
            if "model" in data and "__author__" in data:  # detectron2's model zoo format
                return data
            data = data.get("blobs", data)  # Caffe2 / Detectron1 model zoo
            return {"model": {k: v for k, v in data.items() if not k.endswith("_momentum")},
                    "__author__": "Caffe2", "matching_heuristics": True}
        loaded = load_torch(filename)
        return loaded if isinstance(loaded, dict) and "model" in loaded else {"model": loaded}


def inference_config(cfg):
    """The config a saved model rebuilds from: the detector itself (a student's DistillGFL becomes the
    plain GFL it is, MODEL.DISTILL kept as a record of its training), no ImageNet weights to fetch."""
    cfg = cfg.clone()
    cfg.defrost()
    if cfg.MODEL.META_ARCHITECTURE == "DistillGFL":
        cfg.MODEL.META_ARCHITECTURE = "GFL"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.EFFICIENTNET.WEIGHTS = ""
    return cfg


def save_model(model_dir, state_dict: dict, cfg, iteration: int, test_set=None):
    """models/<run>/: the detector's weights and the config that rebuilds it (class names included),
    and, given `test_set` (a COCO file of its classes' test images), test_set.json naming it relative to
    the folder; each written atomically."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{WEIGHTS_FILE}.tmp"
    torch.save({"model": state_dict, "iteration": int(iteration)}, tmp)
    tmp.replace(model_dir / WEIGHTS_FILE)
    atomic_write_text(model_dir / CONFIG_FILE, inference_config(cfg).dump())
    if test_set is not None:
        relative = os.path.relpath(Path(test_set).resolve(), model_dir.resolve())
        atomic_write_text(model_dir / TEST_SET_FILE, json.dumps({"coco": relative}) + "\n")


def model_test_set(model_dir):
    """The COCO file of a model folder's own test set (its test_set.json), or None when it names none or
    the file is not there (moved without it)."""
    path = Path(model_dir) / TEST_SET_FILE
    if not path.is_file():
        return None
    try:
        coco = Path(os.path.normpath(Path(model_dir) / json.loads(path.read_text())["coco"]))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: damaged ({type(e).__name__}); delete it or write it again") from None
    return coco if coco.is_file() else None


def load_model_config(model_dir):
    """The config of a saved model folder (yaml.safe_load: nothing in it runs)."""
    model_dir = Path(model_dir)
    path = model_dir / CONFIG_FILE
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: no such model folder")
    for f in (path, model_dir / WEIGHTS_FILE):
        if not f.is_file():
            raise CheckpointError(f"{model_dir}: not a model folder (no {f.name}; one is written by training, "
                                  f"models/<run>/)")
    cfg = new_config()
    try:
        cfg.merge_from_file(str(path), allow_unsafe=False)
    except Exception as e:  # yaml errors, unknown keys, a type that does not match the key's
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a detector config of this project ({first})") from None
    head = cfg.MODEL.FCOS if cfg.MODEL.META_ARCHITECTURE == "ConfigurableFCOS" else cfg.MODEL.GFL
    if len(cfg.MODEL.CLASS_NAMES) != head.NUM_CLASSES:
        raise CheckpointError(f"{path}: MODEL.CLASS_NAMES names {len(cfg.MODEL.CLASS_NAMES)} classes, the detector "
                              f"has {head.NUM_CLASSES}")
    return cfg


def load_model(model_dir, device: str = None):
    """(model in eval mode, its config) from a saved model folder, on `device` (default: the config's, or the
    CPU where the config names a GPU and there is none)."""
    from . import modeling  # noqa: F401  (registers the project's detectors; modeling imports this module)

    cfg = load_model_config(model_dir)
    if device:
        cfg.MODEL.DEVICE = device
    elif cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"  # trained on a GPU, used on a machine without one
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"{model_dir}: device {cfg.MODEL.DEVICE} asked for, and this machine has no CUDA GPU "
                              f"(use --device cpu)")
    model = build_model(cfg)
    SafeCheckpointer(model).load(str(Path(model_dir) / WEIGHTS_FILE))
    model.eval()
    return model, cfg
