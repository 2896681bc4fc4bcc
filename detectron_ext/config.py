"""Config keys of the project's detectron2 extensions (`add_*_config`): GFL's and FCOS's heads here, the
rest from their one definition in detectron_ext/settings.py.

The pipeline sets them from params.yaml in one place (pipeline/config.py); a detectron2 user sets them
in a yaml file (configs/) or on the command line like any other key.
"""
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg

from .settings import DISTILL, EFFICIENTNET, ERD, TGFS, TRAINING


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
    TGFS.define(cfg)


def add_distill_config(cfg):
    """MODEL.DISTILL: the incremental student (DistillGFL) and its teacher (../shared/spec/sd-idd.md);
    MODEL.ERD: ERD as its official code (detectron_ext/distillation/erd.py)."""
    DISTILL.define(cfg)
    ERD.define(cfg)


def add_efficientnet_config(cfg):
    """MODEL.EFFICIENTNET: the EfficientNet-Lite + FPN backbone (detectron_ext/modeling/efficientnet.py)."""
    EFFICIENTNET.define(cfg)


def add_project_config(cfg):
    add_efficientnet_config(cfg)
    add_gfl_config(cfg)
    add_fcos_config(cfg)
    add_tgfs_config(cfg)
    add_distill_config(cfg)
    TRAINING.define(cfg)  # threads, determinism, precision, quarter turns
    cfg.MODEL.CLASS_NAMES = []  # the detector's classes in output order: a saved model names what it detects
    cfg.TEST.OLD_CLASSES = []  # classes of earlier phases: evaluation reports mAP50 old/new/all


def new_config():
    cfg = get_cfg()
    add_project_config(cfg)
    return cfg
