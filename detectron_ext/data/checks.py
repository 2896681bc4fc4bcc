"""Checks across a dataset's records (after each file has been read and checked on its own): empty
sets, one image listed twice, train/test overlap (by file or by identical content). What is legal but
worth a look (images without boxes, identical copies within a set, unusual image modes, EXIF-rotated
images) is counted, not changed: NEU-DET itself holds identical copies (patches_101 and _105)."""
from collections import Counter

from .errors import DatasetError


def _first_repeat(records):
    """The first two records naming the same image file, or None."""
    seen = {}
    for r in records:
        if r["file_name"] in seen:
            return seen[r["file_name"]], r
        seen[r["file_name"]] = r
    return None


def check_records(train: list, test: list, train_source, test_source) -> None:
    """DatasetError naming the file(s) behind the first problem; an empty set is named by its source
    (the dataset root, or the COCO file)."""
    for name, records, source in (("training", train, train_source), ("test", test, test_source)):
        if not records:
            raise DatasetError(source, f"the {name} set is empty")
        repeat = _first_repeat(records)
        if repeat:
            a, b = repeat
            raise DatasetError(b["source"], f"names the same image as {a['source']} ({b['file_name']}): "
                                            f"it appears twice in the {name} set")
    for key, what in (("file_name", "image"), ("digest", "image content")):
        in_train = {r[key]: r for r in train}
        for r in test:
            if r[key] in in_train:
                raise DatasetError(r["source"], f"test {what} {r['file_name']} is also in the training set "
                                                f"(via {in_train[r[key]]['source']}): train and test overlap")


def input_report(records: list) -> dict:
    """Counts of what is legal but unusual, for metrics/split_stats.md."""
    modes = Counter(r["mode"] for r in records)
    copies = Counter(r["digest"] for r in records)
    return {"images": len(records),
            "identical_copies": sum(n - 1 for n in copies.values()),  # the same pixels under another name
            "images_without_boxes": sum(not r["boxes"] for r in records),
            "exif_rotated": sum(bool(r["rotated"]) for r in records),
            "image_modes": dict(sorted(modes.items()))}
