"""Each setting is written once (detectron_ext/settings.py): the config keys, the modules' checks and
params.yaml's schema all come from that one definition."""
import copy
import typing

import pytest
import yaml

from detectron_ext.config import new_config
from detectron_ext.settings import DISTILL, EFFICIENTNET, ERD, TGFS, TRAINING, Section, Setting
from pipeline.params_schema import METHOD_PARAMS, METHODS, SECTIONS, ParamsError, validate_params

from helpers import ROOT

ALL = [DISTILL, ERD, TGFS, EFFICIENTNET, TRAINING]


@pytest.mark.parametrize("section", ALL, ids=lambda s: s.node or "project keys")
def test_the_config_holds_each_default_and_each_default_passes_its_own_check(section):
    cfg = new_config()
    assert section.read(cfg) == {s.name: s.default for s in section}
    section.check(**{s.name: s.default for s in section})


@pytest.mark.parametrize("name, value, message", [
    ("topk", 0, r"^MODEL\.DISTILL\.TOPK: must be > 0, not 0$"),
    ("cls_mode", "partial", r"^MODEL\.DISTILL\.CLS_MODE: must be one of none, global, selective, not 'partial'$"),
    ("br_per_gt", 1, r"^MODEL\.DISTILL\.BR_PER_GT: must be bool, not 1$"),
    ("fr_lambda", 1.0, r"^MODEL\.DISTILL\.FR_LAMBDA: must be < 1, not 1\.0$"),
    ("alpha", "2", r"^MODEL\.DISTILL\.ALPHA: must be float, not '2'$"),
])
def test_a_value_a_setting_does_not_allow_is_one_line_naming_the_config_key(name, value, message):
    with pytest.raises(ValueError, match=message):
        DISTILL.check(**{name: value})
    DISTILL.check(alpha=2, cr_temperature=3)  # an int is a float


def test_a_section_gives_full_keys_under_its_node_or_the_settings_own():
    s = Section("MODEL.X", Setting("levels", 3, key="NUM_LEVELS"), Setting("gamma", 1.0))
    assert [x.key for x in s] == ["MODEL.X.NUM_LEVELS", "MODEL.X.GAMMA"]
    assert TRAINING["precision"].key == "MODEL.PRECISION"


def _choices(model, name):
    return typing.get_args(model.model_fields[name].annotation)


def test_the_params_schema_is_derived_from_the_settings():
    """params.yaml's sections of settings take each key's choices and bounds from its setting, so a
    choice added to a setting is accepted by the schema with nothing else edited."""
    from pipeline import params_schema as ps
    for section, model in [("distill", ps.Distill), ("erd", ps.Erd), ("tgfs", ps.Tgfs), ("finetune", ps.Finetune)]:
        assert set(model.model_fields) == set(SECTIONS[section]), section
        for name, setting in SECTIONS[section].items():
            if setting.choices:
                assert _choices(model, name) == setting.choices, name
    assert set(SECTIONS["train"]) | {"seed"} == set(ps.Train.model_fields)
    assert _choices(ps.Increment, "method") == METHODS == DISTILL["method"].choices
    assert set(METHOD_PARAMS) == set(METHODS)
    derived = ps._section_model("Probe", {"mode": Setting("mode", "a", ("a", "b", "c"))})
    assert derived.model_validate({"mode": "c"}).mode == "c"


def _params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("key, value, message", [
    ("distill.topk", 0, r"distill\.topk: Input should be greater than 0"),
    ("erd.teacher_boxes", "pixels", r"erd\.teacher_boxes: Input should be 'code' or 'stride'"),
    ("train.precision", "fp16", r"train\.precision: Input should be 'fp32', 'bf16' or 'auto'"),
    ("assigners.tgfs.levels", 6, r"assigners\.tgfs\.levels: Input should be less than or equal to 5"),
    ("distill.topk", None, r"distill\.topk: Input should be a valid integer \(got None\)"),
])
def test_params_yaml_is_checked_against_the_settings(key, value, message):
    p = _params()
    *parents, leaf = key.split(".")
    node = p
    for k in parents:
        node = node[k]
    node[leaf] = value
    with pytest.raises(ParamsError, match=message):
        validate_params(p)


def test_one_rule_for_required_keys_a_setting_may_be_left_out():
    """Every key of a section of settings has a default, so each may be left out; a key describing the
    work (a scale's batch, the evaluated split) has none and is required."""
    p = _params()
    for section in ("distill", "erd", "finetune", "train"):
        p[section] = {}
    p["assigners"]["tgfs"] = {}
    validate_params(p)
    for key in ("batch", None):
        q = copy.deepcopy(_params())
        if key:
            del q["scales"][q["scale"]][key]
        else:
            del q["evaluate"]["split"]
        with pytest.raises(ParamsError, match="required key is missing"):
            validate_params(q)
