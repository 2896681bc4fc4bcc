"""TGFS: hand-built cases for its pure functions, and the FCOS/GFL integration (cold start, zero
inference overhead, upstream-equal losses without reweighting)."""
import dataclasses
import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from detectron_ext.config import new_config
from detectron_ext.modeling.tgfs import (candidate_mask, level_costs, level_selection, pair_costs, sample_weights,
                                         select_levels, smoothed_level_costs, tgfs_assign, tgfs_match, tgfs_options,
                                         unselected_candidates)
from detectron_ext.modeling.tgfs_training import LevelCostMemory
from test_models import batch, small_cfg


def options(**changes):
    """TGFS's options at their defaults (MODEL.TGFS), with `changes`."""
    return dataclasses.replace(tgfs_options(new_config().MODEL.TGFS), **changes)

# five points: two on level 0, two on level 1, one on level 3 (P6, above the competing levels)
LEVEL = torch.tensor([0, 0, 1, 1, 3])


def test_candidates_inside_the_box_and_near_its_centre():
    points = torch.tensor([[50.0, 50.0], [20.0, 50.0], [50.0, 95.0], [150.0, 50.0]])
    strides = torch.tensor([8.0, 8.0, 32.0, 8.0])
    gt = torch.tensor([[10.0, 10.0, 90.0, 90.0]])
    assert candidate_mask(points, strides, gt, "box")[:, 0].tolist() == [True, True, False, False]
    # centre (50, 50): radius 1.5 x 8 = 12 px on stride 8 -> (20, 50) is too far; (50, 95) is outside the box
    assert candidate_mask(points, strides, gt, "center", 1.5)[:, 0].tolist() == [True, False, False, False]


def test_a_gt_picks_the_level_with_the_lowest_mean_cost():
    costs = torch.tensor([[1.0], [3.0], [1.5], [1.9], [0.1]])  # level 0: mean 2.0, level 1: mean 1.7
    cand = torch.ones(5, 1, dtype=torch.bool)
    per_level = level_costs(costs, cand, LEVEL, num_levels=3)
    assert per_level[:, 0].tolist() == pytest.approx([2.0, 1.7, math.inf])
    assert select_levels(per_level)[:, 0].tolist() == [False, True, False]
    matched = tgfs_match(costs, cand, LEVEL, torch.full((5,), -1), options())
    assert matched.tolist() == [-1, -1, 0, 0, -1]
    # top-1 quality: level 0's cheapest point (1.0) beats level 1's (1.5)
    top1 = tgfs_match(costs, cand, LEVEL, torch.full((5,), -1), options(quality_topk=1))
    assert top1.tolist() == [0, 0, -1, -1, -1]
    # a margin of 0.3 also takes level 0 (2.0 <= 1.7 + 0.3)
    wide = tgfs_match(costs, cand, LEVEL, torch.full((5,), -1), options(margin=0.31))
    assert wide.tolist() == [0, 0, 0, 0, -1]


def test_high_levels_keep_the_base_positives_or_get_none():
    costs = torch.tensor([[1.0], [1.0], [2.0], [2.0], [0.5]])
    cand = torch.ones(5, 1, dtype=torch.bool)
    base = torch.tensor([-1, -1, 0, -1, 0])  # the detector's own rule put the GT on level 1 and P6
    assert tgfs_match(costs, cand, LEVEL, base, options()).tolist() == [0, 0, -1, -1, 0]
    assert tgfs_match(costs, cand, LEVEL, base, options(high_levels="none")).tolist() == [0, 0, -1, -1, -1]


def test_a_gt_without_candidate_points_keeps_the_base_positives():
    costs = torch.tensor([[1.0, 0.2], [1.0, 0.2], [2.0, 0.2], [2.0, 0.2], [0.5, 0.2]])
    cand = torch.tensor([[True, False], [True, False], [True, False], [True, False], [False, False]])
    base = torch.tensor([-1, -1, 1, -1, -1])  # GT 1 has no candidate; the base rule gave it point 2
    matched = tgfs_match(costs, cand, LEVEL, base, options())
    assert matched.tolist() == [0, 0, 1, -1, -1]
    # and with no base positive either it simply has none (no error, no NaN)
    assert tgfs_match(costs, cand, LEVEL, torch.full((5,), -1), options()).tolist() == [0, 0, -1, -1, -1]


def test_a_point_claimed_by_two_gts_goes_to_the_cheaper():
    costs = torch.tensor([[1.0, 0.4], [1.0, 3.0]])
    cand = torch.ones(2, 2, dtype=torch.bool)
    matched = tgfs_match(costs, cand, torch.tensor([0, 0]), torch.full((2,), -1), options())
    assert matched.tolist() == [1, 0]


