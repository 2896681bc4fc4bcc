"""Stage split: the validation images held out of the training set, the class-incremental task sets
(data/splits/*.json: phaseK_train / _val / _test, joint_*) and their statistics (metrics/).

Reads params: seed, validation, dataset, task, datasets.<dataset>.class_groups (or .tasks.<task>),
datasets.<dataset>.validation_by.
"""
import json
from pathlib import PurePosixPath

import pandas as pd

from detectron_ext.data.holdout import VALIDATION_BY, split_off, validation_images
from detectron_ext.data.incremental import box_orientation, incremental_sets, set_statistics
from detectron_ext.file_io import atomic_write_json, atomic_write_text, staged_dir
from pipeline.params import class_groups, dataset_spec, load_params, run_stage
from pipeline.runs import METRICS, PREPARED, SPLITS


def input_report_table(train, test) -> str:
    """What prepare found legal but unusual (data/checks.py input_report), as a markdown section."""
    reports = {part: coco["info"].get("input_report")
               for part, coco in (("train (with the validation images)", train), ("test", test))}
    if not all(reports.values()):
        return ""
    rows = pd.DataFrame({part: {k: (", ".join(f"{m} {n}" for m, n in v.items()) if isinstance(v, dict) else v)
                                for k, v in r.items()} for part, r in reports.items()})
    return "\n## Input checks (legal but worth a look; docs/pipeline.md, \"Data checks\")\n\n" + rows.to_markdown() + "\n"


def orientation_table(train, test) -> str:
    """box_orientation as a markdown section, with a line naming the classes whose orientation shifts."""
    table = box_orientation(train, test)
    shifted = list(table.index[table["shifted"] == "yes"])
    note = (f"\nTrained in one orientation, tested in another: {', '.join(shifted)}. A quarter-turn augmentation "
            "(`-S train.random_rotate90=0.5`) shows the model both.\n" if shifted else "")
    return "\n## Box orientation, training vs test (docs/pipeline.md, \"Data checks\")\n\n" + table.to_markdown() + "\n" + note


def validation_note(val, n_train: int, by: str, params) -> str:
    """Which training images the validation set holds, as a markdown line (whole folders: their names)."""
    folders = sorted({PurePosixPath(i["file_name"]).parts[0] for i in val["images"]}) if by == "folder" else []
    return (f"\nValidation: {len(val['images'])} of the {len(val['images']) + n_train} training images held out "
            f"(by {by}, fraction {params['validation']['fraction']}, seed {params['seed']})"
            + (f": {', '.join(folders)}" if folders else "") + ".\n")


def main():
    params = load_params()
    groups = class_groups(params)
    train = json.loads((PREPARED / "train.json").read_text())
    test = json.loads((PREPARED / "test.json").read_text())
    by = dataset_spec(params).get("validation_by", VALIDATION_BY[0])
    train, val = split_off(train, validation_images(train, params["validation"]["fraction"], params["seed"], by))
    sets = incremental_sets(train, test, groups, val)
    with staged_dir(SPLITS) as staging:  # replaced as a whole: no set of an earlier task survives
        for name, coco in sets.items():
            atomic_write_json(staging / f"{name}.json", coco)
    stats = set_statistics(sets)
    atomic_write_text(METRICS / "split_stats.csv", stats.to_csv(index=False))
    cells = stats.assign(cell=stats["images"].astype(str) + " / " + stats["boxes"].astype(str))
    table = cells.pivot(index="class", columns="set", values="cell").fillna("0 / 0")[list(sets)]
    atomic_write_text(METRICS / "split_stats.md", f"# Images / boxes per class per set ({params['dataset']})\n\n"
                      + table.to_markdown() + "\n" + validation_note(val, len(train["images"]), by, params)
                      + input_report_table(train, test)
                      + orientation_table(sets["joint_train"], sets["joint_test"]))
    print(stats[stats["class"] == "(all)"].to_string(index=False))


if __name__ == "__main__":
    run_stage(main)
