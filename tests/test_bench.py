"""The bench stage's measurements (pipeline/bench.py) at a toy size: every ratio docs/pipeline.md's table shows
is measured, the profiler finds the labelled parts of a distillation step, and the table names them."""
import math

import pytest
import yaml

from helpers import ROOT


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from detectron_ext.data.sources import read_dataset
    from detectron_ext.file_io import atomic_write_json
    from pipeline.bench import run

    tmp = tmp_path_factory.mktemp("bench")
    _, test_coco = read_dataset({"format": "synthetic", "num_train": 1, "num_test": 3, "image_size": 64},
                                seed=0, work_dir=tmp)
    atomic_write_json(tmp / "test.json", test_coco)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["bench"].update(scale="ci", input_size=64, batch=2, steps=1, eval_images=2)
    return run(params, tmp / "test.json", log=lambda *_: None)


def test_every_ratio_of_the_table_is_measured(bench):
    from pipeline.bench import ROWS, shown, table
    for section, key, what, _ in ROWS:
        value = bench[section][key]
        assert math.isfinite(value) and value >= 0, key
        assert f"| {what} | {shown(key, value)} |" in table(bench)
    assert bench["evaluation"]["images"] == 2 and bench["evaluation"]["evaluate_s"] > 0


def test_the_profiler_finds_the_teacher_and_the_selections(bench):
    s = bench["student_step"]
    assert 0 < s["sdidd_share_teacher"] < 1 and 0 < s["erd_share_teacher"] < 1
    for part in ("select_cr", "select_br", "select_fr"):
        assert 0 < s[f"sdidd_share_{part}"] < 1, part
    assert 0 < s["erd_share_select_erd"] < 1


def test_the_benchmark_reads_no_method_parameters():
    """bench builds the students at the config defaults: `-S alpha=3` must not change it (nor rerun it)."""
    from pipeline.bench import bench_params
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    a = bench_params(params)
    params.update(alpha=3.0, erd={**params["erd"], "cls_alpha": 1.0})
    assert bench_params(params) == a
