"""The CI mAP check: a metric regresses when it falls more than its tolerance below the reference."""
from detectron_ext.regression import compare_to_reference

REF = {"mAP50_old": 40.0, "mAP50_new": 30.0, "mAP50": 35.0}
TOL = {"mAP50_old": 3.0, "mAP50_new": 3.0, "mAP50": 2.0}


def test_within_tolerance_and_improvements_pass():
    table = compare_to_reference(REF, {"mAP50_old": 37.5, "mAP50_new": 45.0, "mAP50": 33.0}, TOL)
    assert list(table["Status"]) == ["ok", "ok", "ok"]
    assert list(table["Change"]) == [-2.5, 15.0, -2.0]


def test_a_drop_beyond_tolerance_or_a_missing_value_regresses():
    table = compare_to_reference(REF, {"mAP50_old": 36.9, "mAP50_new": None, "mAP50": 35.0}, TOL)
    assert list(table["Status"]) == ["REGRESSED", "REGRESSED", "ok"]
