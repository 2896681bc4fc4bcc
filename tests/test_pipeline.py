"""The stage scripts end to end on a tiny synthetic dataset, with a training run killed (SIGKILL)
after a checkpoint and resumed: same iteration count and learning-rate schedule as planned."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import yaml
from detectron2.solver import build_lr_scheduler

from detectron_ext.config import build_config

from helpers import ROOT, tiny_params


def stage(cwd, *args, timeout=600):
    r = subprocess.run([sys.executable, str(ROOT / "stages" / args[0]), *args[1:]], cwd=cwd,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout + r.stderr


def planned_lr(cfg, iteration):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    sched = build_lr_scheduler(cfg, opt)
    for _ in range(iteration):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]


def test_stages_end_to_end_with_kill_and_resume(tmp_path):
    params = tiny_params(max_iter=40, checkpoint_period=10)
    params["distill"]["feat_mode"] = "selective"  # the paper's SD-IDD, all three parts (FR is off by default)
    params["runs"] = {"gfl_teacher": {"detector": "gfl", "phase": 0}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage(tmp_path, "prepare.py")
    stage(tmp_path, "split.py")
    assert (tmp_path / "metrics" / "split_stats.md").exists()

    ckpt = tmp_path / "checkpoints" / "gfl_teacher"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py"), "gfl_teacher"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # fvcore writes model_XXXXXXX.pth, then names it in last_checkpoint: kill once that is written
    while not (ckpt / "last_checkpoint").exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "models" / "gfl_teacher" / "model_final.pth").exists()
    last = (ckpt / "last_checkpoint").read_text().strip()
    killed_at = int(last.split("_")[1].split(".")[0]) + 1
    assert 10 <= killed_at < 40

    log = stage(tmp_path, "train.py", "gfl_teacher")
    assert f"resumed at iteration {killed_at}" in log
    records = [json.loads(line) for line in (ckpt / "metrics.json").read_text().splitlines()]
    logged = {r["iteration"]: r["lr"] for r in records if "lr" in r and r["iteration"] >= killed_at}
    assert 39 in logged
    cfg = build_config(params, "gfl", 3, "x", "y", ckpt, 8)
    for iteration, lr in logged.items():
        assert abs(lr - planned_lr(cfg, iteration)) < 1e-9, (iteration, lr, planned_lr(cfg, iteration))
    final = torch.load(tmp_path / "models" / "gfl_teacher" / "model_final.pth", weights_only=False)
    assert final["iteration"] == 40 and "optimizer" not in final

    # a finished run is not retrained; a changed config starts afresh
    assert "resumed at iteration 40" in stage(tmp_path, "train.py", "gfl_teacher")

    stage(tmp_path, "evaluate.py", "gfl_teacher")
    metrics = json.loads((tmp_path / "metrics" / "gfl_teacher.json").read_text())
    assert set(metrics["AP50_per_class"]) == set(params["datasets"]["synthetic"]["class_groups"][0])
    assert metrics["mAP50_old"] is None and 0 <= metrics["mAP50"] <= 100
    assert len(list((tmp_path / "plots" / "gfl_teacher" / "samples").glob("*.png"))) == 4
    assert (tmp_path / "plots" / "gfl_teacher" / "train_log.png").stat().st_size > 1000
    # an SD-IDD chain over the next phase, distilled from that teacher; its checkpoint is a plain GFL
    params["increments"] = {"sdidd": {"teacher": "gfl_teacher", "method": "sdidd"}}
    params["scales"]["ci"]["max_iter"] = 10
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage(tmp_path, "increment.py", "sdidd")
    metrics = json.loads((tmp_path / "metrics" / "sdidd.json").read_text())
    assert metrics["method"] == "sdidd" and len(metrics["AP50_per_class"]) == 6 and list(metrics["phases"]) == ["1"]
    plots = tmp_path / "plots" / "sdidd" / "phase1"
    log = (plots / "train_log.csv").read_text().splitlines()[0]
    assert "loss_distill_cls" in log and "loss_distill_feat" in log and "loss_fr_lambda" in log
    trace = pd.read_csv(plots / "distill_trace.csv")
    assert list(trace["iteration"]) == list(range(10))  # FR's λ logged every iteration
    assert trace["fr_lambda"].between(0, 1).all() and trace["fr_lambda"].iloc[0] == pytest.approx(0.5, abs=0.01)
    final = torch.load(tmp_path / "models" / "sdidd" / "phase1" / "model_final.pth", weights_only=False)["model"]
    assert not any(k.startswith(("teacher", "distill_")) for k in final)  # the detector alone
    stage(tmp_path, "report.py")
    assert "gfl_teacher" in (tmp_path / "reports" / "results.md").read_text()
    incremental = json.loads((tmp_path / "reports" / "incremental.json").read_text())
    assert incremental["sdidd/phase1"]["method"] == "sdidd"
    assert set(incremental["sdidd/phase1"]) >= {"mAP_old", "mAP_new", "mAP_all"}
    for png in ("per_class_ap.png", "forgetting.png"):
        assert (tmp_path / "plots" / "report" / png).stat().st_size > 1000
    params["scales"]["ci"]["max_iter"] = 40

    params["scales"]["ci"]["lr"] = 0.02
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    params["scales"]["ci"]["max_iter"] = 12
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    log = stage(tmp_path, "train.py", "gfl_teacher")
    assert "config changed" in log and "resumed at" not in log


def test_multi_step_chain_each_phase_distilled_from_the_previous(tmp_path):
    """2+2+2: phase 1's student learns from the teacher, phase 2's from phase 1's student (a
    checkpoint with 4 classes loads as the 4-old-class teacher); every phase is evaluated."""
    params = tiny_params(max_iter=6, checkpoint_period=100, num_train=12, num_test=4)
    params["task"] = "2+2+2"
    params["runs"] = {"gfl_teacher": {"detector": "gfl", "phase": 0}}
    params["increments"] = {"erd": {"teacher": "gfl_teacher", "method": "erd"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for args in (["prepare.py"], ["split.py"], ["train.py", "gfl_teacher"], ["evaluate.py", "gfl_teacher"],
                 ["increment.py", "erd"], ["report.py"]):
        stage(tmp_path, *args)
    metrics = json.loads((tmp_path / "metrics" / "erd.json").read_text())
    assert list(metrics["phases"]) == ["1", "2"] and metrics["phase"] == "2"
    assert len(metrics["phases"]["1"]["AP50_per_class"]) == 4 and len(metrics["AP50_per_class"]) == 6
    phase2 = yaml.safe_load((tmp_path / "models" / "erd" / "phase2" / "config.yaml").read_text())
    assert phase2["MODEL"]["DISTILL"]["TEACHER_WEIGHTS"] == "models/erd/phase1/model_final.pth"
    assert phase2["MODEL"]["DISTILL"]["NUM_OLD_CLASSES"] == 4 and phase2["MODEL"]["GFL"]["NUM_CLASSES"] == 6
    table = (tmp_path / "reports" / "incremental.md").read_text()
    assert "erd/phase1" in table and "erd/phase2" in table
