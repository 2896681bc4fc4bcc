"""What each run and each phase of an incremental chain trains and tests on (params -> RunSpec)."""
import pytest

from detectron_ext.pipeline import class_groups, increment_specs, run_spec

from helpers import tiny_params


@pytest.fixture
def params():
    p = tiny_params()
    p["runs"] = {"teacher": {"detector": "gfl", "phase": 0}, "joint": {"detector": "fcos", "phase": "joint"},
                 "second": {"phase": 1}}
    p["increments"] = {"chain": {"teacher": "teacher", "method": "sdidd"},
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
    assert specs[0].method == "sdidd"
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


def test_chain_method_must_be_known(params):
    params["increments"]["chain"]["method"] = "default"
    with pytest.raises(SystemExit, match="method 'default'; choose finetune, erd or sdidd"):
        increment_specs(params, "chain")


@pytest.mark.parametrize("method", ["finetune", "erd", "sdidd"])
def test_each_method_reads_its_own_params_only(params, tmp_path, method):
    """`-S alpha=...` (SD-IDD's) leaves the fine-tuning and ERD students' configs unchanged, and
    `erd.*` / `finetune.*` leave SD-IDD's unchanged."""
    import copy

    from detectron_ext.config import apply_increment_params, build_config

    def student(p):
        cfg = build_config(p, "gfl", 6, "x", "y", tmp_path, 8)
        return apply_increment_params(cfg, p, method, "t.pth", 3, 128).dump()

    base = student(params)
    changes = {"alpha": ("alpha", 3.0), "beta": ("beta", 1.0), "distill": ("distill.cls_mode", "global"),
               "erd": ("erd.cls_alpha", 1.0), "finetune": ("finetune.qfl_channels", "all")}
    reads = {"finetune": {"finetune"}, "erd": {"erd"}, "sdidd": {"alpha", "beta", "distill"}}[method]
    for section, (key, value) in changes.items():
        p = copy.deepcopy(params)
        *parents, leaf = key.split(".")
        node = p
        for k in parents:
            node = node[k]
        node[leaf] = value
        assert (student(p) != base) == (section in reads), key


def test_dvc_stages_depend_on_their_methods_params_only():
    """What dvc.yaml declares (read by DVC itself): alpha / beta / distill are the sdidd stage's alone,
    erd and finetune their stages' alone, and a training run depends on its scale's entry only."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from helpers import ROOT

    with Repo(str(ROOT)) as repo:
        params = {s.addressing: {p for d in s.deps if isinstance(d, ParamsDependency) for p in d.params}
                  for s in repo.index.stages}
    for stage, deps in params.items():
        assert ("alpha" in deps) == ("beta" in deps) == ("distill" in deps) == (stage == "sdidd"), stage
        assert ("erd" in deps) == (stage == "erd") and ("finetune" in deps) == (stage == "finetune"), stage
        assert "scales" not in deps and "method" not in deps, stage
    assert "scales.ci" in params["train@gfl_teacher"] and "runs.gfl_teacher" in params["sdidd"]