def test_reweighting_values():
    costs = torch.tensor([0.0, math.log(2.0)])  # q = 1, 0.5
    assert sample_weights(costs, "none").tolist() == [1.0, 1.0]
    assert sample_weights(costs, "quality", 1.0).tolist() == pytest.approx([4 / 3, 2 / 3])
    assert sample_weights(costs, "quality", 2.0).tolist() == pytest.approx([1.6, 0.4])  # 1 : 0.25
    assert sample_weights(costs, "focal", 1.0).tolist() == pytest.approx([0.0, 2.0])  # 0 : 0.5
    # the mean weight stays 1 (the positives' total weight is unchanged); degenerate cases give ones
    assert sample_weights(torch.tensor([0.3, 1.0, 2.5]), "focal", 2.0).mean().item() == pytest.approx(1.0)
    assert sample_weights(torch.zeros(3), "focal").tolist() == [1.0, 1.0, 1.0]
    assert sample_weights(torch.zeros(0), "quality").numel() == 0


def test_pair_costs_by_hand():
    logits = torch.tensor([[0.0, 2.0]])
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 10.0]])
    cost = pair_costs(logits, pred, gt, torch.tensor([0, 1]), loc_weight=2.0, focal_gamma=2.0)
    p1 = 1 / (1 + math.exp(-2.0))
    # GT 0: p = 0.5, GIoU 1 -> 0.25 ln 2; GT 1: IoU 0.5 and the enclosing box is the union -> GIoU 0.5
    assert cost[0].tolist() == pytest.approx([0.25 * math.log(2), (1 - p1) ** 2 * -math.log(p1) + 2 * 0.5])


def test_assign_an_image_without_boxes_and_the_reweighting_alone_mode():
    points = torch.tensor([[5.0, 5.0], [15.0, 5.0]])
    args = (points, torch.tensor([8.0, 8.0]), torch.tensor([0, 0]), torch.zeros(2, 2), torch.zeros(2, 4))
    matched, w = tgfs_assign(*args, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
                             torch.full((2,), -1), options())
    assert matched.tolist() == [-1, -1] and w.tolist() == [1.0, 1.0]
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 5.0, 5.0]])
    base = torch.tensor([0, 0])
    matched, w = tgfs_assign(points, torch.tensor([8.0, 8.0]), torch.tensor([0, 0]), torch.zeros(2, 2), pred,
                             torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([1]), base,
                             options(selection="base", reweight="quality"))
    assert matched.tolist() == [0, 0]  # the base assignment, kept
    assert w[0] > 1 > w[1] and w.mean().item() == pytest.approx(1.0)  # the better box weighs more


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"MODEL\.TGFS\.REWEIGHT: must be one of none, quality, focal"):
        options(reweight="cubic")
    with pytest.raises(ValueError, match=r"MODEL\.TGFS\.UNSELECTED"):
        options(unselected="negative")


def test_candidates_on_the_lost_levels_are_ignored_not_background():
    # the GT picks level 1 (mean 1.7 < 2.0): its level-0 candidates (points 0, 1) lose; point 4 is P6
    costs = torch.tensor([[1.0], [3.0], [1.5], [1.9], [0.1]])
    cand = torch.tensor([[True], [True], [True], [True], [False]])
    matched = tgfs_match(costs, cand, LEVEL, torch.full((5,), -1), options())
    assert matched.tolist() == [-1, -1, 0, 0, -1]
    selected = level_selection(costs, cand, LEVEL, options())[1]
    assert unselected_candidates(cand, LEVEL, selected, matched).tolist() == [True, True, False, False, False]
    # a point that lost for one GT but is positive for another is not ignored
    two = torch.tensor([[1.0, 0.1], [3.0, 9.0], [1.5, 9.0], [1.9, 9.0], [0.1, 9.0]])
    cand2 = torch.tensor([[True, True], [True, False], [True, False], [True, False], [False, False]])
    matched2 = tgfs_match(two, cand2, LEVEL, torch.full((5,), -1), options())
    assert matched2.tolist() == [1, -1, 0, 0, -1]
    selected2 = level_selection(two, cand2, LEVEL, options())[1]
    assert unselected_candidates(cand2, LEVEL, selected2, matched2).tolist() == [False, True, False, False, False]


