"""params.yaml: read and checked (params_schema.py), the dataset and task it selects, and how a stage
reports bad input."""
import os
import sys

import yaml

from detectron_ext.data.errors import DatasetError

from .params_schema import ParamsError, validate_params


def load_params(path="params.yaml") -> dict:
    """params.yaml, checked against the schema (params_schema.py); ParamsError naming the key otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            params = yaml.safe_load(f)
    except OSError as e:
        raise ParamsError(f"{path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f"line {where.line + 1}: " if where else ""
        raise ParamsError(f"{path}: {line}not valid YAML ({getattr(e, 'problem', None) or e})") from None
    return validate_params(params, path)


def apply_overrides(params: dict, items, where="params.yaml") -> dict:
    """`KEY.SUB=VALUE` overrides (values as YAML: `alpha=3`, `runs.x.phase=joint`) set in `params`, as
    `dvc exp run -S` does; ParamsError for an item without `=` or a path through a non-section."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParamsError(f"{item}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        node = params
        for k in parents:
            if not isinstance(node.get(k), dict):
                raise ParamsError(f"{item}: {where} has no section {k!r}")
            node = node[k]
        node[leaf] = yaml.safe_load(value)
    return params


def run_stage(main, *args):
    """Run a stage's main(*args). Bad input (DatasetError, ParamsError) ends it with one line on stderr
    (the file, the problem) and exit status 1; DEFECT_IL_DEBUG=1 shows the traceback instead."""
    try:
        return main(*args)
    except (DatasetError, ParamsError) as e:
        if os.environ.get("DEFECT_IL_DEBUG"):
            raise
        sys.exit(f"error: {e}")


def dataset_spec(params) -> dict:
    name = params["dataset"]
    if name not in params["datasets"]:
        raise SystemExit(f"params.yaml: dataset {name!r} is not defined under 'datasets' "
                         f"(defined: {', '.join(params['datasets'])})")
    return params["datasets"][name]


def class_groups(params) -> list:
    """The ordered class groups of the selected task: `task: default` = the dataset's
    `class_groups`; any other value names an entry of the dataset's `tasks` (e.g. 2+2+2)."""
    spec, task = dataset_spec(params), str(params.get("task", "default"))
    if task == "default":
        return spec["class_groups"]
    tasks = spec.get("tasks") or {}
    if task not in tasks:
        raise SystemExit(f"params.yaml: task {task!r} is not defined under datasets.{params['dataset']}.tasks "
                         f"(defined: default, {', '.join(map(str, tasks)) or 'none'})")
    return tasks[task]
