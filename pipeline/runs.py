"""What each run trains and tests on (params -> RunSpec), and where the pipeline keeps its files."""
from dataclasses import dataclass
from pathlib import Path

from .params import class_groups
from .params_schema import METHODS, ParamsError

PREPARED = Path("data/prepared")
SPLITS = Path("data/splits")
CHECKPOINTS = Path("checkpoints")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
REPORTS = Path("reports")


@dataclass
class RunSpec:
    name: str             # a run of `runs`, or "INCREMENT/phaseK" for a phase of an incremental chain
    detector: str
    phase: str            # "0", "1", ... or "joint"
    train_json: Path
    test_json: Path
    seen_classes: list
    old_classes: list     # classes of earlier phases (joint: all but the last group)
    new_classes: list
    method: str = ""      # incremental runs: finetune | erd | sdidd
    teacher: str = ""     # incremental runs: the run whose final model is the teacher
    assigner: str = "base"  # base (the detector's own: ATSS for GFL, FCOS's rule) | tgfs
    val_json: Path = None   # the validation images (periodic evaluation; `evaluate.split: val`); None: test_json

    def __post_init__(self):
        if self.val_json is None:
            self.val_json = self.test_json

    def eval_json(self, split: str) -> Path:
        """The set a final evaluation scores: params `evaluate.split`, val or test."""
        if split not in ("val", "test"):
            raise ValueError(f"evaluate.split must be val or test, not {split!r}")
        return self.val_json if split == "val" else self.test_json

    @property
    def checkpoint_dir(self) -> Path:
        return CHECKPOINTS / self.name

    @property
    def model_dir(self) -> Path:
        return MODELS / self.name

    @property
    def plot_dir(self) -> Path:
        return PLOTS / self.name

    @property
    def teacher_weights(self) -> Path:
        return MODELS / self.teacher / "model_final.pth"


def phase_classes(groups, phase: str):
    """(old, new, split-file prefix) of a phase: "joint" or the index of a class group."""
    if phase == "joint":
        k, prefix = len(groups) - 1, "joint"
    else:
        k, prefix = int(phase), f"phase{phase}"
    return [c for g in groups[:k] for c in g], list(groups[k]), prefix


def run_spec(params, name: str) -> RunSpec:
    """A plain training run of params.yaml `runs`: phase 0 (the first class group) or joint."""
    runs = params.get("runs", {})
    if name not in runs:
        raise SystemExit(f"params.yaml: run {name!r} is not defined under 'runs' (defined: {', '.join(runs)})")
    run = runs[name]
    groups = class_groups(params)
    phase = str(run["phase"])
    if phase != "joint" and not 0 <= int(phase) < len(groups):
        raise SystemExit(f"params.yaml: run {name!r} has phase {phase}, but there are {len(groups)} class groups")
    old, new, prefix = phase_classes(groups, phase)
    return RunSpec(name, run.get("detector", "gfl"), phase, SPLITS / f"{prefix}_train.json",
                   SPLITS / f"{prefix}_test.json", old + new, old, new, assigner=run["assigner"],
                   val_json=SPLITS / f"{prefix}_val.json")


def increment_specs(params, name: str) -> list:
    """The phases of an incremental chain of params.yaml `increments`, in order: phase 1 is distilled
    from the chain's `teacher` run (trained on phase 0), each later phase from the phase before."""
    increments = params.get("increments", {})
    if name not in increments:
        raise SystemExit(f"params.yaml: increment {name!r} is not defined under 'increments' "
                         f"(defined: {', '.join(increments)})")
    chain = increments[name]
    method = chain.get("method", name)
    if method not in METHODS:
        raise SystemExit(f"params.yaml: increment {name!r} has method {method!r}; choose {', '.join(METHODS)}")
    teacher = run_spec(params, chain["teacher"])
    if teacher.phase != "0":
        raise SystemExit(f"params.yaml: increment {name!r}: its teacher run {chain['teacher']!r} must be phase 0")
    groups = class_groups(params)
    if len(groups) < 2:
        raise SystemExit(f"params.yaml: increment {name!r} needs at least two class groups")
    specs = []
    for k in range(1, len(groups)):
        old, new, prefix = phase_classes(groups, str(k))
        specs.append(RunSpec(f"{name}/phase{k}", teacher.detector, str(k), SPLITS / f"{prefix}_train.json",
                             SPLITS / f"{prefix}_test.json", old + new, old, new, method,
                             teacher.name if k == 1 else f"{name}/phase{k - 1}", chain["assigner"],
                             SPLITS / f"{prefix}_val.json"))
    return specs


def chain_variant(params: dict, name: str) -> dict:
    """What a chain of `increments` sets for itself over the params' SD-IDD settings (its own `alpha`,
    `beta`, `distill` keys): {} for a chain that runs its method as params.yaml defines it."""
    chain = params.get("increments", {}).get(name) or {}
    return {k: chain[k] for k in ("alpha", "beta", "distill") if chain.get(k) not in (None, {})}


def chain_params(params: dict, name: str) -> dict:
    """The params an incremental chain trains with: its own `alpha`, `beta` and `distill` keys set over
    params.yaml's (a variant of SD-IDD, named for what it does, beside the paper's method)."""
    own = chain_variant(params, name)
    if not own:
        return params
    return {**params, **own, "distill": {**params["distill"], **own.get("distill", {})}}


def resolve_method(params: dict, name: str):
    """(method, params) of a method name (finetune, erd, sdidd) or of a chain of `increments` (a variant:
    its method, with its own `distill` keys set in params); ParamsError for anything else."""
    if name in METHODS:
        return name, params
    chains = params.get("increments", {})
    if name not in chains:
        raise ParamsError(f"method {name!r} is none of {', '.join(METHODS)} and no chain of params.yaml "
                          f"increments ({', '.join(chains) or 'none'})")
    if chains[name].get("assigner", "base") != "base":
        raise ParamsError(f"increments.{name} trains with assigner {chains[name]['assigner']}, which defect-il "
                          f"increment does not apply (it keeps the model's own): choose a chain with assigner base")
    return chains[name]["method"], chain_params(params, name)


def dataset_names(spec: RunSpec, evaluated: str = "val"):
    """detectron2 catalog names of a run's training set and of the set it is evaluated on (the
    validation set during training)."""
    key = spec.name.replace("/", "_")
    return f"{key}_train", f"{key}_{evaluated}"
