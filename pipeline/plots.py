"""Figures of the pipeline's reports, written atomically (matplotlib, Agg)."""
from pathlib import Path

import pandas as pd


def save_figure(fig, png_path):
    """Write a matplotlib figure atomically (a killed run leaves no half-written PNG) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    Path(png_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(png_path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(png_path)


def plot_frame(frame: pd.DataFrame, png_path, title, ylabel, kind="bar"):
    """Bars (one group per row, one bar per column) or lines (one per column over the index), 0-100 %."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(frame)), 4))
    if kind == "bar":
        frame.plot.bar(ax=ax, width=0.8)
    else:
        frame.plot(ax=ax, marker="o")
        ax.set_xticks(frame.index)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, png_path)


def plot_table(frame: pd.DataFrame, png_path, title, label):
    """A table of percentages as a heatmap, one row per index entry and one column per column, each cell
    written (blank where missing): readable with any number of runs and classes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    values = frame.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(2.2 + 0.95 * frame.shape[1], 1.2 + 0.32 * frame.shape[0]))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=100, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if v == v:  # not NaN
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white" if v > 60 else "black")
    ax.set_xticks(range(frame.shape[1]), [str(c) for c in frame.columns], rotation=30, ha="left", fontsize=8)
    ax.set_yticks(range(frame.shape[0]), [str(r) for r in frame.index], fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=label, fraction=0.04, pad=0.02)
    save_figure(fig, png_path)
