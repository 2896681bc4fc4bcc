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

from pipeline.workspace import dvc, make_workspace

from helpers import ROOT, run_config, tiny_params


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
    params["runs"] = {"gfl_teacher": {"detector": "gfl", "phase": 0, "assigner": "base"}}
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
    cfg = run_config(params, out_dir=ckpt)
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
    params["increments"] = {"sdidd": {"teacher": "gfl_teacher", "method": "sdidd", "assigner": "base"}}
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


def test_dvc_repro_runs_a_multi_step_task_each_phase_distilled_from_the_previous(tmp_path):
    """`dvc repro` of the whole pipeline (stage order from dvc.yaml alone) on 2+2+2: phase 1's students
    learn from the teacher, phase 2's from phase 1's (a model with 4 classes is the 4-old-class teacher);
    every phase is evaluated, the report lists them, and a second `dvc repro` has nothing to do."""
    params = tiny_params(max_iter=6, checkpoint_period=100, num_train=12, num_test=4)
    params["task"] = "2+2+2"
    params["runs"] = {"gfl_teacher": {"detector": "gfl", "phase": 0, "assigner": "base"}}
    work = make_workspace(tmp_path / "work", params)
    r = dvc(work, "repro", capture=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    metrics = json.loads((work / "metrics" / "erd.json").read_text())
    assert list(metrics["phases"]) == ["1", "2"] and metrics["phase"] == "2"
    assert len(metrics["phases"]["1"]["AP50_per_class"]) == 4 and len(metrics["AP50_per_class"]) == 6
    trained = yaml.safe_load((work / "checkpoints" / "erd" / "phase2" / "config.yaml").read_text())
    assert trained["MODEL"]["DISTILL"]["TEACHER_WEIGHTS"] == "models/erd/phase1/model_final.pth"
    assert trained["MODEL"]["DISTILL"]["NUM_OLD_CLASSES"] == 4 and trained["MODEL"]["GFL"]["NUM_CLASSES"] == 6
    saved = yaml.safe_load((work / "models" / "erd" / "phase2" / "config.yaml").read_text())
    assert saved["MODEL"]["META_ARCHITECTURE"] == "GFL" and len(saved["MODEL"]["CLASS_NAMES"]) == 6
    table = (work / "reports" / "incremental.md").read_text()
    assert all(f"{m}/phase{k}" in table for m in ("finetune", "erd", "sdidd") for k in (1, 2))
    assert "SD-IDD / fine-tune" in (work / "metrics" / "bench.md").read_text()  # the bench stage ran too
    r = dvc(work, "status", "--json", capture=True)
    assert json.loads(r.stdout) == {}, r.stdout
    check_report_page(work)


def check_report_page(work):
    """`dvc plots show` writes one page; in headless Chromium every chart renders (offline: the page
    holds vega inline, scripts/plots_template.py) and every image it shows is a PNG on disk."""
    import re
    import shutil

    template = ROOT / ".cache" / "vega" / "dvc_plots_template.html"
    assert template.is_file(), "scripts/setup.sh builds the offline page template (scripts/plots_template.py)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "scripts/setup.sh installs Debian's chromium"
    r = dvc(work, "plots", "show", "-o", "page", "--html-template", str(template), capture=True)
    assert r.returncode == 0, r.stderr
    page = work / "page" / "index.html"
    source = page.read_text()
    charts = re.findall(r"vegaEmbed\('#([^']+)'", source)
    assert "per_class_ap" in source and "forgetting" in source and "train_log" in source and len(charts) >= 6
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=30000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    drawn = dom.count('class="marks"')  # each rendered vega view: a <canvas class="marks"> (or svg)
    assert drawn == len(charts), f"{drawn} of {len(charts)} charts rendered"
    images = re.findall(r'<img src="([^"$]+\.png)"', dom)
    assert images and any("samples" in i for i in images)
    for src in images:
        assert (page.parent / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
