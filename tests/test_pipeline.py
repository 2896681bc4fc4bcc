"""The stage scripts end to end on a tiny synthetic dataset, with a training run killed (SIGKILL)
after a checkpoint and resumed: same iteration count and learning-rate schedule as planned."""
import hashlib
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
    # another validation share under the same config: the training set changed, so it trains afresh
    params["validation"]["fraction"] = 0.3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage(tmp_path, "split.py")
    log = stage(tmp_path, "train.py", "gfl_teacher")
    assert "training set or teacher changed" in log and "resumed at iteration" not in log

    stage(tmp_path, "evaluate.py", "gfl_teacher")
    metrics = json.loads((tmp_path / "metrics" / "gfl_teacher.json").read_text())
    assert set(metrics["AP50_per_class"]) == set(params["datasets"]["synthetic"]["class_groups"][0])
    assert metrics["mAP50_old"] is None and 0 <= metrics["mAP50"] <= 100
    assert metrics["split"] == "val"  # scored on the validation images; the test split is for the final tables
    train_sha = hashlib.sha256((tmp_path / "data" / "splits" / "phase0_train.json").read_bytes()).hexdigest()
    assert metrics["provenance"]["train_json_sha256"] == train_sha and metrics["provenance"]["teacher_sha256"] is None
    assert len(list((tmp_path / "plots" / "gfl_teacher" / "samples").glob("*.png"))) == 4
    assert (tmp_path / "plots" / "gfl_teacher" / "train_log.png").stat().st_size > 1000
    # an SD-IDD chain over the next phase, distilled from that teacher; its checkpoint is a plain GFL
    params["increments"] = {"sdidd": {"teacher": "gfl_teacher", "method": "sdidd", "assigner": "base",
                                      "reads": ["alpha", "beta", "distill"]}}
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
    assert all(f"{m}/phase{k}" in table for m in ("finetune", "erd", "sdidd", "global_erdbox") for k in (1, 2))
    assert "| global_erdbox " in table  # the variant under its own name, not as sdidd
    assert "SD-IDD / fine-tune" in (work / "metrics" / "bench.md").read_text()  # the bench stage ran too
    r = dvc(work, "status", "--json", capture=True)
    assert json.loads(r.stdout) == {}, r.stdout
    check_report_page(work)


# Injected into a copy of the report page: every chart drawn as SVG; once all are drawn, per chart its size, its
# axes (title, labels), its texts, and the pairs of visible labels whose boxes overlap (each axis's labels,
# each legend's, each text mark's), written as JSON into <pre id="page-measure"> for --dump-dom to return.
MEASURE_PAGE = r"""<script type="text/javascript">
(function () {
  var embed = window.vegaEmbed, drawn = [];
  window.vegaEmbed = function (el, spec, opts) {
    var p = embed(el, spec, Object.assign({renderer: "svg"}, opts || {}));
    drawn.push(p.then(function () { return {id: el.slice(1)}; },
                      function (e) { return {id: el.slice(1), error: String(e)}; }));
    return p;
  };
  function visible(e) {
    for (var n = e; n && n.tagName !== "svg"; n = n.parentNode) {
      var o = n.getAttribute("opacity");
      if ((o !== null && parseFloat(o) === 0) || getComputedStyle(n).opacity === "0") return false;
    }
    var r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && e.textContent.trim() !== "";
  }
  function overlaps(texts) {
    var found = [];
    for (var i = 0; i < texts.length; i++) for (var j = i + 1; j < texts.length; j++) {
      var a = texts[i].getBoundingClientRect(), b = texts[j].getBoundingClientRect();
      var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) found.push([texts[i].textContent, texts[j].textContent]);
    }
    return found;
  }
  function measure(results) {
    var charts = results.map(function (r) {
      var div = document.getElementById(r.id), svg = div && div.querySelector("svg");
      if (!div) return {id: r.id, left_out: true};
      var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0}, chart = {
        id: r.id, error: r.error || null,
        width: box.width, height: box.height, axes: [], texts: [], overlaps: []};
      if (!svg) return chart;
      svg.querySelectorAll("g.role-axis").forEach(function (axis) {
        var title = axis.querySelector("g.role-axis-title text");
        var labels = Array.prototype.filter.call(axis.querySelectorAll("g.role-axis-label text"), visible);
        chart.axes.push({title: title ? title.textContent : null,
                         labels: labels.map(function (t) { return t.textContent; })});
      });
      svg.querySelectorAll("g.role-axis-label, g.role-legend-label, g.mark-text").forEach(function (g) {
        var texts = Array.prototype.filter.call(g.querySelectorAll(":scope > text"), visible);
        chart.overlaps = chart.overlaps.concat(overlaps(texts));
      });
      chart.texts = Array.prototype.filter.call(svg.querySelectorAll("text"), visible)
        .map(function (t) { return t.textContent; });
      return chart;
    });
    var pre = document.createElement("pre");
    pre.id = "page-measure";
    pre.textContent = JSON.stringify({height: document.documentElement.scrollHeight, width: window.innerWidth,
                                      charts: charts, left_out: window.emptyPlots || []});
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () {
    Promise.all(drawn).then(function (results) { setTimeout(function () { measure(results); }, 100); });
  });
})();
</script>
"""


