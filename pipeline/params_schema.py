"""The schema of params.yaml, checked before any stage runs: unknown keys (with the nearest known key),
wrong types, out-of-range values and missing required keys are each a one-line ParamsError naming the key.

A key is optional exactly when it has a default somewhere else: the extensions' settings (one definition
each, detectron_ext/settings.py: `distill`, `erd`, `finetune`, `assigners.tgfs`, most of `train`; the schema
derives their types, choices and ranges from it), detectron2's own keys the pipeline sets, and the keys
pipeline/config.py reads with a default. What describes the work itself (datasets, scales, runs, increments,
launch, validation, evaluate, bench) has no default and is required. One addition: a section a chain's method
reads (`alpha`, `beta`, `distill`, `erd`, `finetune`) must be present while a chain uses it, because that chain's
dvc.yaml stage depends on it by name.

The schema validates and does not fill: a key it marks optional keeps its default where the code
reads it (one home per default), so `validate_params` returns the params it was given unchanged. It is
strict (no "no" for a bool, no "3" for an int: the code would read them otherwise) and an optional key
may be left out but not set to null, except where null has a meaning (`train.seed`, `scales.*.epochs`,
`model.weights`, `datasets.*.classes`, ...).
"""
import dataclasses
import difflib
from typing import Annotated, ClassVar, Literal, Optional

from detectron2.config import get_cfg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from detectron_ext.settings import DISTILL, EFFICIENTNET, ERD, TGFS, TRAINING, Setting

PosInt = Annotated[int, Field(gt=0)]


