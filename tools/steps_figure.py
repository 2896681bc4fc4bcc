"""The first classes' mAP over the steps of a multi-step task (2+2+2), per method, from a results folder: the
forgetting chart beside a results table (tools/results_tables.py reads the same folders).

    python tools/steps_figure.py results/neu-det-lite/validation-2+2+2 --rows sdidd erd finetune global_erdbox

Each chain run `<row>_t<teacher>_s<seed>/metrics.json` gives one curve: step 0 its teacher
(`gfl_teacher_<teacher>/metrics.json` in the same folder), step K its phase K model, each scored as the mean
AP50 over the teacher's classes (a fixed set, so a fall is forgetting; `--metric mAP50`: every class seen so
far). A method's line is the mean over its runs. Writes FOLDER/steps_<metric>.png and .csv (mean, sample std
and count per step).
"""
import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
from detectron_ext.evaluation import nanmean  # noqa: E402
from detectron_ext.file_io import atomic_write_text  # noqa: E402
from pipeline.plots import plot_frame  # noqa: E402
from results_tables import RUN  # noqa: E402


def curves(folder: Path, rows, metric: str) -> pd.DataFrame:
    """One row per (method, run, step) with the metric's value."""
    out = []
    for path in sorted(folder.glob("*/metrics.json")):
        m = RUN.match(path.parent.name)
        if not m or m["row"] not in rows or not m["teacher"]:
            continue
        phases = json.loads(path.read_text()).get("phases")
        if not phases:
            raise SystemExit(f"steps_figure: {path}: no `phases` (not a chain run)")
        teacher = folder / f"gfl_teacher_{m['teacher']}" / "metrics.json"
        if not teacher.is_file():
            raise SystemExit(f"steps_figure: {teacher}: missing (step 0 of {path.parent.name})")
        first = json.loads(teacher.read_text())
        steps = {0: first["mAP50"]}
        for k, v in phases.items():
            ap = {c: float("nan") if a is None else a for c, a in v["AP50_per_class"].items()}  # null: no GT
            steps[int(k)] = v["mAP50"] if metric == "mAP50" else nanmean([ap[c] for c in first["AP50_per_class"]])
        out += [{"method": m["row"], "run": path.parent.name, "step": s, metric: v} for s, v in steps.items()]
    if not out:
        raise SystemExit(f"steps_figure: {folder}: no runs of {', '.join(rows)}")
    return pd.DataFrame(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rows", nargs="+", required=True, help="run prefixes (methods), in the legend's order")
    ap.add_argument("--metric", default="first", choices=["first", "mAP50"])
    args = ap.parse_args(argv)
    long = curves(args.folder, args.rows, args.metric)
    stats = long.groupby(["method", "step"])[args.metric].agg(["mean", "std", "count"]).round(2)
    atomic_write_text(args.folder / f"steps_{args.metric}.csv", stats.to_csv())
    frame = stats["mean"].unstack("method")[[r for r in args.rows if r in set(long.method)]]
    runs = long.groupby("method").run.nunique()
    frame.columns = [f"{c} ({runs[c]} runs)" for c in frame.columns]
    what = "mAP50 of the teacher's classes" if args.metric == "first" else "mAP50 of every class seen"
    plot_frame(frame, args.folder / f"steps_{args.metric}.png",
               f"{args.folder.name}: mean over runs; step 0 = the teacher", f"{what} (%)", kind="line")
    print(stats.to_string())


if __name__ == "__main__":
    main()
