"""params.yaml -> detectron2 config in one place (pipeline/config.py): each method reads its own
parameters, each default lives in detectron_ext/config.py, and the seed of training is its own."""
import copy

import pytest

from detectron_ext.config import new_config
from pipeline.config import build_config
from pipeline.params_schema import METHOD_PARAMS, SECTIONS
from pipeline.runs import increment_specs, run_spec

from helpers import tiny_params


@pytest.fixture
def params():
    return tiny_params()


def student(params, method):
    spec = increment_specs({**params, "increments": {method: {"teacher": "gfl_teacher", "method": method, "assigner": "base"}}}, method)[0]
    return build_config(params, spec, 8, native_size=128)


def test_train_seed_replaces_the_seed_of_training_only(params):
    params["seed"] = 5
    assert build_config(params, run_spec(params, "gfl_teacher"), 8).SEED == 5   # train.seed: null
    params["train"]["seed"] = 1
    assert build_config(params, run_spec(params, "gfl_teacher"), 8).SEED == 1


@pytest.mark.parametrize("method", ["finetune", "erd", "sdidd"])
def test_each_method_reads_its_own_params_only(params, method):
    """`-S alpha=...` (SD-IDD's) leaves the fine-tuning and ERD students' configs unchanged, and
    `erd.*` / `finetune.*` leave SD-IDD's unchanged."""
    base = student(params, method).dump()
    changes = {"alpha": ("alpha", 3.0), "beta": ("beta", 3.0), "distill": ("distill.cls_mode", "global"),
               "erd": ("erd.cls_alpha", 1.0), "finetune": ("finetune.qfl_channels", "all"),
               "assigners": ("assigners.tgfs.reweight", "quality")}  # read by no student with assigner base
    reads = {k for k in METHOD_PARAMS[method] if k} | set(METHOD_PARAMS[method].get(None, {}))
    for section, (key, value) in changes.items():
        p = copy.deepcopy(params)
        *parents, leaf = key.split(".")
        node = p
        for k in parents:
            node = node[k]
        node[leaf] = value
        assert (student(p, method).dump() != base) == (section in reads), key


def test_a_student_config_names_its_teacher_classes_and_method(params):
    cfg = student(params, "sdidd")
    assert cfg.MODEL.META_ARCHITECTURE == "DistillGFL" and cfg.MODEL.DISTILL.METHOD == "sdidd"
    assert cfg.MODEL.DISTILL.TEACHER_WEIGHTS == "models/gfl_teacher/model_final.pth"
    assert cfg.MODEL.CLASS_NAMES == [c for g in params["datasets"]["synthetic"]["class_groups"] for c in g]
    assert cfg.TEST.OLD_CLASSES == cfg.MODEL.CLASS_NAMES[:3] and cfg.MODEL.DISTILL.NUM_OLD_CLASSES == 3
    assert cfg.DATASETS.TRAIN == ("sdidd_phase1_train",) and cfg.OUTPUT_DIR == "checkpoints/sdidd/phase1"


def without(params, sections: dict) -> dict:
    """params with the keys of `sections` ({dotted section or None: table}) removed."""
    p = copy.deepcopy(params)
    for section, table in sections.items():
        node = p
        for part in section.split(".") if section else ():
            node = node[part]
        for key in table:
            node.pop(key, None)
    return p


@pytest.mark.parametrize("method", ["finetune", "erd", "sdidd"])
def test_params_yaml_states_the_config_defaults_of_each_method(params, method):
    """One home per default: the values params.yaml ships for a method's keys are the config's own
    defaults (detectron_ext/config.py), so leaving a key out of params.yaml changes nothing."""
    assert student(params, method).dump() == student(without(params, METHOD_PARAMS[method]), method).dump()


def test_params_yaml_states_the_tgfs_defaults(params):
    spec = run_spec(params, "gfl_tgfs_joint")
    assert build_config(params, spec, 8).dump() == build_config(without(params, {"assigners.tgfs": SECTIONS["tgfs"]}), spec, 8).dump()


def test_a_changed_default_shows(params):
    """The check above can fail: a value that is not the default changes the config."""
    params["assigners"]["tgfs"]["reweight"] = "quality"
    spec = run_spec(params, "gfl_tgfs_joint")
    assert build_config(params, spec, 8).dump() != build_config(without(params, {"assigners.tgfs": SECTIONS["tgfs"]}), spec, 8).dump()
    assert new_config().MODEL.TGFS.REWEIGHT == "none"


def test_an_integer_for_a_float_key_is_stored_as_the_keys_type(params):
    params["scales"]["ci"]["lr"] = 1
    cfg = build_config(params, run_spec(params, "gfl_teacher"), 8)
    assert isinstance(cfg.SOLVER.BASE_LR, float) and cfg.SOLVER.BASE_LR == 1.0


def test_params_yaml_states_the_augmentation_defaults_and_a_quarter_turn_crosses(params):
    """train.random_flip / random_rotate90 ship the config's defaults (a run without the key turns
    nothing), and a set value reaches the config."""
    spec = run_spec(params, "gfl_teacher")
    augment = {"train": ("random_flip", "random_rotate90")}
    assert build_config(params, spec, 8).dump() == build_config(without(params, augment), spec, 8).dump()
    params["train"]["random_rotate90"] = 0.5
    assert build_config(params, spec, 8).INPUT.RANDOM_ROTATE90 == 0.5