def render_report_page(page, width=1280) -> dict:
    """Open the page (index.html of `dvc plots show`) in headless Chromium, `width` px wide, and return what
    MEASURE_PAGE measured: {"height", "width", "charts": [{"id", "error", "width", "height", "axes",
    "texts", "overlaps"} or {"id", "left_out"}], "left_out"} and the rendered DOM under "dom"."""
    import html
    import re
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "scripts/setup.sh installs Debian's chromium"
    source = page.read_text()
    measured = page.with_name("measured.html")
    at = source.rindex("\n<body>") + len("\n<body>")  # the page's own (vega-embed's source holds one too)
    measured.write_text(source[:at] + "\n" + MEASURE_PAGE + source[at:])
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--window-size={width},1000", "--virtual-time-budget=30000", "--dump-dom",
                          measured.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="page-measure">(.*?)</pre>', dom, re.S)
    assert found, "the page did not finish drawing its charts:\n" + dom[-2000:]
    return {**json.loads(html.unescape(found.group(1))), "dom": dom}


def check_report_page(work, max_height=None) -> dict:
    """`dvc plots show` writes one page; in headless Chromium (offline: the page holds vega inline,
    scripts/plots_template.py) every chart renders, as SVG of nonzero size no wider than the page, with no
    error; none has two of
    its labels (an axis's, a legend's, a text mark's) overlapping; no axis is titled by an internal name;
    the forgetting chart's steps are whole numbers on named axes; every image is a PNG on disk; and the
    page, 1280 px wide, is at most `max_height` px tall. Returns the measurements."""
    import re

    template = ROOT / ".cache" / "vega" / "dvc_plots_template.html"
    assert template.is_file(), "scripts/setup.sh builds the offline page template (scripts/plots_template.py)"
    r = dvc(work, "plots", "show", "-o", "page", "--html-template", str(template), capture=True)
    assert r.returncode == 0, r.stderr
    page = work / "page" / "index.html"
    charts = re.findall(r"vegaEmbed\('#([^']+)'", page.read_text())
    assert {"reports_per_class_ap_csv", "reports_forgetting_csv", "reports_user_increments_csv"} <= set(charts)
    measured = render_report_page(page)
    drawn = {c["id"]: c for c in measured["charts"] if not c.get("left_out")}
    left_out = {c["id"] for c in measured["charts"] if c.get("left_out")}
    assert set(drawn) | left_out == set(charts), "every chart is drawn or left out as empty"
    for name in left_out:  # only a chart with no data points is left out: fine-tuning's distillation trace
        assert "finetune" in name and "distill_trace" in name, name
    for name, chart in drawn.items():
        assert not chart["error"] and chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["width"] <= measured["width"], f"{name} is wider than the page"
        assert not chart["overlaps"], (name, chart["overlaps"][:5])
        for axis in chart["axes"]:
            assert axis["title"] not in ("y", "dvc_inferred_y_value", "run_class"), (name, axis)
    forgetting = {a["title"]: a["labels"] for a in drawn["reports_forgetting_csv"]["axes"] if a["labels"]}  # not grids
    assert set(forgetting) == {"increment step", "mAP50 of the old classes (%)"}, forgetting
    assert forgetting["increment step"] and all(re.fullmatch(r"\d+", s) for s in forgetting["increment step"])
    if max_height:
        assert measured["height"] <= max_height, f"the page is {measured['height']} px tall"
    images = re.findall(r'<img src="([^"$]+\.png)"', measured["dom"])
    assert images and any("samples" in i for i in images)
    for src in images:
        assert (page.parent / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
    return measured


def hand_made_increments(folder):
    """Two increments as `defect-il increment` reports them: one scored on an old test set, one not (its
    new test set a folder of its own), and a folder whose report.json is broken."""
    reports = {
        "crack-sdidd": {
            "model": "increments/crack-sdidd/model", "from": "models/gfl_teacher", "method": "sdidd",
            "old_classes": ["scratch", "patch", "inclusion"], "new_classes": ["crack", "pits"],
            "train_images": 40, "iterations": 300,
            "new_test": {"source": "held-out share of DATA", "path": "data/new", "images": 10},
            "new_classes_mAP50": 71.26, "new_classes_AP50": {"crack": 80.0, "pits": 62.52},
            "old_test": {"path": "data/old_test", "images": 30},
            "old_classes_mAP50_before": 91.87, "old_classes_mAP50_after": 88.07,
            "old_classes_AP50_before": {"scratch": 90.0, "patch": 95.0, "inclusion": 90.6},
            "old_classes_AP50_after": {"scratch": 85.0, "patch": 91.2, "inclusion": 88.0},
            "dropped_classes": {"streak": 4, "spot": 1}},
        "streak-finetune": {
            "model": "increments/streak-finetune/model", "from": "increments/crack-sdidd/model",
            "method": "finetune", "old_classes": ["scratch", "patch", "inclusion", "crack", "pits"],
            "new_classes": ["streak"], "train_images": 12, "iterations": 100,
            "new_test": {"source": "--test FOLDER", "path": "data/streak_test", "images": 5},
            "new_classes_mAP50": None, "new_classes_AP50": {"streak": None}, "old_test": None,
            "old_classes_mAP50_before": None, "old_classes_mAP50_after": None,
            "old_classes_AP50_before": None, "old_classes_AP50_after": None, "dropped_classes": {}}}
    for name, report in reports.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "report.json").write_text(json.dumps(report))
    (folder / "broken").mkdir()
    (folder / "broken" / "report.json").write_text('{"model": ')
    (folder / "README.md").write_text("not an increment")
    return reports


