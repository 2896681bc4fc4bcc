"""detectron2's JSON-lines metrics.json -> a CSV of losses and learning rate per iteration (DVC plots)."""
import json
from pathlib import Path

import pandas as pd

from .data.coco_format import atomic_write_text


def read_metrics_jsonl(path) -> pd.DataFrame:
    rows = []
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill
    df = pd.DataFrame(rows)
    if df.empty or "iteration" not in df:
        return pd.DataFrame(columns=["iteration"])
    # a resumed run logs some iterations twice: keep the last record of each
    return df.drop_duplicates("iteration", keep="last").sort_values("iteration")


def write_training_log(metrics_jsonl, csv_path) -> pd.DataFrame:
    df = read_metrics_jsonl(metrics_jsonl)
    cols = ["iteration"] + [c for c in df.columns if c.startswith("loss") or c in ("total_loss", "lr")]
    df = df[cols].dropna(subset=[c for c in cols if c != "iteration"], how="all")
    atomic_write_text(csv_path, df.to_csv(index=False))
    return df
