"""The result tables of the README and docs/results.md, generated from the runs kept in results/ (never typed).

`results/tables.yaml` lists the tables: each names a folder of runs, the rows (a run prefix and its label),
the split every run must have been scored on, and the rows the others are compared with (paired
differences). A run is a folder `<row>_t<teacher>_s<seed>/` (teacher: one letter, a, b, ...; `<row>_s<seed>/` for
a run without a teacher, the joint model) holding the metrics.json its stage wrote: it must record the split it was scored
on and its provenance (params hash, code commit, teacher checksum; pipeline/provenance.py), or it is refused.

Each table gives per row the runs, the teachers, mAP50 old / new / all as mean ± sample std over the runs
(and, for chains of several increments, mAP_all after each earlier phase),
and for each compared row the paired difference of mAP_all (the same teacher and seed in both rows; runs
without a teacher, such as joint models, pair by seed with a compared row without one), its mean ± std and
count, and its mean on each teacher where the pairs span several. A page holds a table between
`<!-- results-table: ID -->` and `<!-- /results-table: ID -->`: docs/results.md every table, the README the headline.

`leave_out: [ROW, ...]` (optional): rows of the folder the table does not show (a headline without the superseded
settings); every other run of the folder must be a listed row. `joint_from: FOLDER` (optional) adds FOLDER's joint runs (`<row>_s<seed>/`, rows the table lists): a model of
every class on the same images is the same for every task, so a 2+2+2 table reuses the 3+3 folder's joint model,
its mAP old / new regrouped from its AP50 per class by the task the table's students ran (their metrics'
dataset and task, whose class groups params.yaml defines: new = the last group, old = the others).

Usage: python tools/results_tables.py [--tables results/tables.yaml] [--pages README.md docs/results.md] [--check]
  (writes each table into the pages that hold its block, every table on one page at least; --check: exit 1,
  naming the pages, where a page differs)
"""
import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from detectron_ext.evaluation import summarize  # noqa: E402
from detectron_ext.file_io import atomic_write_text  # noqa: E402
from pipeline.params import class_groups  # noqa: E402

RUN = re.compile(r"^(?P<row>.+?)(?:_t(?P<teacher>[a-z]))?_s(?P<seed>\d+)$")  # teachers: one letter each
KEYS = {"mAP_old": "mAP50_old", "mAP_new": "mAP50_new", "mAP_all": "mAP50"}


class TableError(ValueError):
    """A run or table the generator refuses; the message names the file."""


def read_runs(folder: Path, split: str) -> pd.DataFrame:
    rows = []
    for path in sorted(folder.glob("*/metrics.json")):
        m = RUN.match(path.parent.name)
        if not m:
            continue
        metrics = json.loads(path.read_text())
        prov = metrics.get("provenance") or {}
        if metrics.get("split") != split:
            raise TableError(f"{path}: scored on the {metrics.get('split', 'unrecorded')} split, the table reads {split}")
        if not prov.get("params_sha256") or prov.get("code_commit", "unknown") == "unknown":
            raise TableError(f"{path}: no provenance (params hash, code commit): not a run of a table")
        teacher_sha = metrics.get("chain_teacher_sha256") or prov.get("teacher_sha256")
        if prov.get("teacher") and not teacher_sha:
            raise TableError(f"{path}: a student without its teacher's checksum")
        commit = prov["code_commit"]
        rows.append({"row": m["row"], "teacher": m["teacher"] or "-", "seed": int(m["seed"]),
                     "teacher_sha256": (teacher_sha or "")[:8],
                     "commit": commit[:7] + ("+dirty" if commit.endswith("+dirty") else ""),
                     "task": (metrics.get("dataset"), str(metrics.get("task", "default"))),
                     "per_class": metrics.get("AP50_per_class"), "path": str(path),
                     **{k: metrics[v] for k, v in KEYS.items()},
                     **{f"mAP_all after phase {k}": v["mAP50"]
                        for k, v in sorted((metrics.get("phases") or {}).items(), key=lambda kv: int(kv[0]))[:-1]}})
    if not rows:
        raise TableError(f"{folder}: no <row>_t<teacher>_s<seed>/metrics.json runs")
    return pd.DataFrame(rows)


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    return f"{values.mean():.1f}" if len(values) < 2 else f"{values.mean():.1f} ± {values.std():.1f}"


