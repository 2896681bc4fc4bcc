"""The CI check of mAP against committed reference metrics: a pure comparison, printed like
`dvc metrics diff` (reference, current, change) with the tolerance and a verdict per metric."""
import pandas as pd


def compare_to_reference(reference: dict, current: dict, tolerance: dict) -> pd.DataFrame:
    """One row per metric of `tolerance`: it regresses when current < reference − tolerance
    (in mAP points). A metric missing from the current run, or None (NaN), regresses too."""
    rows = []
    for metric, allowed in tolerance.items():
        ref, cur = reference[metric], current.get(metric)
        change = None if cur is None else round(cur - ref, 2)
        ok = change is not None and change >= -float(allowed)
        rows.append({"Metric": metric, "Reference": ref, "Current": cur, "Change": change,
                     "Allowed drop": float(allowed), "Status": "ok" if ok else "REGRESSED"})
    return pd.DataFrame(rows)
