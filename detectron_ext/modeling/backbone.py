"""ResNet + FPN (P3-P7) backbone, and loading torchvision ImageNet weights into it."""
import pickle
from pathlib import Path

from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import FPN, LastLevelP6P7
from detectron2.modeling.backbone.resnet import build_resnet_backbone

from ..checkpoint import load_torch

TORCHVISION_PIXEL_MEAN = [123.675, 116.28, 103.53]  # torchvision's ImageNet normalisation: RGB, 0-255
TORCHVISION_PIXEL_STD = [58.395, 57.12, 57.375]


@BACKBONE_REGISTRY.register()
def build_resnet_fpn_p3p7_backbone(cfg, input_shape):
    """detectron2's ResNet and FPN on C3-C5; P6 from P5's output by a stride-2 conv, P7 from P6
    (detectron2's LastLevelP6P7, which applies a ReLU before P7's conv; MMDetection does not)."""
    bottom_up = build_resnet_backbone(cfg, input_shape)
    out = cfg.MODEL.FPN.OUT_CHANNELS
    return FPN(bottom_up=bottom_up, in_features=cfg.MODEL.FPN.IN_FEATURES, out_channels=out,
               norm=cfg.MODEL.FPN.NORM, top_block=LastLevelP6P7(out, out, in_feature="p5"),
               fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


def torchvision_resnet_to_detectron2(state_dict: dict) -> dict:
    """Rename torchvision ResNet keys to detectron2's (layerN -> res{N+1}, bnK -> convK.norm,
    downsample -> shortcut, stem); the fc layer is dropped."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("fc."):
            continue
        nk = k
        for i in range(4):
            nk = nk.replace(f"layer{i + 1}", f"res{i + 2}")
        for i in (1, 2, 3):
            nk = nk.replace(f"bn{i}", f"conv{i}.norm")
        nk = nk.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
        if "res" not in nk:
            nk = "stem." + nk
        out[nk] = v.detach().cpu().numpy()
    return out


def is_torchvision_checkpoint(path) -> bool:
    if Path(path).suffix not in (".pth", ".pt"):
        return False
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: pretrained weights file is missing")
    return "layer1.0.conv1.weight" in _load_state_dict(path)


def _load_state_dict(path) -> dict:
    obj = load_torch(path)
    return obj.get("state_dict", obj) if isinstance(obj, dict) else obj


def convert_torchvision_checkpoint(src, dst) -> str:
    """Write a detectron2 .pkl (matching heuristics on) from a torchvision ResNet .pth."""
    data = {"model": torchvision_resnet_to_detectron2(_load_state_dict(src)), "__author__": "torchvision",
            "matching_heuristics": True}
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as f:
        pickle.dump(data, f)
    return str(dst)
