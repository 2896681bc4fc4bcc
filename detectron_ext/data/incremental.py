"""Class-incremental task sets from ordered class groups (pure functions on COCO dicts).

Global class order = the groups concatenated; category id = position in that order + 1, so a
model of phase k has channels 0..seen_k-1 and the old classes keep their channel when new ones
are appended. Phase k:
  train: images holding at least one box of group k, with only group k's boxes;
  test:  every test image, with the boxes of all classes seen so far (groups 0..k);
  val:   the same from the validation images (carved from the training images, data/holdout.py).
Joint: every training image with all classes; every test (validation) image with all classes.
"""
import copy

import pandas as pd

from .errors import DatasetError


def class_order(class_groups, dataset_classes, source="params.yaml"):
    flat = [c for group in class_groups for c in group]
    if not class_groups or any(len(g) == 0 for g in class_groups):
        raise DatasetError(source, "class_groups must be a non-empty list of non-empty class lists")
    unknown = [c for c in flat if c not in dataset_classes]
    if unknown:
        raise DatasetError(source, f"unknown class(es) in class_groups: {unknown} "
                                   f"(dataset classes: {dataset_classes})")
    dup = sorted({c for c in flat if flat.count(c) > 1})
    if dup:
        raise DatasetError(source, f"class(es) listed in more than one group: {dup}")
    return flat


def _subset(coco, order, keep_classes, keep_image):
    """Remap categories to `order`, keep boxes of keep_classes, images where keep_image(names)."""
    old_names = {c["id"]: c["name"] for c in coco["categories"]}
    new_id = {name: i + 1 for i, name in enumerate(order)}
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    out = {"info": copy.deepcopy(coco.get("info", {})), "images": [], "annotations": [],
           "categories": [{"id": new_id[n], "name": n} for n in order]}
    for img in coco["images"]:
        anns = by_image.get(img["id"], [])
        names = {old_names[a["category_id"]] for a in anns}
        if not keep_image(names):
            continue
        out["images"].append(dict(img))
        for a in anns:
            name = old_names[a["category_id"]]
            if name in keep_classes:
                b = dict(a, id=len(out["annotations"]) + 1, category_id=new_id[name])
                out["annotations"].append(b)
    return out


def incremental_sets(train, test, class_groups, val=None):
    """Returns {set_name: coco}: phase{k}_train / phase{k}_test (and phase{k}_val with `val`) for every
    group, joint_train / joint_test (joint_val)."""
    dataset_classes = [c["name"] for c in sorted(train["categories"], key=lambda c: c["id"])]
    order = class_order(class_groups, dataset_classes)
    sets = {}
    seen = []
    for k, group in enumerate(class_groups):
        seen = seen + list(group)
        group_set = set(group)
        sets[f"phase{k}_train"] = _subset(train, seen, group_set, lambda names: bool(names & group_set))
        for part, coco in (("val", val), ("test", test)):
            if coco is not None:
                sets[f"phase{k}_{part}"] = _subset(coco, seen, set(seen), lambda names: True)
    for part, coco in (("train", train), ("val", val), ("test", test)):
        if coco is not None:
            sets[f"joint_{part}"] = _subset(coco, order, set(order), lambda names: True)
    return sets


def set_statistics(sets) -> pd.DataFrame:
    """Images and boxes per class per set (an image counts once per class it holds)."""
    rows = []
    for set_name, coco in sets.items():
        names = {c["id"]: c["name"] for c in coco["categories"]}
        df = pd.DataFrame([(a["image_id"], names[a["category_id"]]) for a in coco["annotations"]],
                          columns=["image_id", "class"])
        for cid, name in sorted(names.items()):
            sub = df[df["class"] == name]
            rows.append({"set": set_name, "class": name, "images": sub["image_id"].nunique(),
                         "boxes": len(sub)})
        rows.append({"set": set_name, "class": "(all)", "images": len(coco["images"]),
                     "boxes": len(coco["annotations"])})
    return pd.DataFrame(rows)


def box_orientation(train: dict, test: dict, elongation: float = 2.0, shift: float = 0.4) -> pd.DataFrame:
    """Per class, the share (%) of upright boxes (height >= elongation x width) and lying ones (width >=
    elongation x height) in the training and the test set; `shifted` marks a class whose share of either
    differs by at least `shift` between the two (n/a for a class in one set only): a model trained on one
    orientation is tested on another (NEU-DET's scratches: 88 % upright in training, 96 % lying in test;
    train.random_rotate90)."""
    def shares(coco):
        names = {c["id"]: c["name"] for c in coco["categories"]}
        df = pd.DataFrame([(names[a["category_id"]], a["bbox"][2], a["bbox"][3]) for a in coco["annotations"]],
                          columns=["class", "w", "h"])
        df = df.assign(upright=df.h >= elongation * df.w, lying=df.w >= elongation * df.h)
        return df.groupby("class")[["upright", "lying"]].mean()

    a, b = shares(train), shares(test)
    out = pd.DataFrame({"upright train %": a.upright, "upright test %": b.upright,
                        "lying train %": a.lying, "lying test %": b.lying})
    out = (100 * out).round(0)
    gap = 100 * shift  # on the rounded percentages shown: 70 vs 30 is a 40-point shift
    shifted = ((out["upright train %"] - out["upright test %"]).abs() >= gap) | \
        ((out["lying train %"] - out["lying test %"]).abs() >= gap)
    out["shifted"] = shifted.map({True: "yes", False: "no"}).where(out.notna().all(axis=1), "n/a")
    return out
