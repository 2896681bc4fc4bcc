"""detectron2's JSON-lines metrics.json -> a CSV of losses and learning rate per iteration (DVC plots)."""
import json
from pathlib import Path

import pandas as pd

from detectron_ext.file_io import atomic_write_text

from .plots import save_figure


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
    """CSV of iteration, total_loss, loss_*, lr (and TGFS's share of positives per level, tgfs/pos_*);
    and a PNG of the same curves when png_path is given."""
    df = read_metrics_jsonl(metrics_jsonl)
    cols = ["iteration"] + [c for c in df.columns
                            if c.startswith(("loss", "tgfs/")) or c in ("total_loss", "lr")]
    df = df[cols].dropna(subset=[c for c in cols if c != "iteration"], how="all")
    atomic_write_text(csv_path, df.to_csv(index=False))
    if png_path is not None:
        plot_training_log(df, png_path, title)
    return df


def plot_training_log(df: pd.DataFrame, png_path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = [c for c in df.columns if c.startswith("tgfs/pos_")]
    fig, axes = plt.subplots(3 if shares else 2, 1, figsize=(7, 8 if shares else 6), sharex=True,
                             height_ratios=[3, 1, 1.5] if shares else [3, 1])
    ax_loss, ax_lr = axes[0], axes[1]
    for c in df.columns:
        if c.startswith("loss") or c == "total_loss":
            ax_loss.plot(df["iteration"], df[c], label=c, lw=2 if c == "total_loss" else 1)
    ax_loss.set_ylabel("loss (smoothed by detectron2's writer)")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title(title)
    if "lr" in df:
        ax_lr.plot(df["iteration"], df["lr"], color="black")
    ax_lr.set_ylabel("learning rate")
    if shares:  # TGFS: where the positives are, per level (after the cold start)
        for c in shares:
            axes[2].plot(df["iteration"], df[c], label=c.replace("tgfs/pos_", ""), lw=1)
        axes[2].set_ylabel("TGFS positives\nshare per level")
        axes[2].legend(fontsize=8, ncol=len(shares))
    axes[-1].set_xlabel("iteration")
    save_figure(fig, png_path)


def write_distill_trace(trace_csv, csv_path, png_path, title="") -> pd.DataFrame:
    """The per-iteration distillation trace (FR's λ, anchors selected per image by CR/BR/FR) as a
    clean CSV (one row per iteration, the last of a resumed one) and a PNG."""
    trace_csv = Path(trace_csv)
    df = pd.read_csv(trace_csv) if trace_csv.exists() else pd.DataFrame(columns=["iteration"])
    df = df.drop_duplicates("iteration", keep="last").sort_values("iteration")
    atomic_write_text(csv_path, df.to_csv(index=False))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [c for c in df.columns if c.startswith("selected_")]
    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    if "fr_lambda" in df:
        axes[0].plot(df["iteration"], df["fr_lambda"], color="black")
    axes[0].set_ylabel("FR λ")
    axes[0].set_title(title)
    for c in counts:
        axes[1].plot(df["iteration"], df[c], label=c.replace("selected_", ""), lw=1)
    axes[1].set_ylabel("anchors selected / image")
    axes[1].set_xlabel("iteration")
    if counts:
        axes[1].legend(fontsize=8)
    save_figure(fig, png_path)
    return df
