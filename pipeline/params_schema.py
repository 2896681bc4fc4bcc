"""The schema of params.yaml, checked before any stage runs: unknown keys (with the nearest known key),
wrong types, out-of-range values and missing required keys are each a one-line ParamsError naming the key.

The schema validates and does not fill: a key it marks optional keeps its default where the code
reads it (one home per default), so `validate_params` returns the params it was given unchanged. It is
strict (no "no" for a bool, no "3" for an int: the code would read them otherwise) and an optional key
may be left out but not set to null, except where null has a meaning (`train.seed`, `scales.*.epochs`,
`model.weights`, `datasets.*.classes`, ...).
"""
import difflib
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    backbone: Literal["resnet", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"] = None
    weights: Optional[str] = None
    weights_format: Literal["detectron2", "torchvision"] = None
    norm: Literal["GN", "BN", "SyncBN", "FrozenBN"] = None
    freeze_at: int = Field(None, ge=0, le=5)
    score_thresh: float = Field(ge=0, lt=1)
    nms_thresh: float = Field(gt=0, le=1)
    max_detections: PosInt
    reg_max: PosInt
    atss_topk: PosInt


class Run(_Section):
    detector: Literal["gfl", "fcos"]
    phase: int | Literal["joint"]
    assigner: Literal["base", "tgfs"]  # a section of `assigners`


class Tgfs(_Section):
    selection: Literal["tgfs", "base"]
    levels: int = Field(ge=1, le=5)
    region: Literal["center", "box"]
    radius: float = Field(gt=0)
    loc_weight: float = Field(ge=0)
    focal_gamma: float = Field(ge=0)
    quality_topk: int = Field(ge=0)
    margin: float = Field(ge=0)
    high_levels: Literal["base", "none"]
    unselected: Literal["ignore", "background"]
    cold_start_fraction: float = Field(ge=0, le=1)
    reweight: Literal["none", "quality", "focal"]
    reweight_gamma: float = Field(ge=0)


class Assigners(_Section):
    base: dict = Field(max_length=0)  # the detector's own assigner: no parameters (a section, so a run
                                      # using it depends on it as on any assigner)
    tgfs: Tgfs = None


class Increment(_Section):
    teacher: str
    method: Literal["finetune", "erd", "sdidd"]
    assigner: Literal["base", "tgfs"]  # the student's, a section of `assigners`
    distill: Optional[dict] = None     # method sdidd: keys of `distill` this chain sets otherwise (a variant)
    alpha: Optional[float] = None      # method sdidd: this chain's own α / β (a point of their grid, as a chain)
    beta: Optional[float] = None


class Finetune(_Section):
    qfl_channels: Literal["new", "all"]


class Erd(_Section):
    cls_alpha: float = None
    reg_alpha: float = None
    nms_iou: float = Field(None, ge=0, le=1)
    reg_temperature: float = Field(None, gt=0)
    reg_weight: float = Field(None, ge=0)
    weight: float = Field(None, ge=0)
    teacher_boxes: Literal["code", "stride"] = None
    images_per_gpu: int = Field(None, ge=0)


Mode = Literal["none", "global", "selective"]


class Distill(_Section):
    cls_mode: Mode
    reg_mode: Mode
    feat_mode: Mode
    qfl_channels: Literal["new", "all"]
    topk: PosInt
    topk_reference_size: Optional[float] = Field(None, ge=0)
    cr_confidence: Literal["sigmoid", "softmax"]
    cr_temperature: float = Field(gt=0)
    br_temperature: float = Field(gt=0)
    br_per_gt: bool
    br_global_weighting: Literal["uniform", "old_score"]
    cr_on_labelled: Literal["keep", "exclude"]
    cr_outside: Literal["none", "background"]
    fr_features: Literal["raw", "standardised"]
    fr_lambda: float = Field(gt=0, lt=1)
    fr_lambda_mode: Literal["fixed", "learnable"]
    fr_lambda_temperature: float = Field(gt=0)
    fr_lambda_weight: float = Field(ge=0)
    cls_weight: float = Field(ge=0)
    reg_weight: float = Field(ge=0)
    feat_weight: float = Field(ge=0)


class Train(_Section):
    checkpoint_period: PosInt
    num_workers: int = Field(None, ge=0)
    deterministic: bool = None
    seed: Optional[int] = Field(None, ge=0)
    precision: Literal["fp32", "bf16", "auto"] = None
    teacher_cache_mb: int = Field(None, ge=0)
    random_flip: Literal["horizontal", "vertical", "none"] = None
    random_rotate90: float = Field(None, ge=0, le=1)


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
    threads: int = Field(None, ge=1)
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
    alpha: float = None
    beta: float = None
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
        needs = {"finetune": ("finetune",), "erd": ("erd",), "sdidd": ("alpha", "beta", "distill")}
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
        return self


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