def paired(runs: pd.DataFrame, row: str, base: str) -> str:
    """mAP_all of `row` minus `base` on the same teacher and seed: mean ± std (n), then, with runs on
    several teachers, the mean difference on each teacher ("a +1.5, b -0.3")."""
    a = runs[runs.row == row].set_index(["teacher", "seed"])["mAP_all"]
    b = runs[runs.row == base].set_index(["teacher", "seed"])["mAP_all"]
    diff = (a - b).dropna()
    if diff.empty:
        return "-"
    text = f"{diff.mean():+.1f}" if len(diff) < 2 else f"{diff.mean():+.1f} ± {diff.std():.1f}"
    per_teacher = diff.groupby(level="teacher").mean()
    if len(per_teacher) < 2:
        return f"{text} ({len(diff)})"
    return f"{text} ({len(diff)}; " + ", ".join(f"{t} {d:+.1f}" for t, d in per_teacher.items()) + ")"


def regrouped_joint(runs: pd.DataFrame, folder: Path, table: dict, root: Path) -> pd.DataFrame:
    """`table['joint_from']`'s joint runs with mAP old / new regrouped by the task `runs`' students ran."""
    tasks = set(runs[runs.teacher != "-"].task)
    if len(tasks) != 1:
        raise TableError(f"{folder}: joint_from needs students of one task (found {sorted(map(str, tasks))})")
    (dataset, task), = tasks
    params = yaml.safe_load((root / "params.yaml").read_text())
    try:
        groups = class_groups({**params, "dataset": dataset, "task": task})
    except (SystemExit, KeyError) as e:
        raise TableError(f"{root / 'params.yaml'}: no class groups for {dataset} task {task}: {e}") from None
    joint = read_runs(root / table["joint_from"], table["split"])
    joint = joint[(joint.teacher == "-") & joint.row.isin(list(table["rows"]))].copy()
    new = set(groups[-1])
    for i, run in joint.iterrows():
        ap = {c: float("nan") if v is None else v for c, v in (run.per_class or {}).items()}  # JSON null: no GT
        if set(ap) != {c for g in groups for c in g}:
            raise TableError(f"{run.path}: AP50 per class for {sorted(ap)}, not the classes of {dataset} task {task}")
        scores = summarize(ap, float("nan"), [c for c in ap if c not in new], [c for c in ap if c in new])
        joint.at[i, "mAP_old"], joint.at[i, "mAP_new"] = scores["mAP50_old"], scores["mAP50_new"]
    return joint


