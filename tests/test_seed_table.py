"""tools/seed_table.py: one row per variant, mean ± sample std over its seeds, rows chosen and ordered."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import seed_table  # noqa: E402


def write_run(folder, name, old, new, classes):
    run = folder / name
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({
        "mAP50_old": old, "mAP50_new": new, "mAP50": (old + new) / 2, "AP50_per_class": classes}))


@pytest.fixture
def runs(tmp_path):
    write_run(tmp_path, "sdidd_s0", 50.0, 40.0, {"a": 50.0, "b": 40.0})
    write_run(tmp_path, "sdidd_s1", 52.0, 44.0, {"a": 52.0, "b": 44.0})
    write_run(tmp_path, "erd_s0", 40.0, 20.0, {"a": 40.0, "b": 20.0})
    write_run(tmp_path, "abl_cls_none_s0", 30.0, 30.0, {"a": 30.0, "b": 30.0})
    (tmp_path / "notes").mkdir()  # a folder that is not a run is ignored
    return tmp_path


def test_rows_are_mean_and_sample_std_over_seeds(runs):
    table = seed_table.seed_table(seed_table.read_runs(runs))
    assert table.loc["sdidd", "seeds"] == "0,1"
    assert table.loc["sdidd", "mAP_old"] == "51.0 ± 1.4"  # sample std of 50, 52
    assert table.loc["sdidd", "b"] == "42.0"
    assert table.loc["erd", "mAP_all"] == "30.0"  # one seed: the value alone
    assert table.loc["abl_cls_none", "mAP_new"] == "30.0"  # variant names may hold underscores


def test_variants_choose_and_order_the_rows(runs):
    table = seed_table.seed_table(seed_table.read_runs(runs))
    assert list(seed_table.select(table, ["erd", "sdidd"]).index) == ["erd", "sdidd"]
    with pytest.raises(SystemExit, match="no runs of variant.*fr_none"):
        seed_table.select(table, ["erd", "fr_none"])


def test_command_line_prints_the_markdown_table(runs):
    out = subprocess.run([sys.executable, str(TOOLS / "seed_table.py"), str(runs), "--variants", "erd,sdidd"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("| variant") and len(lines) == 4
    assert lines[2].startswith("| erd") and lines[3].startswith("| sdidd")


def test_a_folder_without_runs_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="no <variant>_s<seed>/metrics.json runs"):
        seed_table.read_runs(tmp_path)
