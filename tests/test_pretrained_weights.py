"""ImageNet weights from a path: a torchvision ResNet .pth converted and loaded into the backbone."""
import torch
import torchvision
from detectron2.modeling import build_model

from detectron_ext.checkpoint import SafeCheckpointer
from detectron_ext.modeling.backbone import convert_torchvision_checkpoint, is_torchvision_checkpoint

from helpers import run_config, tiny_params


def test_torchvision_resnet18_weights_load_into_detectron2_backbone(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    torch.nn.init.normal_(tv.layer3[1].conv2.weight)
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    assert is_torchvision_checkpoint(tmp_path / "r18.pth")
    pkl = convert_torchvision_checkpoint(tmp_path / "r18.pth", tmp_path / "r18.pkl")

    params = tiny_params()
    params["model"].update(weights=pkl, weights_format="torchvision")
    cfg = run_config(params, out_dir=tmp_path)
    assert cfg.INPUT.FORMAT == "RGB" and not cfg.MODEL.RESNETS.STRIDE_IN_1X1
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN" and cfg.MODEL.BACKBONE.FREEZE_AT == 2
    model = build_model(cfg)
    SafeCheckpointer(model).load(cfg.MODEL.WEIGHTS)  # the .pkl through the arrays-only unpickler
    bottom_up = model.backbone.bottom_up
    assert torch.equal(bottom_up.res4[1].conv2.weight, tv.layer3[1].conv2.weight)
    assert torch.equal(bottom_up.stem.conv1.weight, tv.conv1.weight)
    assert torch.equal(bottom_up.res3[0].shortcut.norm.running_var, tv.layer2[0].downsample[1].running_var)
