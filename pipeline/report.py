"""The results tables of the report stage: every run and phase, the paper's incremental table, and
the old classes' mAP over the increments."""
import json

import pandas as pd

from .runs import METRICS, increment_specs

COLUMNS = ["detector", "assigner", "method", "phase", "iterations", "mAP50", "mAP50_old", "mAP50_new", "AP"]


def row(name, m, method="-"):
    return {"run": name, **{k: m.get(k, "base") for k in COLUMNS if k != "method"}, "method": method,
            **m["AP50_per_class"]}


def read_metrics(params) -> pd.DataFrame:
    rows = [row(run, json.loads((METRICS / f"{run}.json").read_text())) for run in params.get("runs", {})]
    for chain in params.get("increments", {}):
        phases = json.loads((METRICS / f"{chain}.json").read_text())["phases"]
        method = increment_specs(params, chain)[0].method
        rows += [row(f"{chain}/phase{k}", m, method) for k, m in phases.items()]
    return pd.DataFrame(rows).set_index("run")


def incremental_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: the joint GFL run(s) (upper bound), then every phase of every chain; the paper's columns."""
    joint = df[(df["phase"] == "joint") & (df["detector"] == "gfl")]
    joint = joint.assign(method=["joint" if a == "base" else f"joint ({a})" for a in joint["assigner"]])
    table = pd.concat([joint, df[df["method"] != "-"]])[["method", "phase", "mAP50_old", "mAP50_new", "mAP50"]]
    return table.rename(columns={"mAP50_old": "mAP_old", "mAP50_new": "mAP_new", "mAP50": "mAP_all"})


def forgetting(df: pd.DataFrame, params) -> pd.DataFrame:
    """mAP_old per method (columns) and step (rows); step 0 is the teacher's mAP on its classes."""
    curves = {}
    for chain in params.get("increments", {}):
        specs = increment_specs(params, chain)
        steps = {0: df.loc[specs[0].teacher, "mAP50"]}
        steps.update({int(s.phase): df.loc[s.name, "mAP50_old"] for s in specs})
        curves[chain] = pd.Series(steps)
    return pd.DataFrame(curves).rename_axis("step")


def per_class_long(df: pd.DataFrame, classes) -> pd.DataFrame:
    """One row per run and class with its AP50 (absent classes dropped): the bars of the DVC plot."""
    long = df[classes].rename_axis("run").reset_index().melt(id_vars="run", var_name="class", value_name="AP50")
    long = long.dropna(subset=["AP50"])
    return long.assign(run_class=long["run"] + ": " + long["class"])[["run", "class", "run_class", "AP50"]]
