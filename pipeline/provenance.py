"""What a result was made from. When a run starts training afresh it records (checkpoints/RUN/provenance.json,
copied into models/RUN/ with the weights) the hash of the resolved params (a copy beside it), the code
commit, the checksums of its training set and of its teacher; a run resumed with other code adds that
commit. Every metrics file carries the record under `provenance` with the model's checksum and the commit
that evaluated it (strings only, so `dvc metrics diff` lists none of it)."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from detectron_ext.checkpoint import WEIGHTS_FILE
from detectron_ext.file_io import atomic_write_json, atomic_write_text, file_sha256

from .runs import RunSpec

PARAMS_COPY = "params.yaml"   # the params a run was trained with, as resolved
RECORD = "provenance.json"
CODE_PATHS = ("detectron_ext", "pipeline", "stages", "configs")
CODE_ROOT = Path(__file__).resolve().parent.parent  # where this code lives (a workspace links it from there)
INPUTS = ("train_json_sha256", "teacher_sha256")    # what the weights are trained from, besides the config


def code_commit(cwd=CODE_ROOT) -> str:
    """`git rev-parse HEAD` of the checkout the code comes from, with "+dirty" when the code (CODE_PATHS)
    differs from it; "unknown" outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = git("status", "--porcelain", "--", *CODE_PATHS).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def params_text(params: dict) -> str:
    return yaml.safe_dump(params, sort_keys=True)


def training_record(params: dict, spec: RunSpec) -> dict:
    """The record of a run about to train: params hash, code commit, training set's and teacher's checksums."""
    return {"params_sha256": hashlib.sha256(params_text(params).encode()).hexdigest(), "code_commit": code_commit(),
            "train_json_sha256": file_sha256(spec.train_json),
            "teacher": spec.teacher or None,
            "teacher_sha256": file_sha256(spec.teacher_weights) if spec.teacher else None}


def read_record(folder) -> dict:
    path = Path(folder) / RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def same_inputs(old: dict, new: dict) -> bool:
    """Whether checkpoints recorded as `old` were trained from the data and teacher of `new` (a changed
    validation share or a retrained teacher leaves the config as it was, not the inputs)."""
    return bool(old) and all(old.get(k) == new.get(k) for k in INPUTS)


def start_record(folder: Path, params: dict, record: dict):
    """A fresh start: the record and the params copy in the checkpoint folder. A resume: the code commit
    added under `resumed_with` when it differs from the ones recorded."""
    old = read_record(folder)
    if old and same_inputs(old, record):
        if record["code_commit"] not in [old["code_commit"], *old.get("resumed_with", [])]:
            atomic_write_json(folder / RECORD, {**old, "resumed_with": old.get("resumed_with", []) + [record["code_commit"]]})
        return
    atomic_write_text(folder / PARAMS_COPY, params_text(params))
    atomic_write_json(folder / RECORD, record)


def keep_record(checkpoint_dir: Path, model_dir: Path):
    """The record and params copy beside the saved weights."""
    for name in (RECORD, PARAMS_COPY):
        if (checkpoint_dir / name).is_file():
            shutil.copyfile(checkpoint_dir / name, Path(model_dir) / name)


def provenance(params: dict, spec: RunSpec) -> dict:
    """A trained run's provenance for its metrics: the record of its training (models/RUN/provenance.json;
    for a model trained before records existed, one made now from the params and files as they are, marked
    so), the model's checksum and the commit evaluating it."""
    record = read_record(spec.model_dir) or {**training_record(params, spec), "recorded": "at evaluation"}
    weights = spec.model_dir / WEIGHTS_FILE
    return {**record, "model_sha256": file_sha256(weights) if weights.is_file() else None,
            "evaluated_with": code_commit()}
