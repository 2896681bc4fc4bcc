"""Mean ± std over training seeds of the incremental runs kept in a results folder.

Each run is a folder `<variant>_s<seed>/` holding the `metrics.json` that `stages/increment.py` wrote
(`metrics/<chain>.json`). Prints a markdown table, one row per variant: seeds, mAP50 old / new / all
(mean ± sample std; the single value where there is one seed) and AP50 per class (mean).

Usage: python tools/seed_table.py results/neu-det-lite/incremental
"""
import json
import re
import sys
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(seed_table(read_runs(sys.argv[1])).to_markdown())
