"""GFL head shapes, detector building from yaml, and detectron2 v0.6 FCOS fixes."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

import detectron_ext.modeling  # noqa: F401
from detectron_ext.config import new_config
from pipeline.config import CONFIG_DIR
from detectron_ext.modeling.gfl_head import GFLHead


def small_cfg(name, num_classes=3):
    cfg = new_config()
    cfg.merge_from_file(str(CONFIG_DIR / name))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.FPN.OUT_CHANNELS = 64
    for head in (cfg.MODEL.GFL, cfg.MODEL.FCOS):
        head.HEAD_CHANNELS, head.NUM_CONVS, head.NUM_CLASSES = 64, 2, num_classes
    return cfg


def batch(with_boxes=True, size=128):
    inst = Instances((size, size))
    boxes = [[10.0, 12.0, 60.0, 50.0], [70.0, 64.0, 120.0, 126.0]] if with_boxes else []
    inst.gt_boxes = Boxes(torch.tensor(boxes).reshape(-1, 4))
    inst.gt_classes = torch.tensor([0, 2][: len(boxes)], dtype=torch.long)
    return {"image": torch.rand(3, size, size) * 255, "instances": inst, "height": size, "width": size}


def test_gfl_head_output_shapes_across_levels():
    cfg = small_cfg("gfl_R_FPN.yaml", num_classes=5)
    model = build_model(cfg)
    feats = [torch.rand(2, 64, s, s) for s in (16, 8, 4, 2, 1)]
    logits, reg = model.head(feats)
    assert [t.shape for t in logits] == [torch.Size([2, 5, s, s]) for s in (16, 8, 4, 2, 1)]
    assert [t.shape for t in reg] == [torch.Size([2, 4 * 17, s, s]) for s in (16, 8, 4, 2, 1)]
    assert isinstance(model.head, GFLHead) and model.head.scales.shape == (5,)
    # GN towers, prior-probability bias
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.head.cls_subnet)
    assert model.head.cls_score.bias.detach().mean().item() == pytest.approx(-4.595, abs=1e-3)


def test_gfl_backbone_from_scratch_trains_every_stage():
    model = build_model(small_cfg("gfl_R_FPN.yaml"))
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert frozen == []
    assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in model.modules())
    assert list(model.backbone.output_shape()) == ["p3", "p4", "p5", "p6", "p7"]


@pytest.mark.parametrize("config", ["gfl_R_FPN.yaml", "fcos_R_FPN.yaml"])
def test_training_step_with_an_image_without_boxes(config):
    """detectron2 v0.6's FCOS crashed on images without boxes; GFL must handle them too."""
    model = build_model(small_cfg(config))
    model.train()
    with EventStorage():
        losses = model([batch(True), batch(False)])
        total = sum(losses.values())
        total.backward()
    assert torch.isfinite(total)
    with EventStorage():
        losses = model([batch(False)])
    assert all(torch.isfinite(v) for v in losses.values())


def test_fcos_head_builds_with_group_norm():
    """detectron2 v0.6's FCOSHead fails with norm="GN" (it test-builds a 1-channel GroupNorm(32))."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.meta_arch.fcos import FCOSHead
    with pytest.raises(ValueError):
        FCOSHead(input_shape=[ShapeSpec(channels=32)], conv_dims=[32], num_classes=3, norm="GN")
    model = build_model(small_cfg("fcos_R_FPN.yaml"))
    gns = [m for m in model.head.cls_subnet if isinstance(m, torch.nn.GroupNorm)]
    assert len(gns) == 2 and gns[0].num_groups == 32


def test_inference_outputs_scored_boxes_within_the_image():
    model = build_model(small_cfg("gfl_R_FPN.yaml"))
    model.eval()
    model.test_score_thresh = 0.0
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 96, 128) * 255, "height": 96, "width": 128}])[0]["instances"]
    assert 0 < len(out) <= 100
    b = out.pred_boxes.tensor
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= 128).all() and (b[:, 3] <= 96).all()


@pytest.mark.parametrize("fast", [True, False])
def test_precision_auto_is_bf16_only_where_bf16_is_fast(monkeypatch, fast):
    """MODEL.PRECISION auto resolves when the model is built, on the machine that builds it (a CPU
    without AVX-512 BF16 emulates bf16, many times slower), so a saved `auto` model runs in fp32 on such
    a CPU; fp32 and bf16 are taken as they are; anything else is an error."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: fast, raising=False)
    cfg = small_cfg("gfl_R_FPN.yaml")
    for name, expected in (("auto", "bf16" if fast else "fp32"), ("fp32", "fp32"), ("bf16", "bf16")):
        cfg.MODEL.PRECISION = name
        assert build_model(cfg).precision == expected
    cfg.MODEL.PRECISION = "fp16"
    with pytest.raises(ValueError, match="fp16"):
        build_model(cfg)


def test_fcos_distances_stay_positive_where_the_box_branch_goes_negative():
    """v0.6's FCOS head gives the distances to the box's sides linearly: once they turn negative (as they did
    from ImageNet features on DeepPCB) every box is inverted and its GIoU loss is stuck at 1. Ours: exp."""
    torch.manual_seed(0)
    model = build_model(small_cfg("fcos_R_FPN.yaml"))
    torch.nn.init.constant_(model.head.bbox_pred.bias, -1.0)  # the linear output: about -1 everywhere
    feats = [torch.rand(1, 64, s, s) for s in (16, 8, 4, 2, 1)]
    _, reg, _ = model.head(feats)
    assert all((r > 0).all() for r in reg)
    points = torch.tensor([[40.0, 40.0, 48.0, 48.0]])  # a stride-8 anchor box
    box = model.box2box_transform.apply_deltas(reg[0][0, :, 5, 5][None], points)
    assert (box[:, 2:] > box[:, :2]).all()  # a valid box around the point, not an inverted one
