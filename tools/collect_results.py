"""Collect one run's metrics from several workspaces into one table (markdown + JSON), with pandas.

A workspace is a folder with its own `params.yaml` and `metrics/` (a `dvc exp` workspace or a copy of
the repository run with `python stages/...`). Each row is one entry `WORKSPACE[:RUN]` (RUN defaults to
`--run`): the run's detector / assigner / method, the chosen params keys, then mAP50 old / new / all,
AP and AP50 per class from `WORKSPACE/metrics/RUN.json`. Used for the ablations in
`results/`, where each row is one `dvc exp run -S key=value`:

    python tools/collect_results.py --run sdidd \
        --keys distill.cls_mode distill.reg_mode distill.feat_mode \
        --out results/neu-det-cpu/incremental/ablation /work/ws_a /work/ws_b ...

Rows are listed in the order given; an entry whose metrics file is missing is an error naming it, a
params key a workspace lacks is left empty with a warning (an older workspace), and an assigner's keys
(`assigners.tgfs.*`; `tgfs.*` in older workspaces) are left empty for runs with another assigner (they ignore them).

Replicates: with `--replicates-over train.seed` (a key also given in `--keys`), rows that differ only in
that key are one configuration, and OUT_summary.{md,json} gives each one's mean, sample standard
deviation and count of mAP50 old / new / all and AP, in the order the configurations first appear.
"""
import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectron_ext.file_io import atomic_write_json, atomic_write_text  # noqa: E402
from pipeline.runs import chain_params  # noqa: E402


def lookup(params: dict, dotted: str, where: str):
    """params[a][b]... for 'a.b...'; None (with a warning naming the file) where a workspace lacks it."""
    value = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            print(f"collect_results: {where} has no key {dotted!r}", file=sys.stderr)
            return None
        value = value[part]
    return value


def ignored_by(key: str, assigner: str) -> bool:
    """Whether a run with `assigner` ignores params key `key`: another assigner's section
    (`assigners.NAME.*`, or `tgfs.*` in workspaces older than `assigners`)."""
    parts = key.split(".")
    section = parts[1] if parts[0] == "assigners" and len(parts) > 2 else "tgfs" if parts[0] == "tgfs" else None
    return section is not None and section != assigner


def collect(entries, default_run: str, keys) -> pd.DataFrame:
    rows = []
    for entry in entries:
        ws, _, run = entry.partition(":")
        ws, run = Path(ws), run or default_run
        metrics_file = ws / "metrics" / f"{run}.json"
        if not metrics_file.is_file():
            raise FileNotFoundError(f"{metrics_file}: no metrics for run {run!r} (has it been evaluated?)")
        params = chain_params(yaml.safe_load((ws / "params.yaml").read_text()), run.split("/")[0])  # a variant's own
        m = json.loads(metrics_file.read_text())
        per_class = m.get("AP50_per_class") or m["phases"][str(max(map(int, m["phases"])))]["AP50_per_class"]
        assigner = m.get("assigner", "base")
        shown = {k.split(".")[-1]: None if ignored_by(k, assigner) else lookup(params, k, ws / "params.yaml")
                 for k in keys}
        rows.append({"run": run, "detector": m.get("detector"), "assigner": assigner,
                     "method": m.get("method") or "-", **shown,
                     "mAP_old": m.get("mAP50_old"), "mAP_new": m.get("mAP50_new"), "mAP_all": m["mAP50"],
                     "AP": m["AP"], **per_class, "workspace": ws.name})
    table = pd.DataFrame(rows)  # rows with fewer classes (a teacher) would put later classes after `workspace`
    return table[[c for c in table.columns if c != "workspace"] + ["workspace"]]


SUMMARISED = ["mAP_old", "mAP_new", "mAP_all", "AP"]


def summarise(table: pd.DataFrame, over: str) -> pd.DataFrame:
    """One row per configuration (every descriptive column but `over`): n, then mean and sample std
    (NaN for n = 1) of each SUMMARISED metric; configurations in order of first appearance."""
    first_metric = table.columns.get_loc("mAP_old")
    config = [c for c in table.columns[:first_metric] if c != over]
    keyed = table[config].apply(lambda col: col.map(lambda v: "" if pd.isna(v) else str(v)))  # NaN groups too
    rows = []
    for _, group in table.groupby([keyed[c] for c in config], sort=False):  # in order of first appearance
        row = dict(zip(config, group[config].iloc[0]))
        row["n"] = len(group)
        for m in SUMMARISED:
            values = pd.to_numeric(group[m], errors="coerce")
            row[m], row[m + "_std"] = values.mean(), values.std(ddof=1)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame) -> str:
    """mean ± std per metric (mean alone for one replicate)."""
    shown = summary.drop(columns=[c for m in SUMMARISED for c in (m, m + "_std")]).copy()
    for m in SUMMARISED:
        shown[m] = [f"{mu:.1f}" if pd.isna(sd) else f"{mu:.1f} ± {sd:.1f}"
                    for mu, sd in zip(summary[m], summary[m + "_std"])]
    return shown.astype(object).where(shown.notna(), "–").to_markdown(index=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspaces", nargs="+", metavar="WORKSPACE[:RUN]")
    ap.add_argument("--run", default="", help="run or chain name (metrics/RUN.json) where an entry names none")
    ap.add_argument("--keys", nargs="*", default=[], help="dotted params keys shown as columns")
    ap.add_argument("--replicates-over", default="", metavar="KEY",
                    help="a --keys entry (e.g. train.seed): also write OUT_summary with mean ± std per configuration")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", required=True, help="output path without suffix: writes OUT.md and OUT.json")
    args = ap.parse_args(argv)
    table = collect(args.workspaces, args.run, args.keys)
    out = Path(args.out)
    title = args.title or "mAP50 in % (pycocotools 101-point), one row per workspace"
    atomic_write_text(out.with_suffix(".md"), f"# {title}\n\n" + table.to_markdown(index=False, floatfmt=".1f") + "\n")
    atomic_write_json(out.with_suffix(".json"), json.loads(table.to_json(orient="records")))
    print(table.drop(columns="workspace").to_string(index=False))
    if args.replicates_over:
        if args.replicates_over not in args.keys:
            ap.error(f"--replicates-over {args.replicates_over} must be one of --keys")
        summary = summarise(table.drop(columns="workspace"), args.replicates_over.split(".")[-1])
        stem = out.with_name(out.name + "_summary")
        atomic_write_text(stem.with_suffix(".md"), f"# {title}: mean ± sample std over "
                          f"{args.replicates_over}\n\n" + summary_markdown(summary) + "\n")
        atomic_write_json(stem.with_suffix(".json"), json.loads(summary.to_json(orient="records")))
        print(summary_markdown(summary))


if __name__ == "__main__":
    main()
