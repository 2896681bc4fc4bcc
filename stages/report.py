"""Stage report: the results tables (reports/) and plots (plots/report/).

Reads params: dataset, task, scale, runs, increments.
- reports/results.{md,json}: every run and every phase of every incremental chain: mAP50
  (all/old/new), AP@[.5:.95] and AP50 per class, each on its own test set.
- reports/incremental.{md,json}: the paper's table, method × mAP_old / mAP_new / mAP_all per phase,
  beside the joint GFL run (the upper bound).
- plots/report/per_class_ap.png: AP50 per class per run; plots/report/forgetting.png: mAP_old of
  each method over the increments (step 0: the teacher on its own classes).
"""
import json

import pandas as pd

from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text
from detectron_ext.pipeline import METRICS, PLOTS, REPORTS, increment_specs, load_params, run_stage
from detectron_ext.training_log import save_figure

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


def plot(frame: pd.DataFrame, png_path, title, ylabel, kind="bar"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(frame)), 4))
    if kind == "bar":
        frame.plot.bar(ax=ax, width=0.8)
    else:
        frame.plot(ax=ax, marker="o")
        ax.set_xticks(frame.index)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, png_path)


def main():
    params = load_params()
    df = read_metrics(params)
    where = f"dataset {params['dataset']}, task {params.get('task', 'default')}, scale {params['scale']}"
    atomic_write_text(REPORTS / "results.md",
                      f"# Results: {where} (AP in %, pycocotools)\n\n" + df.to_markdown(floatfmt=".1f") + "\n")
    atomic_write_json(REPORTS / "results.json", json.loads(df.to_json(orient="index")))
    table = incremental_table(df)
    atomic_write_text(REPORTS / "incremental.md",
                      f"# Class-incremental results: {where} (mAP50 in %, pycocotools)\n\n"
                      + table.to_markdown(floatfmt=".1f") + "\n")
    atomic_write_json(REPORTS / "incremental.json", json.loads(table.to_json(orient="index")))
    classes = [c for c in df.columns if c not in COLUMNS]
    plot(df[classes].T, PLOTS / "report" / "per_class_ap.png", f"AP50 per class ({where})", "AP50 (%)")
    if params.get("increments"):
        plot(forgetting(df, params), PLOTS / "report" / "forgetting.png",
             f"old classes over increments ({where})", "mAP50 of the old classes (%)", kind="line")
    print(df[COLUMNS[1:]].to_string())
    print(table.to_string())


if __name__ == "__main__":
    run_stage(main)
