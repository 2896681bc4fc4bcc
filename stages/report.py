"""Stage report: one table of every run's metrics (reports/results.{md,json}).

Reads params: runs, dataset, scale. Rows: runs; columns: mAP50 (all/old/new), AP@[.5:.95] and AP50
per class, as evaluated on each run's own test set.
"""
import json

import pandas as pd

from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text
from detectron_ext.pipeline import METRICS, REPORTS, all_runs, load_params


def main():
    params = load_params()
    rows = []
    for run in all_runs(params):
        m = json.loads((METRICS / f"{run}.json").read_text())
        row = {"run": run, "detector": m["detector"], "method": m.get("method") or "-", "phase": m["phase"],
               "iterations": m["iterations"],
               "mAP50": m["mAP50"], "mAP50_old": m["mAP50_old"], "mAP50_new": m["mAP50_new"], "AP": m["AP"]}
        row.update(m["AP50_per_class"])
        rows.append(row)
    df = pd.DataFrame(rows).set_index("run")
    title = f"# Results: dataset {params['dataset']}, scale {params['scale']} (AP in %, pycocotools)\n\n"
    atomic_write_text(REPORTS / "results.md", title + df.to_markdown(floatfmt=".1f") + "\n")
    atomic_write_json(REPORTS / "results.json", json.loads(df.to_json(orient="index")))
    print(df[["detector", "method", "phase", "mAP50", "mAP50_old", "mAP50_new", "AP"]].to_string())


if __name__ == "__main__":
    main()
