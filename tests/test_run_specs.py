"""What each run and each phase of an incremental chain trains and tests on (params -> RunSpec)."""
import pytest

from detectron_ext.pipeline import class_groups, increment_specs, run_spec

from helpers import tiny_params


@pytest.fixture
def params():
    p = tiny_params()
    p["runs"] = {"teacher": {"detector": "gfl", "phase": 0}, "joint": {"detector": "fcos", "phase": "joint"},
                 "second": {"phase": 1}}
    p["increments"] = {"chain": {"teacher": "teacher", "method": "default"},
                       "bad": {"teacher": "second", "method": "erd"}}
    return p


def test_task_selects_class_groups(params):
    assert class_groups(params) == params["datasets"]["synthetic"]["class_groups"]
    params["task"] = "2+2+2"
    assert class_groups(params) == [["scratch", "patch"], ["inclusion", "crack"], ["pits", "streak"]]
    params["task"] = "1+5"
    with pytest.raises(SystemExit, match=r"task '1\+5' is not defined under datasets.synthetic.tasks"):
        class_groups(params)


def test_run_specs_for_teacher_and_joint(params):
    t = run_spec(params, "teacher")
    assert (t.phase, t.old_classes, t.new_classes) == ("0", [], ["scratch", "patch", "inclusion"])
    assert t.train_json.name == "phase0_train.json" and t.teacher == ""
    j = run_spec(params, "joint")
    assert j.detector == "fcos" and j.old_classes == ["scratch", "patch", "inclusion"]
    assert j.test_json.name == "joint_test.json" and len(j.seen_classes) == 6
    with pytest.raises(SystemExit, match="run 'nope' is not defined"):
        run_spec(params, "nope")


def test_chain_phases_each_distilled_from_the_previous(params):
    params["task"] = "2+2+2"
    specs = increment_specs(params, "chain")
    assert [s.name for s in specs] == ["chain/phase1", "chain/phase2"]
    assert [s.teacher for s in specs] == ["teacher", "chain/phase1"]
    assert specs[1].old_classes == ["scratch", "patch", "inclusion", "crack"] and specs[1].new_classes == ["pits", "streak"]
    assert specs[0].method == params["method"]  # default = the top-level `method`
    assert str(specs[1].teacher_weights) == "models/chain/phase1/model_final.pth"
    assert str(specs[1].checkpoint_dir) == "checkpoints/chain/phase2"


def test_chain_teacher_must_be_a_phase_0_run(params):
    with pytest.raises(SystemExit, match="teacher run 'second' must be phase 0"):
        increment_specs(params, "bad")


def test_train_seed_replaces_the_seed_of_training_only(params, tmp_path):
    from detectron_ext.config import build_config
    params["seed"] = 5
    assert build_config(params, "gfl", 3, "x", "y", tmp_path, 8).SEED == 5   # train.seed: null
    params["train"]["seed"] = 1
    assert build_config(params, "gfl", 3, "x", "y", tmp_path, 8).SEED == 1
