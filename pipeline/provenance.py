"""What a result was made from: the resolved params (a copy beside the model, and its hash), the code
commit, and the checksums of the model and of the teacher it was distilled from. Every metrics file
of the pipeline carries it under `provenance` (strings only, so `dvc metrics diff` lists none of it)."""
import hashlib
import subprocess
from pathlib import Path

import yaml

from detectron_ext.checkpoint import WEIGHTS_FILE
from detectron_ext.file_io import atomic_write_text, file_sha256

from .runs import RunSpec

PARAMS_COPY = "params.yaml"  # in the model folder: the params it was trained with, as resolved
CODE_PATHS = ("detectron_ext", "pipeline", "stages", "configs")
CODE_ROOT = Path(__file__).resolve().parent.parent  # where this code lives (a workspace links it from there)


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


def write_params_copy(model_dir: Path, params: dict):
    atomic_write_text(Path(model_dir) / PARAMS_COPY, params_text(params))


def provenance(params: dict, spec: RunSpec) -> dict:
    """The provenance of a trained run: hashes of the params copy in its model folder (written at
    training; the params now where there is none) and of its weights, the teacher's weights' checksum
    (students), the code commit now."""
    copy = spec.model_dir / PARAMS_COPY
    text = copy.read_text() if copy.is_file() else params_text(params)
    weights = spec.model_dir / WEIGHTS_FILE
    return {"params_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "params_copy": str(copy) if copy.is_file() else None,
            "code_commit": code_commit(),
            "model_sha256": file_sha256(weights) if weights.is_file() else None,
            "teacher": spec.teacher or None,
            "teacher_sha256": file_sha256(spec.teacher_weights) if spec.teacher else None}
