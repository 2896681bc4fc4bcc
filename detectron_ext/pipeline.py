"""What the stage scripts share: params, file locations, and what a run trains and tests on."""
from dataclasses import dataclass
from pathlib import Path

import yaml

PREPARED = Path("data/prepared")
SPLITS = Path("data/splits")
CHECKPOINTS = Path("checkpoints")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
REPORTS = Path("reports")


def load_params(path="params.yaml") -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def dataset_spec(params) -> dict:
    name = params["dataset"]
    if name not in params["datasets"]:
        raise SystemExit(f"params.yaml: dataset {name!r} is not defined under 'datasets' "
                         f"(defined: {', '.join(params['datasets'])})")
    return params["datasets"][name]


@dataclass
class RunSpec:
    name: str
    detector: str
    phase: str            # "0", "1", ... or "joint"
    train_json: Path
    test_json: Path
    seen_classes: list
    old_classes: list     # classes of earlier phases (joint: all but the last group)
    new_classes: list
    method: str = ""      # incremental runs: finetune | erd | sdidd
    teacher: str = ""     # incremental runs: the run whose final model is the teacher


def all_runs(params) -> dict:
    """Plain training runs and incremental (student) runs, by name."""
    return {**params.get("runs", {}), **params.get("increments", {})}


def run_spec(params, name: str) -> RunSpec:
    runs = all_runs(params)
    if name not in runs:
        raise SystemExit(f"params.yaml: run {name!r} is not defined under 'runs' or 'increments' "
                         f"(defined: {', '.join(runs)})")
    run = runs[name]
    groups = dataset_spec(params)["class_groups"]
    phase = str(run["phase"])
    if phase == "joint":
        k = len(groups) - 1
        prefix = "joint"
    else:
        k = int(phase)
        if not 0 <= k < len(groups):
            raise SystemExit(f"params.yaml: run {name!r} has phase {k}, but there are {len(groups)} class groups")
        prefix = f"phase{k}"
    old = [c for g in groups[:k] for c in g]
    new = list(groups[k])
    method, teacher = "", ""
    if name in params.get("increments", {}):
        if k < 1:
            raise SystemExit(f"params.yaml: increment {name!r} must have a phase >= 1")
        method = run.get("method", "default")
        method = params["method"] if method == "default" else method
        teacher = run["teacher"]
    return RunSpec(name, run.get("detector", "gfl"), phase, SPLITS / f"{prefix}_train.json",
                   SPLITS / f"{prefix}_test.json", old + new, old, new, method, teacher)
