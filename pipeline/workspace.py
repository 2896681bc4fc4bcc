"""A scratch DVC workspace of this repository's pipeline: its own params.yaml, the code linked in, and
`dvc repro` as a user runs it (so the stage order comes from dvc.yaml alone). Used by the CI regression
check and the end-to-end tests."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LINKED = ("detectron_ext", "pipeline", "defect_il", "configs", "stages")


def make_workspace(path, params: dict) -> Path:
    """`path` as a DVC project (no git) running this repository's dvc.yaml and code with `params`;
    an existing one keeps its outputs and lock file (finished stages are not rerun)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = path / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link)
            link.symlink_to(ROOT / name, target_is_directory=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copyfile(ROOT / name, path / name)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / "increments").mkdir(exist_ok=True)  # the user_increments stage's dependency (none listed here)
    if not (path / ".dvc").is_dir():
        dvc(path, "init", "--no-scm", "-q")
    shutil.copytree(ROOT / ".dvc" / "plots", path / ".dvc" / "plots", dirs_exist_ok=True)  # the page's templates
    return path


def dvc(path, *args, capture: bool = False) -> subprocess.CompletedProcess:
    """Run DVC in `path` with this interpreter first on PATH (the stages' `python`)."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=path, env=env, text=True,
                          capture_output=capture)
