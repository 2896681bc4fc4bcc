"""The results tables of the report stage: every run and phase, the paper's incremental table, the
old classes' mAP over the increments; and the table of a user's own increments (`defect-il increment
... -o increments/NAME`, each with its report.json)."""
import json
import math
from pathlib import Path

import pandas as pd

from .runs import METRICS, chain_variant, increment_specs

COLUMNS = ["detector", "assigner", "method", "phase", "iterations", "mAP50", "mAP50_old", "mAP50_new", "AP"]


def row(name, m, method="-"):
    return {"run": name, **{k: m.get(k, "base") for k in COLUMNS if k != "method"}, "method": method,
            **m["AP50_per_class"]}


def read_metrics(params) -> pd.DataFrame:
    rows = [row(run, json.loads((METRICS / f"{run}.json").read_text())) for run in params.get("runs", {})]
    for chain in params.get("increments", {}):
        phases = json.loads((METRICS / f"{chain}.json").read_text())["phases"]
        # a variant (a chain with its own `alpha`, `beta` or `distill` keys) under its own name, never its method's
        method = chain if chain_variant(params, chain) else increment_specs(params, chain)[0].method
        rows += [row(f"{chain}/phase{k}", m, method) for k, m in phases.items()]
    return pd.DataFrame(rows).set_index("run")


def incremental_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: the joint GFL run(s) (upper bound), then every phase of every chain; the paper's columns."""
    joint = df[(df["phase"] == "joint") & (df["detector"] == "gfl")]
    joint = joint.assign(method=["joint" if a == "base" else f"joint ({a})" for a in joint["assigner"]])
    table = pd.concat([joint, df[df["method"] != "-"]])[["method", "phase", "mAP50_old", "mAP50_new", "mAP50"]]
    return table.rename(columns={"mAP50_old": "mAP_old", "mAP50_new": "mAP_new", "mAP50": "mAP_all"})


def forgetting(df: pd.DataFrame, params) -> pd.DataFrame:
    """mAP_old per method (columns) and step (rows); step 0 is the teacher's mAP on its classes."""
    curves = {}
    for chain in params.get("increments", {}):
        specs = increment_specs(params, chain)
        steps = {0: df.loc[specs[0].teacher, "mAP50"]}
        steps.update({int(s.phase): df.loc[s.name, "mAP50_old"] for s in specs})
        curves[chain] = pd.Series(steps)
    return pd.DataFrame(curves).rename_axis("step")


