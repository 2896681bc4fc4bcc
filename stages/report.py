"""Stage report: the results tables (reports/) and plots (plots/report/).

Reads params: dataset, task, scale, runs, increments.
- reports/results.{md,json}: every run and every phase of every incremental chain: mAP50
  (all/old/new), AP@[.5:.95] and AP50 per class, each on its own validation or test set (`evaluate.split`).
- reports/incremental.{md,json}: the paper's table, method × mAP_old / mAP_new / mAP_all per phase,
  beside the joint GFL run (the upper bound).
- plots/report/per_class_ap.png: AP50 per class (columns) and run (rows), a table; plots/report/forgetting.png:
  mAP_old of each method over the increment steps (step 0: the teacher on its own classes). The same data,
  one row per run and class / per step and method, in reports/per_class_ap.csv and reports/forgetting.csv:
  the report page's charts (dvc.yaml's top-level `plots`, `dvc plots show` / `dvc plots diff`).
"""
import json

from detectron_ext.file_io import atomic_write_json, atomic_write_text
from pipeline.params import load_params, run_stage
from pipeline.plots import plot_frame, plot_table
from pipeline.report import COLUMNS, forgetting, forgetting_long, incremental_table, per_class_long, read_metrics
from pipeline.runs import PLOTS, REPORTS


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
    plot_table(df[classes], PLOTS / "report" / "per_class_ap.png", f"AP50 per class ({where})", "AP50 (%)")
    atomic_write_text(REPORTS / "per_class_ap.csv", per_class_long(df, classes).to_csv(index=False))
    if params.get("increments"):
        curves = forgetting(df, params)
        plot_frame(curves.rename_axis("increment step"), PLOTS / "report" / "forgetting.png",
                   f"old classes over the increments ({where})", "mAP50 of the old classes (%)", kind="line")
        atomic_write_text(REPORTS / "forgetting.csv", forgetting_long(curves).to_csv(index=False))
    print(df[COLUMNS[1:]].to_string())
    print(table.to_string())


if __name__ == "__main__":
    run_stage(main)
