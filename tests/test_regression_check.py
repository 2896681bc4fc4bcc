"""The CI mAP check: a metric regresses when it falls more than its tolerance below the reference."""
from pipeline.regression import compare_to_reference

REF = {"mAP50_old": 40.0, "mAP50_new": 30.0, "mAP50": 35.0}
TOL = {"mAP50_old": 3.0, "mAP50_new": 3.0, "mAP50": 2.0}


def test_within_tolerance_and_improvements_pass():
    table = compare_to_reference(REF, {"mAP50_old": 37.5, "mAP50_new": 45.0, "mAP50": 33.0}, TOL)
    assert list(table["Status"]) == ["ok", "ok", "ok"]
    assert list(table["Change"]) == [-2.5, 15.0, -2.0]


def test_a_drop_beyond_tolerance_or_a_missing_value_regresses():
    table = compare_to_reference(REF, {"mAP50_old": 36.9, "mAP50_new": None, "mAP50": 35.0}, TOL)
    assert list(table["Status"]) == ["REGRESSED", "REGRESSED", "ok"]


def load_script():
    import importlib.util
    from tests.helpers import ROOT
    spec = importlib.util.spec_from_file_location("ci_regression", ROOT / "scripts" / "ci_regression.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scratch_params_apply_overrides_and_check_the_dataset_folder(tmp_path):
    import pytest
    script = load_script()
    reference = {"dataset": "neu-det", "scale": "ci"}
    params = script.scratch_params(reference, [f"datasets.neu-det.root={tmp_path}", "distill.cls_mode=none"])
    assert params["distill"]["cls_mode"] == "none" and params["datasets"]["neu-det"]["root"] == str(tmp_path)
    assert list(params["runs"]) == ["gfl_teacher"] and params["increments"]["sdidd"]["method"] == "sdidd"
    with pytest.raises(SystemExit, match="NEU_DET_ROOT"):
        script.scratch_params(reference, [f"datasets.neu-det.root={tmp_path / 'missing'}"])