def forgetting_long(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves of `forgetting` one row per step and method (the lines of the report page's chart)."""
    long = curves.rename_axis("step").reset_index().melt(id_vars="step", var_name="method", value_name="mAP50_old")
    return long.dropna(subset=["mAP50_old"])[["step", "method", "mAP50_old"]]


def per_class_long(df: pd.DataFrame, classes) -> pd.DataFrame:
    """One row per run and class with its AP50, runs in df's order and classes in `classes`' (absent
    classes dropped): the cells of the report page's table."""
    long = df[classes].rename_axis("run").stack().rename("AP50").rename_axis(["run", "class"]).reset_index()
    return long.dropna(subset=["AP50"])[["run", "class", "AP50"]]


# --- a user's own increments ---------------------------------------------------------------------------------

INCREMENTS = Path("increments")  # docs/commands.md has `defect-il increment MODEL DATA -o increments/NAME` write here
INCREMENT_COLUMNS = ["method", "from", "old classes", "new classes", "training images", "iterations",
                     "new test images", "new test set", "new classes mAP50", "new classes AP50", "old test images",
                     "old test set", "old classes mAP50 before", "old classes mAP50 after", "old classes mAP50 change",
                     "boxes dropped", "dropped per class"]


def read_increments(folder=INCREMENTS) -> list:
    """The report.json of every increment folder directly under `folder` (sorted by name), each with its
    folder's name added as "name"; one that cannot be read is listed with its "error"."""
    reports = []
    for path in sorted(Path(folder).glob("*/report.json")):
        try:
            report = json.loads(path.read_text())
            if not isinstance(report, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            report = {"error": f"{path}: {e}"}
        reports.append({**report, "name": path.parent.name})
    return reports


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _pct(v) -> str:
    return "-" if _missing(v) else f"{float(v):.1f}"


def _count(v) -> str:
    return "-" if _missing(v) else str(int(v))


def _names(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else "-" if v is None else str(v)


def _test_set(t) -> tuple:
    """(images, where) of a report's test set ({"path", "images"}; the new classes' one also "source")."""
    if not isinstance(t, dict):
        return None, "none"
    held_out = str(t.get("source", "")).startswith("held-out")
    return t.get("images"), "held out of DATA" if held_out else str(t.get("path", "?"))


def increments_table(reports: list) -> pd.DataFrame:
    """One row per increment, from report dicts as `defect-il increment` writes them (OUT/report.json, plus
    "name"): the method, the model it started from, its classes, how much it trained on, and the mAP50 of
    its new classes and of its old ones before and after (None where not measured: no old test set).
    Index: the increment's name; columns INCREMENT_COLUMNS (and "error" for a report that could not be read)."""
    rows = {}
    for r in reports:
        (new_images, new_set), (old_images, old_set) = _test_set(r.get("new_test")), _test_set(r.get("old_test"))
        before, after = r.get("old_classes_mAP50_before"), r.get("old_classes_mAP50_after")
        new_ap, dropped = r.get("new_classes_AP50"), r.get("dropped_classes")
        rows[str(r.get("name") or r.get("model") or "?")] = {
            "method": r.get("method"),
            "from": r.get("from"),
            "old classes": _names(r.get("old_classes")),
            "new classes": _names(r.get("new_classes")),
            "training images": r.get("train_images"),
            "iterations": r.get("iterations"),
            "new test images": new_images,
            "new test set": new_set,
            "new classes mAP50": r.get("new_classes_mAP50"),
            "new classes AP50": ", ".join(f"{c} {_pct(v)}" for c, v in new_ap.items()) if new_ap else "-",
            "old test images": old_images,
            "old test set": old_set,
            "old classes mAP50 before": before,
            "old classes mAP50 after": after,
            "old classes mAP50 change": None if _missing(before) or _missing(after) else after - before,
            "boxes dropped": sum(dropped.values()) if isinstance(dropped, dict) else None,
            "dropped per class": ", ".join(f"{c} {n}" for c, n in dropped.items()) if dropped else "-",
            **({"error": r["error"]} if r.get("error") else {}),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    columns = INCREMENT_COLUMNS + (["error"] if "error" in table else [])
    return table.reindex(columns=columns).rename_axis("increment")


def increments_markdown(table: pd.DataFrame) -> str:
    """The increments table as markdown (mAP50 in %, one decimal; "-" where not measured)."""
    if table.empty:
        return ("# Your increments\n\nNone yet: `defect-il increment MODEL DATA -o increments/NAME` trains one "
                "and writes increments/NAME/report.json; `dvc repro user_increments` lists it here.\n")
    shown = table.astype(object).copy()
    for c in ("new classes mAP50", "old classes mAP50 before", "old classes mAP50 after"):
        shown[c] = table[c].map(_pct)
    shown["old classes mAP50 change"] = table["old classes mAP50 change"].map(
        lambda v: "-" if _missing(v) else f"{v:+.1f}")
    for c in ("training images", "iterations", "new test images", "old test images", "boxes dropped"):
        shown[c] = table[c].map(_count)
    shown = shown.map(lambda v: "-" if _missing(v) else v)
    return "# Your increments (increments/*/report.json; mAP50 in %, pycocotools)\n\n" + shown.to_markdown() + "\n"


def increments_page_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The report page's table of the increments, one row per increment and shown column (increment,
    column, value): the few short columns that fit a page (the markdown table has them all)."""
    if table.empty:
        return pd.DataFrame([{"increment": "none yet", "column": "increments", "value": "none yet"}])
    rows = []
    for name, r in table.iterrows():
        before, after = r["old classes mAP50 before"], r["old classes mAP50 after"]
        cells = {"method": r["method"],
                 "from": "-" if _missing(r["from"]) else Path(str(r["from"])).name,
                 "new classes": r["new classes"],
                 "training": f"{_count(r['training images'])} images, {_count(r['iterations'])} it.",
                 "new test": f"{_count(r['new test images'])}, "
                             + ("held out" if r["new test set"] == "held out of DATA" else str(r["new test set"])),
                 "new classes mAP50": _pct(r["new classes mAP50"]),
                 "old classes mAP50": "not measured" if _missing(before) or _missing(after)
                 else f"{_pct(before)} → {_pct(after)}",
                 "boxes dropped": _count(r["boxes dropped"])}
        if "error" in r and not _missing(r["error"]):  # the markdown table has the error itself
            cells = {"method": "unreadable", "from": "report.json"}
        rows += [{"increment": name, "column": c, "value": "-" if _missing(v) else str(v)} for c, v in cells.items()]
    return pd.DataFrame(rows)
