"""tools/steps_figure.py: the teacher's classes over a chain's steps, per method, as a user runs it."""
import json
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "steps_figure.py"


def write(folder, name, metrics):
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(metrics))


def test_the_teachers_classes_are_followed_over_the_steps(tmp_path):
    write(tmp_path, "gfl_teacher_a", {"mAP50": 30.0, "AP50_per_class": {"c1": 20.0, "c2": 40.0}})
    for seed, drop in ((0, 0.0), (1, 4.0)):
        phases = {"1": {"mAP50": 50.0, "AP50_per_class": {"c1": 18.0 - drop, "c2": 30.0, "c3": 90.0}},
                  "2": {"mAP50": 45.0, "AP50_per_class": {"c1": 10.0, "c2": 20.0 - drop, "c3": 80.0, "c4": 70.0}}}
        write(tmp_path, f"erd_ta_s{seed}", {"mAP50": 45.0, "phases": phases})
    r = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--rows", "erd"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    csv = (tmp_path / "steps_first.csv").read_text().splitlines()
    assert csv[1:] == ["erd,0,30.0,0.0,2", "erd,1,23.0,1.41,2", "erd,2,14.0,1.41,2"]  # (18 + 30) / 2, then -2
    assert (tmp_path / "steps_first.png").stat().st_size > 0
    r = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--rows", "erd", "--metric", "mAP50"],
                       capture_output=True, text=True)
    assert "erd,2,45.0,0.0,2" in (tmp_path / "steps_mAP50.csv").read_text()


def test_a_run_without_its_teacher_is_named(tmp_path):
    write(tmp_path, "erd_tb_s0", {"phases": {"1": {"mAP50": 1.0, "AP50_per_class": {}}}})
    r = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--rows", "erd"], capture_output=True, text=True)
    assert r.returncode == 1 and "gfl_teacher_b/metrics.json: missing (step 0 of erd_tb_s0)" in r.stderr