class ParamsError(ValueError):
    """A params.yaml problem; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "no" is not a bool, "3" not an int


class Dataset(_Section):
    format: Literal["synthetic", "neu-det", "deeppcb", "gc10-det", "voc", "coco"]
    root: str = None
    class_groups: list[list[str]] = Field(min_length=1)
    tasks: Optional[dict[str, list[list[str]]]] = None
    test_fraction: float = Field(None, gt=0, lt=1)
    num_train: int = Field(None, gt=0)
    num_test: int = Field(None, gt=0)
    image_size: int = Field(None, ge=32)
    classes: Optional[list[str]] = None
    aliases: Optional[dict[str, str]] = None
    annotations: str = None
    images: str = None
    train_json: str = None
    test_json: str = None
    validation_by: Literal["image", "folder"] = None  # how the validation images are drawn (data/holdout.py)

    # the keys each format reads (besides format, class_groups, tasks): any other is a mistake
    KEYS: ClassVar[dict] = {"synthetic": {"num_train", "num_test", "image_size"},
            "neu-det": {"root"},
            "deeppcb": {"root", "test_fraction"},
            "gc10-det": {"root", "test_fraction"},
            "voc": {"root", "test_fraction", "classes", "aliases", "annotations", "images"},
            "coco": {"train_json", "test_json", "classes"}}
    REQUIRED: ClassVar[dict] = {"neu-det": {"root"}, "deeppcb": {"root"}, "gc10-det": {"root"}, "voc": {"root", "classes"},
                "coco": {"train_json", "test_json"}}

    @model_validator(mode="after")
    def _format_keys(self):
        given = {k for k in self.model_fields_set if getattr(self, k) is not None} - {"format", "class_groups", "tasks",
                                                                                     "validation_by"}
        for key in sorted(given - self.KEYS[self.format]):
            raise ValueError(f"{key!r} is not read by format {self.format!r} (it reads: "
                             f"{', '.join(sorted(self.KEYS[self.format])) or 'nothing more'})")
        for key in sorted(self.REQUIRED.get(self.format, set()) - given):
            raise ValueError(f"format {self.format!r} needs {key!r}")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"'classes' lists a class twice: {self.classes}")
        for name, groups in [("class_groups", self.class_groups), *((f"tasks.{t}", g) for t, g in (self.tasks or {}).items())]:
            flat = [c for g in groups for c in g]
            if not groups or not all(groups):
                raise ValueError(f"{name} must be a non-empty list of non-empty class lists")
            if len(set(flat)) != len(flat):
                raise ValueError(f"{name} lists a class twice: {sorted({c for c in flat if flat.count(c) > 1})}")
        return self


class Scale(_Section):
    depth: Literal[18, 34, 50, 101]
    fpn_channels: PosInt
    head_channels: PosInt
    head_convs: int = Field(ge=1, le=8)
    input_size: int = Field(ge=0)
    batch: PosInt
    lr: float = Field(gt=0)
    max_iter: Optional[int] = Field(None, gt=0)
    step_fractions: list[float] = None
    epochs: Optional[int] = Field(None, gt=0)
    step_epochs: list[int] = None
    warmup_iters: int = Field(ge=0)
    warmup_factor: float = Field(None, gt=0, le=1)
    clip_gradients: Optional[float] = Field(None, ge=0)
    eval_period: int = Field(None, ge=0)

    @model_validator(mode="after")
    def _schedule(self):
        if not self.epochs and not self.max_iter:
            raise ValueError("needs 'epochs' or 'max_iter'")
        if any(not 0 < f < 1 for f in self.step_fractions or []):
            raise ValueError(f"step_fractions must lie in (0, 1): {self.step_fractions}")
        return self


class Model(_Section):
    backbone: Literal[("resnet",) + EFFICIENTNET["name"].choices] = None
    weights: Optional[str] = None
    weights_format: Literal["detectron2", "torchvision"] = None
    norm: Literal["GN", "BN", "SyncBN", "FrozenBN"] = None
    freeze_at: int = Field(None, ge=0, le=5)
    score_thresh: float = Field(None, ge=0, lt=1)   # these five: detectron_ext/config.py's head defaults
    nms_thresh: float = Field(None, gt=0, le=1)
    max_detections: int = Field(None, gt=0)
    reg_max: int = Field(None, gt=0)
    atss_topk: int = Field(None, gt=0)


class Run(_Section):
    detector: Literal["gfl", "fcos"]
    phase: int | Literal["joint"]
    assigner: Literal["base", "tgfs"]  # a section of `assigners`


_D2 = get_cfg()  # detectron2's own defaults, for its keys the pipeline sets

# params.yaml sections made of settings: a params key is a setting's name (pipeline/config.py applies them)
SECTIONS = {name: {s.name: s for s in settings} for name, settings in {
    "distill": [s for s in DISTILL if s.name not in ("method", "teacher_weights", "num_old_classes", "teacher_cache_mb",
                                                      "alpha", "beta")]
               + [Setting("topk_reference_size", 0.0, ge=0, key="")],  # 0: K as is; S: K x (input size / S)^2
    "finetune": [DISTILL["qfl_channels"]],
    "erd": list(ERD),
    "tgfs": [s for s in TGFS if s.name not in ("enabled", "cold_start_iters")]
            + [Setting("cold_start_fraction", 0.5, ge=0, le=1, key="")],  # of the run's iterations (0.1 collapsed: docs/methods.md)
    "train": [TRAINING["deterministic"], TRAINING["precision"], TRAINING["random_rotate90"], DISTILL["teacher_cache_mb"],
              Setting("checkpoint_period", _D2.SOLVER.CHECKPOINT_PERIOD, gt=0, key="SOLVER.CHECKPOINT_PERIOD"),
              Setting("num_workers", _D2.DATALOADER.NUM_WORKERS, ge=0, key="DATALOADER.NUM_WORKERS"),
              Setting("random_flip", _D2.INPUT.RANDOM_FLIP, ("horizontal", "vertical", "none"), key="INPUT.RANDOM_FLIP")],
    "top": [dataclasses.replace(TRAINING["num_threads"], name="threads"), DISTILL["alpha"], DISTILL["beta"]],
}.items()}
METHODS = DISTILL["method"].choices
# what each incremental method reads: params section -> its settings (None: top-level keys); nothing else,
# so `-S alpha=3` reruns SD-IDD alone
METHOD_PARAMS = {"finetune": {"finetune": SECTIONS["finetune"]},
                 "erd": {"erd": SECTIONS["erd"]},
                 "sdidd": {None: {k: SECTIONS["top"][k] for k in ("alpha", "beta")}, "distill": SECTIONS["distill"]}}
assert set(METHOD_PARAMS) == set(METHODS)


def _annotation(s: Setting):
    return Literal[s.choices] if s.choices else type(s.default)


def _section_model(name: str, settings, **more) -> type[BaseModel]:
    """The pydantic model of a params section of settings: every key optional (its default is the setting's)."""
    fields = {s.name: (_annotation(s), Field(None, **s.bounds())) for s in settings.values()}
    return create_model(name, __base__=_Section, **fields, **more)


Tgfs = _section_model("Tgfs", SECTIONS["tgfs"])


class Assigners(_Section):
    base: dict = Field(max_length=0)  # the detector's own assigner: no parameters (a section, so a run
                                      # using it depends on it as on any assigner)
    tgfs: Tgfs = None


class Increment(_Section):
    teacher: str
    method: Literal[METHODS]
    assigner: Literal["base", "tgfs"]  # the student's, a section of `assigners`
    distill: Optional[dict] = None     # method sdidd: keys of `distill` this chain sets otherwise (a variant)
    alpha: Optional[float] = None      # method sdidd: this chain's own α / β (a point of their grid, as a chain)
    beta: Optional[float] = None
    reads: list[str] = Field(min_length=3, max_length=3)  # the params it reads, for dvc.yaml (`chain_reads`)


Finetune = _section_model("Finetune", SECTIONS["finetune"])
Erd = _section_model("Erd", SECTIONS["erd"])
Distill = _section_model("Distill", SECTIONS["distill"])
Train = _section_model("Train", SECTIONS["train"], seed=(Optional[int], Field(None, ge=0)))


class Launch(_Section):
    num_gpus: PosInt
    num_machines: PosInt
    machine_rank: int = Field(ge=0)
    dist_url: str

    @model_validator(mode="after")
    def _rank(self):
        if self.machine_rank >= self.num_machines:
            raise ValueError(f"machine_rank {self.machine_rank} is not below num_machines {self.num_machines}")
        if self.num_machines > 1 and self.dist_url == "auto":
            raise ValueError("dist_url auto works on one machine only: give tcp://<machine 0>:<port>")
        return self


class Validation(_Section):
    fraction: float = Field(gt=0, lt=1)


class Evaluate(_Section):
    split: Literal["val", "test"]
    num_images_drawn: int = Field(ge=0)
    draw_score_thresh: float = Field(ge=0, le=1)


class Bench(_Section):
    scale: str
    input_size: PosInt
    batch: PosInt
    steps: PosInt
    threads: PosInt
    eval_images: int = Field(ge=0)


class Params(_Section):
    seed: int = Field(ge=0)
    threads: _annotation(SECTIONS["top"]["threads"]) = Field(None, **SECTIONS["top"]["threads"].bounds())
    device: str = Field(None, pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    dataset: str
    task: str = None
    datasets: dict[str, Dataset]
    scale: str
    scales: dict[str, Scale]
    model: Model
    runs: dict[str, Run] = None
    assigners: Assigners = None
    increments: dict[str, Increment] = None
    finetune: Finetune = None
    erd: Erd = None
    alpha: _annotation(DISTILL["alpha"]) = None
    beta: _annotation(DISTILL["beta"]) = None
    distill: Distill = None
    train: Train
    launch: Launch
    validation: Validation
    evaluate: Evaluate
    bench: Bench = None

    @model_validator(mode="after")
    def _references(self):
        def known(key, value, defined):
            if value not in defined:
                raise ValueError(f"{key}: {value!r} is not defined (defined: {', '.join(map(str, defined))})")
        known("dataset", self.dataset, self.datasets)
        known("scale", self.scale, self.scales)
        if self.bench is not None:
            known("bench.scale", self.bench.scale, self.scales)
        if self.task not in (None, "default"):
            known("task", self.task, self.datasets[self.dataset].tasks or {})
        runs = self.runs or {}
        users = [(f"runs.{n}", r.assigner) for n, r in runs.items()]
        users += [(f"increments.{n}", i.assigner) for n, i in (self.increments or {}).items()]
        for key, assigner in users:
            if getattr(self.assigners, assigner, None) is None:
                raise ValueError(f"{key} uses assigner {assigner}, but there is no 'assigners.{assigner}' section")
        needs = {m: [k for k in reads if k] + list(reads.get(None, {})) for m, reads in METHOD_PARAMS.items()}
        for name, inc in (self.increments or {}).items():
            known(f"increments.{name}.teacher", inc.teacher, runs)
            for key in ("alpha", "beta"):
                if getattr(inc, key) is not None and inc.method != "sdidd":
                    raise ValueError(f"increments.{name}.{key}: only method sdidd reads '{key}' "
                                     f"(this chain's method is {inc.method})")
            if inc.distill is not None:
                if inc.method != "sdidd":
                    raise ValueError(f"increments.{name}.distill: only method sdidd reads 'distill' "
                                     f"(this chain's method is {inc.method})")
                for key in inc.distill:
                    known(f"increments.{name}.distill", key, Distill.model_fields)
                if self.distill is not None:
                    try:
                        Distill.model_validate({**self.distill.model_dump(exclude_unset=True), **inc.distill})
                    except ValidationError as e:
                        err = e.errors()[0]
                        raise ValueError(f"increments.{name}.distill.{'.'.join(map(str, err['loc']))}: "
                                         f"{err['msg']}") from None
            for section in needs[inc.method]:
                if getattr(self, section) is None:
                    raise ValueError(f"increments.{name} uses method {inc.method}, which reads '{section}' "
                                     f"(missing)")
            want = chain_reads(inc, self.distill)
            if set(inc.reads) != set(want):
                fill = (want * 3)[:3] if len(want) < 3 else want
                raise ValueError(f"increments.{name}.reads: this chain reads {', '.join(want)}: write "
                                 f"reads: [{', '.join(sorted(fill))}] (three entries, one repeated if need be)")
        return self


def chain_reads(inc: Increment, distill) -> list:
    """The top-level params a chain reads (what its dvc.yaml stage depends on besides its own entry): the
    method's section; for SD-IDD `distill`, and `alpha` / `beta` where CR / BR is selective and the chain has
    no α / β of its own."""
    if inc.method != "sdidd":
        return list(METHOD_PARAMS[inc.method])
    mode = {**(distill.model_dump(exclude_none=True) if distill is not None else {}), **(inc.distill or {})}
    selective = lambda key: mode.get(key, DISTILL[key].default) == "selective"  # noqa: E731
    return (["alpha"] if selective("cls_mode") and inc.alpha is None else []) + \
        (["beta"] if selective("reg_mode") and inc.beta is None else []) + ["distill"]


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at `loc` (a pydantic error location), for the nearest-key suggestion."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a dict key (dataset name, run name) or list index
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
    return list(model.model_fields)


def _message(error: dict, path: str) -> str:
    loc = tuple(str(x) for x in error["loc"])
    key = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        near = difflib.get_close_matches(loc[-1], _known_keys(Params, error["loc"]), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"{path}: {key}: unknown key{hint}"
    if error["type"] == "missing":
        return f"{path}: {key}: required key is missing"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return f"{path}: {key}: {msg}" if loc else f"{path}: {msg}"
    return f"{path}: {key}: {msg} (got {error.get('input')!r})"


def validate_params(params, path="params.yaml") -> dict:
    """`params` unchanged if it matches the schema; ParamsError (one line, naming the key) otherwise."""
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters, got {type(params).__name__} "
                          f"(is the file empty?)")
    try:
        Params.model_validate(params)
    except ValidationError as e:
        errors = e.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParamsError(_message(errors[0], path) + more) from None
    return params
