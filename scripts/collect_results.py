"""Collect one run's metrics from several workspaces into one table (markdown + JSON), with pandas.

A workspace is a folder with its own `params.yaml` and `metrics/` (a `dvc exp` workspace or a copy of
the repository run with `python stages/...`). Each row is one entry `WORKSPACE[:RUN]` (RUN defaults to
`--run`): the run's detector / assigner / method, the chosen params keys, then mAP50 old / new / all,
AP and AP50 per class from `WORKSPACE/metrics/RUN.json`. Used for the ablations in
`results/`, where each row is one `dvc exp run -S key=value`:

    python scripts/collect_results.py --run sdidd \
        --keys distill.cls_mode distill.reg_mode distill.feat_mode \
        --out results/neu-det-cpu/incremental/ablation /work/ws_a /work/ws_b ...

Rows are listed in the order given; an entry whose metrics file is missing is an error naming it, a
params key a workspace lacks is left empty with a warning (an older workspace, a key another run ignores).
"""
import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text  # noqa: E402


def lookup(params: dict, dotted: str, where: str):
    """params[a][b]... for 'a.b...'; None (with a warning naming the file) where a workspace lacks it."""
    value = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            print(f"collect_results: {where} has no key {dotted!r}", file=sys.stderr)
            return None
        value = value[part]
    return value


def collect(entries, default_run: str, keys) -> pd.DataFrame:
    rows = []
    for entry in entries:
        ws, _, run = entry.partition(":")
        ws, run = Path(ws), run or default_run
        metrics_file = ws / "metrics" / f"{run}.json"
        if not metrics_file.is_file():
            raise FileNotFoundError(f"{metrics_file}: no metrics for run {run!r} (has it been evaluated?)")
        params = yaml.safe_load((ws / "params.yaml").read_text())
        m = json.loads(metrics_file.read_text())
        per_class = m.get("AP50_per_class") or m["phases"][str(max(map(int, m["phases"])))]["AP50_per_class"]
        rows.append({"run": run, "detector": m.get("detector"), "assigner": m.get("assigner", "base"),
                     "method": m.get("method") or "-", **{k.split(".")[-1]: lookup(params, k, ws / "params.yaml") for k in keys},
                     "mAP_old": m.get("mAP50_old"), "mAP_new": m.get("mAP50_new"), "mAP_all": m["mAP50"],
                     "AP": m["AP"], **per_class, "workspace": ws.name})
    table = pd.DataFrame(rows)  # rows with fewer classes (a teacher) would put later classes after `workspace`
    return table[[c for c in table.columns if c != "workspace"] + ["workspace"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspaces", nargs="+", metavar="WORKSPACE[:RUN]")
    ap.add_argument("--run", default="", help="run or chain name (metrics/RUN.json) where an entry names none")
    ap.add_argument("--keys", nargs="*", default=[], help="dotted params keys shown as columns")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", required=True, help="output path without suffix: writes OUT.md and OUT.json")
    args = ap.parse_args(argv)
    table = collect(args.workspaces, args.run, args.keys)
    out = Path(args.out)
    title = args.title or "mAP50 in % (pycocotools 101-point), one row per workspace"
    atomic_write_text(out.with_suffix(".md"), f"# {title}\n\n" + table.to_markdown(index=False, floatfmt=".1f") + "\n")
    atomic_write_json(out.with_suffix(".json"), json.loads(table.to_json(orient="records")))
    print(table.drop(columns="workspace").to_string(index=False))


if __name__ == "__main__":
    main()
