"""Overlay the distillation traces of several incremental runs (the anchors CR / BR / FR, or ERD's two
parts, select per image every iteration, and FR's λ where FR is on): one PNG, and a table of each run's
means over its last iterations.

Each entry is LABEL=PATH, PATH a `distill_trace.csv` written by the increment stage
(`plots/NAME/phaseK/distill_trace.csv`) or a training log (`train_log.csv`: the losses every 20
iterations; tabled, not plotted). Used for the learnable-vs-fixed λ comparison in `results/`:

    python tools/compare_traces.py --out results/neu-det-cpu/incremental/fr_lambda \
        learnable=WS1/plots/sdidd/phase1/distill_trace.csv fixed-0.5=WS2/... fixed-0.8=WS3/...

Writes OUT.png (λ where traced, and each part's selected anchors per image, a rolling mean of `--window`
iterations) and OUT.md / OUT.json (per run: every traced column averaged over the last `--last` iterations).
"""
import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectron_ext.file_io import atomic_write_json, atomic_write_text  # noqa: E402
from pipeline.plots import save_figure  # noqa: E402


def read_traces(entries) -> dict:
    traces = {}
    for entry in entries:
        label, sep, path = entry.partition("=")
        if not sep or not label:
            raise SystemExit(f"compare_traces: {entry!r} is not LABEL=PATH")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such trace or training log (has the increment stage run?)")
        df = pd.read_csv(path)
        if "iteration" not in df or not any(c.startswith(("selected_", "loss_")) for c in df):
            raise ValueError(f"{path}: not a distillation trace or training log (needs columns iteration and "
                             f"selected_* or loss_*)")
        traces[label] = df.drop_duplicates("iteration", keep="last").sort_values("iteration")
    return traces


def summary(traces: dict, last: int) -> pd.DataFrame:
    """Per run: the mean of every traced column over the rows of its last `last` iterations."""
    rows = {label: df[df["iteration"] > df["iteration"].max() - last].drop(columns="iteration").mean()
            for label, df in traces.items()}
    return pd.DataFrame(rows).T.rename_axis("run")


def plot(traces: dict, png_path, window: int):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = sorted({c for df in traces.values() for c in df if c == "fr_lambda" or c.startswith("selected_")})
    if not columns:  # training logs alone: nothing selected to plot
        return
    fig, axes = plt.subplots(len(columns), 1, figsize=(7, 2.5 * len(columns)), sharex=True, squeeze=False)
    for ax, column in zip(axes[:, 0], columns):
        for i, (label, df) in enumerate(traces.items()):
            if column in df:
                values = df[column] if column == "fr_lambda" else df[column].rolling(window, min_periods=1).mean()
                ax.plot(df["iteration"], values, color=f"C{i}", label=label)
        ax.set_ylabel("FR λ" if column == "fr_lambda" else
                      f"{column.removeprefix('selected_')}: anchors / image\n(mean of {window} it.)")
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("iteration")
    save_figure(fig, png_path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+", metavar="LABEL=PATH")
    ap.add_argument("--out", required=True, help="output path without suffix: writes OUT.png, OUT.md, OUT.json")
    ap.add_argument("--window", type=int, default=20, help="rolling mean of the plotted counts")
    ap.add_argument("--last", type=int, default=100, help="iterations averaged in the table")
    args = ap.parse_args(argv)
    traces = read_traces(args.traces)
    out = Path(args.out)
    plot(traces, out.with_suffix(".png"), args.window)  # (no PNG for training logs alone)
    table = summary(traces, args.last)
    title = f"# Means over the last {args.last} iterations\n\n"
    atomic_write_text(out.with_suffix(".md"), title + table.to_markdown(floatfmt=".3f") + "\n")
    atomic_write_json(out.with_suffix(".json"), json.loads(table.to_json(orient="index")))
    print(table.to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()
