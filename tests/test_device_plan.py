"""GPU runs without DVC: scripts/device_plan.py plans the stages with their dependency levels, and
scripts/device_run.sh runs one level's stages side by side (JOBS) and the next level after them."""
import importlib.util
import os
import subprocess
import sys

import torch
import yaml
from detectron2.modeling import build_model

from detectron_ext.modeling.efficientnet import load_imagenet_weights, resolve_weights

from helpers import ROOT
from test_efficientnet import lite_cfg


def load_device_plan():
    spec = importlib.util.spec_from_file_location("device_plan", ROOT / "scripts" / "device_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_gives_each_stage_the_level_after_its_dependencies():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    steps = load_device_plan().plan(params, ["evaluate@gfl_teacher", "increment@sdidd", "increment@erd"])
    level = {name: n for name, _, n in steps}
    assert level == {"prepare": 0, "split": 1, "train@gfl_teacher": 2,
                     "evaluate@gfl_teacher": 3, "increment@sdidd": 3, "increment@erd": 3}
    assert [n for _, _, n in steps] == sorted(n for _, _, n in steps)  # dependencies first
    assert dict((name, cmd) for name, cmd, _ in steps)["increment@sdidd"] == "python stages/increment.py sdidd"


def test_half_weights_load_into_the_backbone_as_the_float32_ones_rounded(tmp_path):
    """--half: the carried file holds the backbone's tensors in float16 (no classifier); loaded, each backbone
    tensor is the installed fp32 one rounded to float16."""
    path = load_device_plan().pack_weights("efficientnet-lite0", tmp_path, half=True)
    carried = torch.load(path, weights_only=True)
    assert {v.dtype for v in carried.values() if v.is_floating_point()} == {torch.float16}
    assert not any(k.startswith("_fc.") for k in carried)
    full = torch.load(resolve_weights("efficientnet-lite0", "package"), weights_only=True)
    bottom_up = build_model(lite_cfg(tmp_path, weights="")).backbone.bottom_up
    assert load_imagenet_weights(bottom_up, path) > 200
    weight = bottom_up.blocks[5]._depthwise_conv.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, full["_blocks.5._depthwise_conv.weight"].half().float())
    assert not torch.equal(weight, full["_blocks.5._depthwise_conv.weight"])


STAMP = """import sys, time
open(sys.argv[1], "w").write(f"{time.time()}\\n")
time.sleep(1.5)
open(sys.argv[1], "a").write(f"{time.time()}\\n")
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""


def test_device_run_runs_one_level_side_by_side_then_the_next(tmp_path):
    carry, work, out = tmp_path / "carry", tmp_path / "work", tmp_path / "out"
    carry.mkdir()
    (carry / "stamp.py").write_text(STAMP)
    (carry / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    stamp = f"python3 {carry / 'stamp.py'}"
    (carry / "plan.txt").write_text(f"0 {stamp} a\n0 {stamp} b\n1 {stamp} c\n1 {stamp} d 3\n")
    env = dict(os.environ, CARRY=str(carry), WORK=str(work), OUT=str(out), DATA_DIR="none", JOBS="2",
               PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_run.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # stage d failed: reported, the plan went on
    times = {k: [float(t) for t in (work / k).read_text().split()] for k in "abcd"}
    assert times["b"][0] < times["a"][1] and times["a"][0] < times["b"][1]  # level 0 side by side
    assert min(times["c"][0], times["d"][0]) >= max(times["a"][1], times["b"][1])  # level 1 after it
    summary = (out / "summary.txt").read_text().splitlines()
    assert len(summary) == 4
    assert sum("stamp.py d 3: rc 3," in line for line in summary) == 1
    assert sum(": rc 0," in line for line in summary) == 3
    assert (out / "results.tgz").is_file()
