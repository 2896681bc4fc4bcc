"""Held-out sets: the test set of a dataset that ships no split of its own, and the validation set
carved from the training images (every default, ablation and hyper-parameter is chosen on it)."""
import copy
import random
from pathlib import PurePosixPath

VALIDATION_BY = ("image", "folder")  # the first: the default (a dataset's `validation_by`)


def seeded_split(items, test_fraction: float, seed: int):
    """Deterministic split: sort, shuffle with random.Random(seed), the first
    round(test_fraction * n) items are the test set. Returns (train, test), each sorted."""
    items = sorted(items)
    rng = random.Random(seed)
    rng.shuffle(items)
    n_test = round(test_fraction * len(items))
    return sorted(items[n_test:]), sorted(items[:n_test])


def image_classes(coco: dict) -> dict:
    """{image id: sorted tuple of the class names of its boxes}."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    found = {img["id"]: set() for img in coco["images"]}
    for a in coco["annotations"]:
        found[a["image_id"]].add(names[a["category_id"]])
    return {i: tuple(sorted(s)) for i, s in found.items()}


def validation_images(coco: dict, fraction: float, seed: int, by: str = VALIDATION_BY[0]) -> set:
    """The ids of the images held out for validation, a share `fraction` of coco's images, seeded.

    by "image": single images, stratified by the set of classes each holds (each stratum gives its
    share, so every class keeps its proportion); "folder": whole top-level folders of file_name (DeepPCB's
    board groups, whose images repeat one board: an image split would validate on boards it trained on),
    taken in seeded order while they fit in the share (at least one folder)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must lie in (0, 1), not {fraction}")
    rng = random.Random(seed)
    images = sorted(coco["images"], key=lambda i: i["file_name"])
    if by == "folder":
        folders = {}
        for img in images:
            folders.setdefault(PurePosixPath(img["file_name"]).parts[0], []).append(img["id"])
        order = sorted(folders)
        rng.shuffle(order)
        target, chosen = fraction * len(images), []
        for name in order:
            if sum(len(folders[n]) for n in chosen) + len(folders[name]) <= target:
                chosen.append(name)
        chosen = chosen or [min(order, key=lambda n: (len(folders[n]), n))]
        return {i for n in chosen for i in folders[n]}
    if by != "image":
        raise ValueError(f"validation by must be one of {VALIDATION_BY}, not {by!r}")
    classes = image_classes(coco)
    ranks = list(range(len(images)))
    rng.shuffle(ranks)
    # strata contiguous, shuffled within: every 1/fraction-th image of that order is held out
    ordered = sorted(zip(images, ranks), key=lambda p: (classes[p[0]["id"]], p[1]))
    return {img["id"] for k, (img, _) in enumerate(ordered) if int((k + 1) * fraction) > int(k * fraction)}


def split_off(coco: dict, image_ids: set):
    """(coco without the images `image_ids`, coco with only them), annotations following their images."""
    def keep(inside):
        out = {k: copy.deepcopy(v) for k, v in coco.items() if k not in ("images", "annotations")}
        out["images"] = [dict(i) for i in coco["images"] if (i["id"] in image_ids) == inside]
        out["annotations"] = [dict(a) for a in coco["annotations"] if (a["image_id"] in image_ids) == inside]
        return out
    return keep(False), keep(True)
