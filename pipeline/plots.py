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