def render(table: dict, root: Path = REPO) -> str:
    folder = root / table["runs"]
    runs = read_runs(folder, table["split"])
    if table.get("joint_from"):
        runs = pd.concat([runs, regrouped_joint(runs, folder, table, root)], ignore_index=True)
    unknown = sorted(set(runs.row) - set(table["rows"]) - set(table.get("leave_out", [])))
    if unknown:
        raise TableError(f"{folder}: runs of rows the table does not list: {', '.join(unknown)}")
    runs = runs[runs.row.isin(list(table["rows"]))]
    compare = table.get("compare", [])
    steps = [c for c in runs.columns if c.startswith("mAP_all after phase")]  # a chain of several increments
    lines = []
    for row, label in table["rows"].items():
        sub = runs[runs.row == row]
        if sub.empty:
            raise TableError(f"{folder}: no runs of row {row!r}")
        teachers = sorted(set(sub.teacher) - {"-"})
        cells = {"method": label, "runs": len(sub), "teachers": ", ".join(teachers) or "-",
                 **{k: _cell(sub[k]) for k in KEYS}, **{k: _cell(sub[k]) for k in steps}}
        for base in compare:  # a run without a teacher pairs with the base's run of its seed without one
            base_teachers = set(runs[runs.row == base].teacher) - {"-"}
            cells[f"Δ mAP_all vs `{base}` (paired, n)"] = "" if row == base or (not teachers and base_teachers) \
                else paired(runs, row, base)
        lines.append(cells)
    out = pd.DataFrame(lines).to_markdown(index=False, disable_numparse=True)  # "25.0" stays "25.0"
    students = runs[runs.teacher != "-"]
    checksums = students.groupby("teacher").teacher_sha256.agg(lambda s: ", ".join(sorted(set(s))))
    several = [t for t, c in checksums.items() if "," in c]
    if several:  # a label is one teacher: runs of a retrained one are not paired with the first one's
        raise TableError(f"{folder}: teacher {several[0]} names several teachers (sha256 {checksums[several[0]]})")
    teachers = "; ".join(f"{t}: sha256 {c}…" for t, c in checksums.items())
    commits = ", ".join(sorted(set(runs.commit)))
    borrowed = f" and `{table['joint_from']}`'s joint runs, old / new regrouped by task" if table.get("joint_from") else ""
    note = (f"\n\n<sub>Generated by `python tools/results_tables.py` from `{table['runs']}`{borrowed} "
            f"({table['split']} split; mean ± sample std over runs{'; teachers ' + teachers if teachers else ''}; "
            f"code {commits}).</sub>")
    return out + note


def replace_blocks(text: str, blocks: dict, where: str) -> tuple:
    """The blocks `text` holds, replaced by the generated tables; returns (new text, keys replaced)."""
    found = re.findall(r"<!-- results-table: (\S+) -->", text)
    unknown = sorted(set(found) - set(blocks))
    if unknown:
        raise TableError(f"{where}: table(s) {', '.join(unknown)} not listed in results/tables.yaml")
    for key in found:
        pattern = re.compile(rf"(<!-- results-table: {re.escape(key)} -->\n)(?:.*?\n)?(<!-- /results-table: "
                             rf"{re.escape(key)} -->)", re.S)
        if not pattern.search(text):
            raise TableError(f"{where}: block <!-- results-table: {key} --> has no <!-- /results-table: {key} -->")
        text = pattern.sub(lambda m: m.group(1) + blocks[key] + "\n" + m.group(2), text)
    return text, set(found)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=str(REPO / "results" / "tables.yaml"))
    ap.add_argument("--pages", nargs="+", default=[str(REPO / "README.md"), str(REPO / "docs" / "results.md")])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    try:
        tables = yaml.safe_load(Path(args.tables).read_text()) or {}
        blocks = {key: render(table, Path(args.tables).resolve().parent.parent) for key, table in tables.items()}
        pages, placed = {}, set()
        for page in map(Path, args.pages):
            old = page.read_text()
            new, keys = replace_blocks(old, blocks, str(page))
            pages[page], placed = (old, new), placed | keys
        missing = sorted(set(blocks) - placed)
        if missing:
            raise TableError(f"table(s) {', '.join(missing)} of {args.tables} are on none of {', '.join(args.pages)}")
    except (TableError, OSError, KeyError) as e:
        sys.exit(f"results_tables: {e}")
    stale = [str(page) for page, (old, new) in pages.items() if old != new]
    if args.check:
        if stale:
            sys.exit(f"results_tables: {', '.join(stale)} not what {args.tables} generates: run python tools/results_tables.py")
        print(f"results_tables: {len(blocks)} table(s) up to date")
        return
    for page, (old, new) in pages.items():
        if old != new:
            atomic_write_text(page, new)
    print(f"results_tables: {len(blocks)} table(s) in {', '.join(args.pages)}; rewritten: {', '.join(stale) or 'none'}")


if __name__ == "__main__":
    main()
