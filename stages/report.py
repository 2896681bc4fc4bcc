"""Stage report: the results tables (reports/) and the per-class AP plot (plots/report/).

Reads params: runs, increments, dataset, scale.
- reports/results.{md,json}: every run, mAP50 (all/old/new), AP@[.5:.95] and AP50 per class, as
  evaluated on each run's own test set.
- reports/incremental.{md,json}: the paper's table, method x mAP_old / mAP_new / mAP_all, for the
  incremental runs beside the joint GFL run (the upper bound).
- plots/report/per_class_ap.png: AP50 per class, one bar per run.
"""
import json

import pandas as pd

from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text
from detectron_ext.pipeline import METRICS, PLOTS, REPORTS, all_runs, load_params, run_spec
from detectron_ext.training_log import save_figure


def read_metrics(params) -> pd.DataFrame:
    rows = []
    for run in all_runs(params):
        m = json.loads((METRICS / f"{run}.json").read_text())
        spec = run_spec(params, run)
        row = {"run": run, "detector": m["detector"], "method": spec.method or "-", "phase": m["phase"],
               "iterations": m["iterations"],
               "mAP50": m["mAP50"], "mAP50_old": m["mAP50_old"], "mAP50_new": m["mAP50_new"], "AP": m["AP"]}
        row.update(m["AP50_per_class"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def incremental_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: the joint GFL run(s) (upper bound), then every incremental run; the paper's columns."""
    joint = df[(df["phase"] == "joint") & (df["detector"] == "gfl")].assign(method="joint")
    rows = pd.concat([joint, df[df["method"] != "-"]])
    table = rows[["method", "phase", "mAP50_old", "mAP50_new", "mAP50"]]
    return table.rename(columns={"mAP50_old": "mAP_old", "mAP50_new": "mAP_new", "mAP50": "mAP_all"})


def plot_per_class(df: pd.DataFrame, classes, png_path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(classes)), 4))
    df[classes].T.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel("AP50 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, png_path)


def main():
    params = load_params()
    df = read_metrics(params)
    where = f"dataset {params['dataset']}, scale {params['scale']}"
    atomic_write_text(REPORTS / "results.md",
                      f"# Results: {where} (AP in %, pycocotools)\n\n" + df.to_markdown(floatfmt=".1f") + "\n")
    atomic_write_json(REPORTS / "results.json", json.loads(df.to_json(orient="index")))
    table = incremental_table(df)
    atomic_write_text(REPORTS / "incremental.md",
                      f"# Class-incremental results: {where} (mAP50 in %, pycocotools)\n\n"
                      + table.to_markdown(floatfmt=".1f") + "\n")
    atomic_write_json(REPORTS / "incremental.json", json.loads(table.to_json(orient="index")))
    classes = [c for c in df.columns if c not in ("detector", "method", "phase", "iterations", "mAP50",
                                                  "mAP50_old", "mAP50_new", "AP")]
    plot_per_class(df, classes, PLOTS / "report" / "per_class_ap.png", f"AP50 per class ({where})")
    print(df[["detector", "method", "phase", "mAP50", "mAP50_old", "mAP50_new", "AP"]].to_string())
    print(table.to_string())


if __name__ == "__main__":
    main()
