"""dvc.yaml's code dependencies are what each stage's script imports: editing a module reruns the stages
that run it and no other (the CLI, the bench and the report's modules rerun no training)."""
import ast
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGES = ("detectron_ext", "pipeline", "defect_il")


def _module_file(name: str):
    base = ROOT.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _has_code(init: Path) -> bool:
    body = ast.parse(init.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def imported_files(script: Path) -> set:
    """The project's files a script runs: its imports, theirs (function-level ones too: what a stage may
    run), each package's __init__.py that holds code. Static: read, not imported."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        if path.name == "__init__.py":
            package = ".".join(path.relative_to(ROOT).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] not in PACKAGES:
                    continue
                parts = name.split(".")
                for k in range(1, len(parts) + 1):  # the module and each package above it
                    f = _module_file(".".join(parts[:k]))
                    if f and f not in seen and (f.name != "__init__.py" or _has_code(f)):
                        seen.add(f)
                        todo.append(f)
    return {str(f.relative_to(ROOT)) for f in seen}


def _stages():
    from dvc.repo import Repo
    with Repo(str(ROOT)) as repo:
        return [(s.addressing, s.cmd, [d.def_path for d in s.deps]) for s in repo.index.stages]


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


@pytest.mark.parametrize("stage, cmd, deps", _stages(), ids=lambda x: x if isinstance(x, str) else "")
def test_a_stage_depends_on_the_modules_its_script_imports_and_no_other(stage, cmd, deps):
    argv = cmd.split()
    assert argv[:2] == ["python", f"stages/{argv[1].split('/')[-1]}"], cmd
    script = ROOT / argv[1]
    runs = imported_files(script) | {argv[1]}
    code_deps = [d for d in deps if d.split("/")[0] in PACKAGES + ("stages",)]
    missing = sorted(f for f in runs if not any(_covers(d, f) for d in code_deps))
    assert not missing, f"{stage} runs {missing} without depending on it"
    needless = sorted(d for d in code_deps if not any(_covers(d, f) for f in runs))
    assert not needless, f"{stage} depends on {needless}, which it does not run"
    assert "pipeline" not in code_deps, f"{stage}: name the pipeline modules it runs, not the folder"


def test_the_import_reading_finds_lazy_and_relative_imports():
    files = imported_files(ROOT / "stages" / "increment.py")
    assert {"pipeline/runner.py", "pipeline/config.py", "detectron_ext/modeling/distill_gfl.py",
            "detectron_ext/distillation/selection.py", "detectron_ext/__init__.py"} <= files
    assert "defect_il/cli.py" not in files and "pipeline/bench.py" not in files
    assert "pipeline/__init__.py" not in files  # a docstring alone: nothing that runs
