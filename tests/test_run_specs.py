"""What each run and each phase of an incremental chain trains and tests on (params -> RunSpec)."""
from pathlib import Path

import pytest

from pipeline.params import class_groups
from pipeline.runs import increment_specs, run_spec

from helpers import tiny_params


@pytest.fixture
def params():
    p = tiny_params()
    p["runs"] = {"teacher": {"detector": "gfl", "phase": 0, "assigner": "base"},
                 "joint": {"detector": "fcos", "phase": "joint", "assigner": "base"},
                 "second": {"phase": 1, "assigner": "base"}}
    p["increments"] = {"chain": {"teacher": "teacher", "method": "sdidd", "assigner": "base"},
                       "bad": {"teacher": "second", "method": "erd", "assigner": "base"}}
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


def test_chain_method_must_be_known(params):
    params["increments"]["chain"]["method"] = "default"
    with pytest.raises(SystemExit, match="method 'default'; choose finetune, erd, sdidd"):
        increment_specs(params, "chain")


def test_dvc_stages_depend_on_their_methods_params_only():
    """What dvc.yaml declares (read by DVC itself): alpha / beta are the sdidd stage's alone, distill the
    chains of method sdidd (the paper's and the project's variant), erd and finetune their stages' alone,
    and a training run depends on its scale's entry only."""
    import yaml
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from helpers import ROOT

    chains = yaml.safe_load((ROOT / "params.yaml").read_text())["increments"]
    sdidd_chains = {n for n, c in chains.items() if c["method"] == "sdidd"}
    assert sdidd_chains == {"sdidd", "global_erdbox"}

    with Repo(str(ROOT)) as repo:
        params = {s.addressing: {p for d in s.deps if isinstance(d, ParamsDependency) for p in d.params}
                  for s in repo.index.stages}
    for stage, deps in params.items():
        assert ("alpha" in deps) == ("beta" in deps) == (stage == "increment@sdidd"), stage
        assert ("distill" in deps) == (stage in {f"increment@{c}" for c in sdidd_chains}), stage
        assert ("erd" in deps) == (stage == "increment@erd"), stage
        assert ("finetune" in deps) == (stage == "increment@finetune"), stage
        assert "scales" not in deps and "method" not in deps, stage
    assert "scales.ci" in params["train@gfl_teacher"] and "runs.gfl_teacher" in params["increment@sdidd"]
    assert "assigners.base" in params["train@gfl_teacher"] and "assigners.tgfs" in params["train@gfl_tgfs_joint"]
    assert not any("assigners.tgfs" in params[s] for s in ("train@gfl_teacher", "train@fcos_joint", "increment@sdidd"))


def test_dvc_status_after_a_param_change_lists_only_the_stages_that_read_it(tmp_path):
    """`dvc exp run -S KEY=VALUE` reruns what `dvc status` lists: in a scratch DVC repository with this
    dvc.yaml and params.yaml, every stage recorded as done (`dvc commit`), then one key changed."""
    import json
    import shutil
    import subprocess
    import sys

    import yaml
    from dvc.repo import Repo

    from helpers import ROOT

    def dvc(*args):
        r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    dvc("init", "--no-scm", "-q")
    with Repo(str(tmp_path)) as repo:  # every dependency and output, as a placeholder file or folder
        paths = {Path(o.def_path) for s in repo.index.stages for o in [*s.deps, *s.outs] if not o.def_path.endswith(".yaml")}
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        if path.suffix:
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text("x")
        elif not (tmp_path / path).exists():
            (tmp_path / path).mkdir(parents=True)
            (tmp_path / path / "placeholder").write_text("x")
    dvc("commit", "-f", "-q")
    assert json.loads(dvc("status", "--json")) == {}

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    inc = {c: f"increment@{c}" for c in ("finetune", "erd", "sdidd", "global_erdbox")}
    chains = set(inc.values())
    cases = [("alpha", 3.0, {inc["sdidd"]}), ("beta", 1.5, {inc["sdidd"]}),
             ("distill.topk", 50, {inc["sdidd"], inc["global_erdbox"]}),
             ("increments.global_erdbox.distill.feat_mode", "global", {inc["global_erdbox"], "report"}),  # report: the names
             ("erd.cls_alpha", 1.0, {inc["erd"]}),
             ("validation.fraction", 0.3, {"split"}),
             ("evaluate.split", "test", chains | {f"evaluate@{r}" for r in base["runs"]}),
             ("finetune.qfl_channels", "all", {inc["finetune"]}),
             ("bench.steps", 3, {"bench"}),
             ("assigners.tgfs.reweight", "quality", {f"train@{r}" for r, v in base["runs"].items() if v["assigner"] == "tgfs"}),
             ("scales.paper.lr", 0.5, set()),                  # a scale that is not the active one
             ("datasets.deeppcb.root", "elsewhere", set()),    # a dataset that is not the active one
             ("evaluate.num_images_drawn", 2, chains | {f"evaluate@{r}" for r in base["runs"]})]
    for key, value, expected in cases:
        p = yaml.safe_load(yaml.safe_dump(base))
        *parents, leaf = key.split(".")
        node = p
        for k in parents:
            node = node[k]
        node[leaf] = value
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
        assert set(json.loads(dvc("status", "--json"))) == expected, key