def test_assign_weights_zero_on_the_ignored_points_only_with_ignore():
    # two points per level on levels 0 and 1, a GT around them; level 1's boxes are the good ones
    points = torch.tensor([[48.0, 48.0], [56.0, 56.0], [48.0, 48.0], [64.0, 64.0]])
    strides = torch.tensor([8.0, 8.0, 16.0, 16.0])
    level = torch.tensor([0, 0, 1, 1])
    gt = torch.tensor([[20.0, 20.0, 80.0, 80.0]])
    pred = torch.tensor([[40.0, 40.0, 50.0, 50.0]] * 2 + [[20.0, 20.0, 80.0, 80.0]] * 2)
    logits = torch.zeros(4, 1)
    for mode, lost_weight in (("ignore", 0.0), ("background", 1.0)):
        matched, w = tgfs_assign(points, strides, level, logits, pred, gt, torch.tensor([0]),
                                 torch.full((4,), -1), options(unselected=mode, reweight="none"))
        assert matched.tolist() == [-1, -1, 0, 0]
        assert w.tolist() == [lost_weight, lost_weight, 1.0, 1.0]


def tgfs_cfg(name, **tgfs):
    cfg = small_cfg(name)
    cfg.MODEL.TGFS.ENABLED = True
    for k, v in tgfs.items():
        setattr(cfg.MODEL.TGFS, k.upper(), v)
    return cfg


@pytest.mark.parametrize("config", ["fcos_R_FPN.yaml", "gfl_R_FPN.yaml"])
def test_cold_start_uses_the_base_assignment_then_tgfs(config):
    torch.manual_seed(0)
    base = build_model(small_cfg(config))
    model = build_model(tgfs_cfg(config, cold_start_iters=5))
    model.load_state_dict(base.state_dict())
    base.train(), model.train()
    data = [batch(True), batch(False)]
    with EventStorage(start_iter=2) as storage:
        assert {k: v.item() for k, v in model(data).items()} == pytest.approx({k: v.item() for k, v in base(data).items()})
        assert not any(k.startswith("tgfs/") for k in storage.histories())
    with EventStorage(start_iter=5) as storage:
        losses = model(data)
        assert all(torch.isfinite(v) for v in losses.values())
        shares = [storage.history(f"tgfs/pos_p{k}").latest() for k in range(3, 8)]
        assert sum(shares) == pytest.approx(1.0) and shares[3] == shares[4] == 0  # 128 px: P6/P7 never used
        sum(losses.values()).backward()


def test_fcos_weighted_losses_with_unit_weights_equal_upstream():
    torch.manual_seed(0)
    model = build_model(small_cfg("fcos_R_FPN.yaml"))
    model.train()
    data = [batch(True), batch(True)]
    images = model.preprocess_image(data)
    gt = [d["instances"] for d in data]
    features = model.backbone(images.tensor)
    features = [features[f] for f in model.head_in_features]
    logits, deltas, ctr = model._transpose_dense_predictions(model.head(features), [model.num_classes, 4, 1])
    anchors = model.anchor_generator(features)
    labels, boxes = model.label_anchors(anchors, gt)
    with EventStorage():
        upstream = model.losses(anchors, logits, labels, deltas, boxes, ctr)
        del model.loss_normalizer  # _ema_update moved it: start both from its initial value
        ones = [torch.ones(len(labels[0])) for _ in labels]
        ours = model.weighted_losses(anchors, logits, labels, deltas, boxes, ctr, ones)
    assert {k: v.item() for k, v in ours.items()} == pytest.approx({k: v.item() for k, v in upstream.items()}, rel=1e-5)


@pytest.mark.parametrize("config", ["fcos_R_FPN.yaml", "gfl_R_FPN.yaml"])
def test_zero_inference_overhead_same_parameters_and_outputs(config):
    """A TGFS-trained detector is the plain detector at inference: the same parameters, the same
    forward code, the same detections (speed: the bench stage, pipeline/bench.py's tgfs_speeds)."""
    plain, tgfs = build_model(small_cfg(config)), build_model(tgfs_cfg(config))
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in tgfs.state_dict().items()}
    tgfs.load_state_dict(plain.state_dict())
    plain.eval(), tgfs.eval()
    assert type(tgfs).forward_inference is type(plain).forward_inference
    with torch.no_grad():
        data = [batch()]
        a, b = plain(data)[0]["instances"], tgfs(data)[0]["instances"]
    assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor) and torch.equal(a.scores, b.scores)


def test_an_incremental_chain_trains_its_student_with_its_own_assigner():
    from pipeline.runs import increment_specs
    from helpers import tiny_params
    params = tiny_params()
    params["increments"]["sdidd"]["assigner"] = "tgfs"
    assert [s.assigner for s in increment_specs(params, "sdidd")] == ["tgfs"]
    assert [s.assigner for s in increment_specs(params, "erd")] == ["base"]


