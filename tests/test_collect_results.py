"""tools/collect_results.py: one row per WORKSPACE[:RUN], params keys as columns, clear errors."""
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import collect_results  # noqa: E402


def workspace(root: Path, name: str, run: str, mode: str, maps):
    ws = root / name
    (ws / "metrics").mkdir(parents=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"distill": {"cls_mode": mode}}))
    old, new = maps
    metrics = {"run": run, "detector": "gfl", "method": "sdidd", "mAP50": (old + new) / 2,
               "mAP50_old": old, "mAP50_new": new, "AP": 1.0, "AP50_per_class": {"a": old, "b": new}}
    (ws / "metrics" / f"{run}.json").write_text(json.dumps(metrics))
    return ws


def test_rows_in_order_with_params_and_metrics(tmp_path):
    a = workspace(tmp_path, "a", "sdidd", "selective", (30.0, 20.0))
    b = workspace(tmp_path, "b", "other", "none", (0.0, 40.0))
    table = collect_results.collect([str(a), f"{b}:other"], "sdidd", ["distill.cls_mode"])
    assert list(table["cls_mode"]) == ["selective", "none"]
    assert list(table["run"]) == ["sdidd", "other"]
    assert list(table["mAP_all"]) == [25.0, 20.0]
    assert list(table["b"]) == [20.0, 40.0]
    assert list(table["assigner"]) == ["base", "base"]

    out = tmp_path / "out" / "table"
    collect_results.main([str(a), "--run", "sdidd", "--keys", "distill.cls_mode", "--out", str(out)])
    assert "| selective" in out.with_suffix(".md").read_text()
    assert json.loads(out.with_suffix(".json").read_text())[0]["mAP_old"] == 30.0


def test_missing_metrics_is_an_error_and_a_missing_key_a_warning(tmp_path, capsys):
    a = workspace(tmp_path, "a", "sdidd", "selective", (30.0, 20.0))
    with pytest.raises(FileNotFoundError, match="erd.json"):
        collect_results.collect([f"{a}:erd"], "", [])
    table = collect_results.collect([str(a)], "sdidd", ["distill.nope"])
    assert table["nope"].isna().all()
    assert "params.yaml has no key 'distill.nope'" in capsys.readouterr().err


def test_workspace_column_stays_last_when_a_first_row_has_fewer_classes(tmp_path):
    teacher = workspace(tmp_path, "t", "gfl_teacher", "selective", (30.0, 20.0))
    metrics_file = teacher / "metrics" / "gfl_teacher.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["AP50_per_class"] = {"a": 30.0}  # the teacher knows the old class only
    metrics_file.write_text(json.dumps(metrics))
    student = workspace(tmp_path, "s", "sdidd", "selective", (10.0, 50.0))
    table = collect_results.collect([f"{teacher}:gfl_teacher", str(student)], "sdidd", [])
    assert list(table.columns[-3:]) == ["a", "b", "workspace"]
    assert list(table["b"].isna()) == [True, False]


def test_replicates_over_a_seed_give_mean_and_std_per_configuration(tmp_path):
    entries = []
    for name, mode, seed, maps in [("s0", "selective", 0, (30.0, 20.0)), ("n0", "none", 0, (0.0, 40.0)),
                                   ("s1", "selective", 1, (34.0, 24.0)), ("s2", "selective", 2, (32.0, 16.0)),
                                   ("u0", None, 0, (10.0, 10.0)), ("u1", None, 1, (20.0, 10.0))]:
        ws = workspace(tmp_path, name, "sdidd", mode, maps)
        distill = {"cls_mode": mode} if mode else {}  # u*: a key the workspace lacks (NaN) still groups
        (ws / "params.yaml").write_text(yaml.safe_dump({"distill": distill, "train": {"seed": seed}}))
        entries.append(str(ws))
    out = tmp_path / "t"
    collect_results.main([*entries, "--run", "sdidd", "--keys", "distill.cls_mode", "train.seed",
                          "--replicates-over", "train.seed", "--out", str(out)])
    summary = json.loads((tmp_path / "t_summary.json").read_text())
    assert [(r["cls_mode"], r["n"]) for r in summary] == [("selective", 3), ("none", 1), (None, 2)]
    assert summary[2]["mAP_old"] == pytest.approx(15.0)
    assert summary[0]["mAP_old"] == pytest.approx(32.0) and summary[0]["mAP_old_std"] == pytest.approx(2.0)
    assert summary[0]["mAP_all"] == pytest.approx(26.0)   # all: 25, 29, 24
    assert summary[1]["mAP_old_std"] is None               # one replicate: no spread
    assert "32.0 ± 2.0" in (tmp_path / "t_summary.md").read_text()
    with pytest.raises(SystemExit):
        collect_results.main([*entries, "--run", "sdidd", "--replicates-over", "train.seed", "--out", str(out)])


def test_tgfs_keys_are_empty_for_runs_without_the_tgfs_assigner(tmp_path):
    a = workspace(tmp_path, "a", "fcos_joint", "selective", (30.0, 20.0))
    (a / "params.yaml").write_text(yaml.safe_dump({"assigners": {"tgfs": {"reweight": "quality"}}}))
    metrics = json.loads((a / "metrics" / "fcos_joint.json").read_text())
    (a / "metrics" / "fcos_tgfs_joint.json").write_text(json.dumps({**metrics, "assigner": "tgfs"}))
    table = collect_results.collect([f"{a}:fcos_joint", f"{a}:fcos_tgfs_joint"], "", ["assigners.tgfs.reweight"])
    assert table["reweight"].isna().tolist() == [True, False] and table["reweight"][1] == "quality"
    assert collect_results.ignored_by("tgfs.reweight", "base") and not collect_results.ignored_by("tgfs.reweight", "tgfs")
    assert not collect_results.ignored_by("distill.topk", "base")