def test_a_variant_chain_sets_its_own_distill_keys_over_the_shared_ones():
    """increments.NAME.distill: the chain trains with those keys over `distill` (and nothing else changes);
    `defect-il increment --method NAME` resolves the same way; an unknown name is a one-line error."""
    import yaml

    from helpers import ROOT
    from pipeline.params_schema import ParamsError, validate_params
    from pipeline.runs import chain_params, resolve_method

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    variant = chain_params(base, "global_erdbox")
    assert variant["distill"]["cls_mode"] == "global" and variant["distill"]["feat_mode"] == "none"
    assert variant["distill"]["topk"] == base["distill"]["topk"] and base["distill"]["cls_mode"] == "selective"
    assert chain_params(base, "sdidd") is base
    assert resolve_method(base, "global_erdbox") == ("sdidd", variant)
    assert resolve_method(base, "erd") == ("erd", base)
    with pytest.raises(ParamsError, match="method 'nope' is none of finetune, erd, sdidd and no chain"):
        resolve_method(base, "nope")
    bad = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad["increments"]["global_erdbox"]["distill"]["cls_mode"] = "everywhere"
    with pytest.raises(ParamsError, match="increments.global_erdbox.distill.cls_mode"):
        validate_params(bad)
    bad["increments"]["global_erdbox"]["distill"] = {"cls_mod": "global"}
    with pytest.raises(ParamsError, match="cls_mod"):
        validate_params(bad)
    bad["increments"]["global_erdbox"] = {"teacher": "gfl_teacher", "method": "erd", "assigner": "base",
                                          "reads": ["erd"] * 3, "distill": {"cls_mode": "global"}}
    with pytest.raises(ParamsError, match="only method sdidd reads 'distill'"):
        validate_params(bad)


def test_a_chain_may_set_its_own_alpha_and_beta():
    """increments.NAME.alpha / beta: a point of SD-IDD's α × β grid as a chain beside the default (the chain
    trains with them, records them as its variant, and is reported under its own name); only sdidd reads them."""
    import yaml

    from helpers import ROOT
    from pipeline.config import build_config
    from pipeline.runs import increment_specs
    from pipeline.params_schema import ParamsError, validate_params
    from pipeline.runs import chain_params, chain_variant

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["increments"]["sdidd_a05b15"] = {"teacher": "gfl_teacher", "method": "sdidd", "assigner": "base",
                                        "alpha": 0.5, "beta": 1.5, "reads": ["alpha", "beta", "distill"]}
    with pytest.raises(ParamsError, match=r"^params.yaml: increments.sdidd_a05b15.reads: this chain reads distill: "
                                          r"write reads: \[distill, distill, distill\]"):
        validate_params(base)  # its own α and β: -S alpha=... does not change it, so its stage must not rerun
    base["increments"]["sdidd_a05b15"]["reads"] = ["distill"] * 3
    shared = (base["alpha"], base["beta"])
    assert shared != (0.5, 1.5)
    validate_params(base)
    own = chain_params(base, "sdidd_a05b15")
    assert (own["alpha"], own["beta"]) == (0.5, 1.5) and (base["alpha"], base["beta"]) == shared
    assert own["distill"] == base["distill"]
    assert chain_variant(base, "sdidd_a05b15") == {"alpha": 0.5, "beta": 1.5}
    assert chain_variant(base, "sdidd") == {} and chain_variant(base, "global_erdbox") == {
        "distill": base["increments"]["global_erdbox"]["distill"]}
    cfg = build_config(own, increment_specs(own, "sdidd_a05b15")[0], 8, native_size=128)
    assert (cfg.MODEL.DISTILL.ALPHA, cfg.MODEL.DISTILL.BETA) == (0.5, 1.5)
    base["increments"]["erd_a1"] = {"teacher": "gfl_teacher", "method": "erd", "assigner": "base", "alpha": 1,
                                    "reads": ["erd"] * 3}
    with pytest.raises(ParamsError, match="increments.erd_a1.alpha: only method sdidd reads 'alpha'"):
        validate_params(base)