def test_user_increments_table_from_their_report_files(tmp_path):
    """Every increments/*/report.json becomes one row: classes, data, the new classes' mAP, the old ones'
    before and after (or "not measured"), the boxes dropped; a broken report is listed with its error."""
    from pipeline.report import increments_markdown, increments_page_rows, increments_table, read_increments

    assert increments_table([]).empty and "None yet" in increments_markdown(increments_table([]))
    assert increments_page_rows(increments_table([])).to_dict("records") == [
        {"increment": "none yet", "column": "increments", "value": "none yet"}]
    hand_made_increments(tmp_path)
    table = increments_table(read_increments(tmp_path))
    assert list(table.index) == ["broken", "crack-sdidd", "streak-finetune"]
    row = table.loc["crack-sdidd"]
    assert row["method"] == "sdidd" and row["new classes"] == "crack, pits" and row["training images"] == 40
    assert (row["new test images"], row["new test set"]) == (10, "held out of DATA")
    assert (row["old test images"], row["old test set"]) == (30, "data/old_test")
    assert row["old classes mAP50 change"] == pytest.approx(88.07 - 91.87)
    assert row["new classes AP50"] == "crack 80.0, pits 62.5" and row["boxes dropped"] == 5
    row = table.loc["streak-finetune"]
    assert pd.isna(row["old classes mAP50 after"]) and row["old test set"] == "none" and row["boxes dropped"] == 0
    assert (row["new test images"], row["new test set"]) == (5, "data/streak_test")
    markdown = increments_markdown(table)
    assert "| crack-sdidd " in markdown and "-3.8" in markdown and "91.9" in markdown and "nan" not in markdown
    cells = {(r["increment"], r["column"]): r["value"] for r in increments_page_rows(table).to_dict("records")}
    assert cells[("crack-sdidd", "old classes mAP50")] == "91.9 → 88.1"
    assert cells[("crack-sdidd", "new test")] == "10, held out"
    assert cells[("streak-finetune", "old classes mAP50")] == "not measured"
    assert cells[("streak-finetune", "from")] == "model" and cells[("crack-sdidd", "from")] == "gfl_teacher"
    assert cells[("broken", "method")] == "unreadable"
    assert table.loc["broken", "error"].endswith("report.json: Expecting value: line 1 column 11 (char 10)")


def test_report_page_of_the_committed_outputs_renders_readably(tmp_path):
    """The page `dvc plots show` writes from this repository's committed outputs (reports/, plots/), in a
    scratch DVC project: first with no increment of the user's own, then with two listed by
    `dvc repro user_increments`. Every chart renders, no labels overlap, fine-tuning shows no (empty)
    distillation trace, and the page stays under 7000 px (it was 25,000 with every image at full size)."""
    import shutil

    work = make_workspace(tmp_path / "work", yaml.safe_load((ROOT / "params.yaml").read_text()))
    for folder in ("reports", "plots"):
        shutil.copytree(ROOT / folder, work / folder)
    assert dvc(work, "repro", "user_increments", capture=True).returncode == 0
    measured = check_report_page(work, max_height=7000)
    charts = {c["id"]: c for c in measured["charts"]}
    assert "plots_finetune_phase1_distill_trace_csv" not in charts  # fine-tuning distils nothing: no trace
    assert "finetune_phase1_distill_trace.png" not in measured["dom"]  # nor its picture
    assert "erd_phase1_distill_trace.png" in measured["dom"]
    ap = charts["reports_per_class_ap_csv"]
    cells = pd.read_csv(work / "reports" / "per_class_ap.csv")
    missing = [(r, c, v) for r, c, v in cells[["run", "class", "AP50"]].itertuples(index=False)
               if not {f"{v:.1f}", f"{v + 1e-9:.1f}"} & set(ap["texts"])]  # a tie (0.25) rounds up in the page
    assert not missing, (missing, sorted(ap["texts"]))  # every AP50 written in its cell
    assert "none yet" in charts["reports_user_increments_csv"]["texts"]

    hand_made_increments(work / "increments")
    r = dvc(work, "repro", "user_increments", capture=True)
    assert r.returncode == 0, r.stderr
    assert "3 increment(s)" in r.stdout
    measured = check_report_page(work, max_height=7000)
    table = {c["id"]: c for c in measured["charts"]}["reports_user_increments_csv"]
    assert {"crack-sdidd", "streak-finetune", "91.9 → 88.1", "not measured"} <= set(table["texts"])
