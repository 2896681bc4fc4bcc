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


def write_training_log(metrics_jsonl, csv_path, png_path=None, title="") -> pd.DataFrame:
    """CSV of iteration, total_loss, loss_*, lr; and a PNG of the same curves when png_path is given."""
    df = read_metrics_jsonl(metrics_jsonl)
    cols = ["iteration"] + [c for c in df.columns if c.startswith("loss") or c in ("total_loss", "lr")]
    df = df[cols].dropna(subset=[c for c in cols if c != "iteration"], how="all")
    atomic_write_text(csv_path, df.to_csv(index=False))
    if png_path is not None:
        plot_training_log(df, png_path, title)
    return df


def plot_training_log(df: pd.DataFrame, png_path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=[3, 1])
    for c in df.columns:
        if c.startswith("loss") or c == "total_loss":
            ax_loss.plot(df["iteration"], df[c], label=c, lw=2 if c == "total_loss" else 1)
    ax_loss.set_ylabel("loss (smoothed by detectron2's writer)")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title(title)
    if "lr" in df:
        ax_lr.plot(df["iteration"], df["lr"], color="black")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("iteration")
    fig.tight_layout()
    Path(png_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(png_path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(png_path)
