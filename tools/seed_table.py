"""Mean ± std over training seeds of the incremental runs kept in a results folder.

Each run is a folder `<variant>_s<seed>/` holding the `metrics.json` that `stages/increment.py` wrote
(`metrics/<chain>.json`). Prints a markdown table, one row per variant: seeds, mAP50 old / new / all
(mean ± sample std; the single value where there is one seed) and AP50 per class (mean).

Usage: python tools/seed_table.py results/neu-det-lite/incremental [--variants finetune,sdidd,...]
(--variants: only those rows, in that order)
"""
import argparse
import json
import re
from pathlib import Path

import pandas as pd

RUN = re.compile(r"^(?P<variant>.+)_s(?P<seed>\d+)$")


def read_runs(folder) -> pd.DataFrame:
    rows = []
    for path in sorted(Path(folder).glob("*/metrics.json")):
        m = RUN.match(path.parent.name)
        if not m:
            continue
        metrics = json.loads(path.read_text())
        rows.append({"variant": m["variant"], "seed": int(m["seed"]), "mAP_old": metrics["mAP50_old"],
                     "mAP_new": metrics["mAP50_new"], "mAP_all": metrics["mAP50"],
                     **{c: v for c, v in metrics["AP50_per_class"].items()}})
    if not rows:
        raise SystemExit(f"{folder}: no <variant>_s<seed>/metrics.json runs")
    return pd.DataFrame(rows)


def seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    def cell(values):
        values = values.dropna()
        return f"{values.mean():.1f}" if len(values) < 2 else f"{values.mean():.1f} ± {values.std():.1f}"

    classes = [c for c in runs.columns if c not in ("variant", "seed", "mAP_old", "mAP_new", "mAP_all")]
    out = runs.groupby("variant", sort=False).agg(
        seeds=("seed", lambda s: ",".join(map(str, sorted(s)))),
        **{k: (k, cell) for k in ("mAP_old", "mAP_new", "mAP_all")},
        **{c: (c, lambda v: f"{v.mean():.1f}") for c in classes})
    return out


def select(table: pd.DataFrame, variants) -> pd.DataFrame:
    """The rows `variants`, in that order; a one-line error names the ones the folder lacks."""
    missing = [v for v in variants if v not in table.index]
    if missing:
        raise SystemExit(f"no runs of variant(s) {', '.join(missing)} (have: {', '.join(table.index)})")
    return table.loc[list(variants)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--variants", type=lambda s: s.split(","), help="comma-separated rows, in order")
    args = parser.parse_args()
    table = seed_table(read_runs(args.folder))
    print((select(table, args.variants) if args.variants else table).to_markdown())
