"""Stage split: class-incremental task sets (data/splits/*.json) and their statistics (metrics/).

Reads params: dataset, task, datasets.<dataset>.class_groups (or .tasks.<task>).
"""
import json

from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text
from detectron_ext.data.incremental import incremental_sets, set_statistics
from detectron_ext.pipeline import METRICS, PREPARED, SPLITS, class_groups, load_params


def main():
    params = load_params()
    groups = class_groups(params)
    train = json.loads((PREPARED / "train.json").read_text())
    test = json.loads((PREPARED / "test.json").read_text())
    sets = incremental_sets(train, test, groups)
    for name, coco in sets.items():
        atomic_write_json(SPLITS / f"{name}.json", coco)
    stats = set_statistics(sets)
    atomic_write_text(METRICS / "split_stats.csv", stats.to_csv(index=False))
    cells = stats.assign(cell=stats["images"].astype(str) + " / " + stats["boxes"].astype(str))
    table = cells.pivot(index="class", columns="set", values="cell").fillna("0 / 0")[list(sets)]
    atomic_write_text(METRICS / "split_stats.md", f"# Images / boxes per class per set ({params['dataset']})\n\n"
                      + table.to_markdown() + "\n")
    print(stats[stats["class"] == "(all)"].to_string(index=False))


if __name__ == "__main__":
    main()