def test_build_config_maps_the_tgfs_params():
    from pipeline.config import build_config
    from pipeline.runs import run_spec
    from helpers import tiny_params
    params = tiny_params(max_iter=40)
    params["assigners"]["tgfs"]["reweight"] = "focal"
    cfg = build_config(params, run_spec(params, "fcos_tgfs_joint"), 8)
    assert cfg.MODEL.TGFS.ENABLED and cfg.MODEL.TGFS.REWEIGHT == "focal" and cfg.MODEL.TGFS.COLD_START_ITERS == round(40 * params["assigners"]["tgfs"]["cold_start_fraction"])
    assert not build_config(params, run_spec(params, "fcos_joint"), 8).MODEL.TGFS.ENABLED
    params["runs"]["fcos_joint"]["assigner"] = "atss"
    with pytest.raises(ValueError, match="assigner"):
        build_config(params, run_spec(params, "fcos_joint"), 8)


def test_training_log_keeps_the_level_shares(tmp_path):
    import json

    from pipeline.training_log import write_training_log
    lines = [{"iteration": 19, "total_loss": 2.0, "loss_fcos_cls": 1.0, "lr": 0.01},
             {"iteration": 39, "total_loss": 1.5, "loss_fcos_cls": 0.8, "lr": 0.01, "tgfs/pos_p3": 0.7,
              "tgfs/pos_p4": 0.3, "data_time": 0.1}]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    df = write_training_log(tmp_path / "metrics.json", tmp_path / "log.csv", tmp_path / "log.png")
    assert list(df.columns) == ["iteration", "total_loss", "loss_fcos_cls", "lr", "tgfs/pos_p3", "tgfs/pos_p4"]
    assert df["tgfs/pos_p3"].isna().tolist() == [True, False] and (tmp_path / "log.png").stat().st_size > 0


def test_smoothed_level_costs_by_hand():
    previous = torch.tensor([[1.0, math.inf], [3.0, 2.0], [math.inf, 1.0]])
    current = torch.tensor([[2.0, 4.0], [1.0, math.inf], [0.5, 3.0]])
    # known on both: 0.75 x before + 0.25 x now; unknown before: now; no candidate now: +inf
    assert smoothed_level_costs(previous, current, 0.75).tolist() == [[1.25, 4.0], [2.5, math.inf], [0.5, 1.5]]
    assert smoothed_level_costs(previous, current, 0.0).tolist() == current.tolist()


def test_remembered_costs_outvote_one_noisy_visit():
    """With a cost momentum a GT keeps the level it was cheap on over its earlier visits when one visit's
    costs favour another level; without, the level follows the current visit."""
    cand = torch.ones(5, 1, dtype=torch.bool)
    cheap_on_0 = torch.tensor([[1.0], [1.0], [2.0], [2.0], [0.1]])
    cheap_on_1 = torch.tensor([[2.0], [2.0], [1.5], [1.5], [0.1]])
    memory = LevelCostMemory(0.8)
    for _ in range(3):
        level_selection(cheap_on_0, cand, LEVEL, options(cost_momentum=0.8), memory, ["img/0"])
    per_level, selected = level_selection(cheap_on_1, cand, LEVEL, options(cost_momentum=0.8), memory, ["img/0"])
    assert selected[:, 0].tolist() == [True, False, False]
    assert per_level[:, 0].tolist() == pytest.approx([1.2, 1.9, math.inf])
    assert level_selection(cheap_on_1, cand, LEVEL, options())[1][:, 0].tolist() == [False, True, False]


def test_the_remembered_costs_travel_in_the_checkpoint(tmp_path):
    """The memory is the detector's extra state: saved with the weights, loaded safely (weights_only),
    so a resumed training chooses levels as the killed one would have."""
    torch.manual_seed(0)
    model = build_model(tgfs_cfg("fcos_R_FPN.yaml", cost_momentum=0.5))
    model.train()
    data = [dict(batch(True), image_id=7), dict(batch(True), image_id=8)]
    with EventStorage(start_iter=0):
        model(data)
    assert sorted(model.tgfs_memory.costs) == ["7/0", "7/1", "8/0", "8/1"]
    torch.save(model.state_dict(), tmp_path / "model.pth")
    resumed = build_model(tgfs_cfg("fcos_R_FPN.yaml", cost_momentum=0.5))
    resumed.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    assert resumed.tgfs_memory.costs.keys() == model.tgfs_memory.costs.keys()
    assert all(torch.equal(resumed.tgfs_memory.costs[k], v) for k, v in model.tgfs_memory.costs.items())
    assert build_model(tgfs_cfg("fcos_R_FPN.yaml")).tgfs_memory is None  # momentum 0: nothing remembered
