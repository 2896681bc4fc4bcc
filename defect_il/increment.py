"""Your own increment: a saved model + a folder of new images labelled with new classes -> a model that
detects the old and the new classes, and a report of what it learnt and what it forgot. What
`defect-il increment` does.

The new data (a Pascal VOC folder or a COCO JSON file) may label more than the new classes: the classes
to learn are named (`classes`; default every labelled class) and the other labels are dropped and
counted. A new class named like an old one but for case, plural or punctuation is refused unless allowed.
The new classes are scored on a test folder the user gives, or else on a held-out share of the data
(seeded), and the report says which. The old classes are scored on their own test images (`old_test`,
or the test set the model folder names in test_set.json) before and after; without them the report says
that forgetting was not measured and how to measure it.
"""
import hashlib
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path

import torch
from detectron2.utils.logger import setup_logger

from detectron_ext.checkpoint import CheckpointError, WEIGHTS_FILE, load_model, load_model_config, model_test_set
from detectron_ext.data.checks import check_records
from detectron_ext.data.coco_format import class_names as coco_class_names
from detectron_ext.data.coco_format import load_coco, make_coco
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.holdout import seeded_split
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_coco_file
from detectron_ext.data.voc import voc_class_names, voc_folder, voc_records, voc_split_files
from detectron_ext.engine import ProgressBar, train_model
from detectron_ext.evaluation import evaluate_model
from detectron_ext.file_io import atomic_write_json, atomic_write_text, file_sha256, json_safe

from pipeline.config import increment_config
from pipeline.runs import resolve_method

HELD_OUT = "held-out share of the new data"
LISTED = "held-out images listed in the folder's ImageSets/Main"  # its own split (--test-fraction unused)


def labelled_classes(path) -> list:
    """Every class a VOC folder or COCO JSON file labels (VOC: sorted; COCO: in category id order)."""
    path = Path(path)
    if path.is_dir() and (path / "Annotations").is_dir():
        names = voc_class_names(sorted((path / "Annotations").glob("*.xml")))
        if not names:
            raise DatasetError(path / "Annotations", "no labelled objects in any .xml file")
        return names
    if path.is_file() and path.suffix.lower() == ".json":
        return coco_class_names(load_coco(path))  # (each entry is checked when the file is read)
    raise DatasetError(path, "neither a Pascal VOC folder (Annotations/, JPEGImages/) nor a COCO .json file")


def read_labelled(path, seed: int = 0, test_fraction: float = 0.2):
    """(train records, test records, root) of a VOC folder (its own ImageSets split if any) or a COCO JSON
    file, every labelled class kept, `test_fraction` held out (seeded)."""
    path = Path(path)
    classes = labelled_classes(path)
    if path.is_dir():
        _, train, test = voc_folder(path, classes, seed=seed, test_fraction=test_fraction)
        return train, test, path
    _, records, root = read_coco_file(path, classes)
    train_ids, test_ids = seeded_split(range(len(records)), test_fraction, seed)
    return [records[i] for i in train_ids], [records[i] for i in test_ids], root


def read_all(path) -> tuple:
    """(records, root) of every image of a VOC folder or COCO JSON file (a test set), every labelled class."""
    path = Path(path)
    classes = labelled_classes(path)
    if path.is_dir():
        xmls = sorted((path / "Annotations").glob("*.xml"))
        return voc_records(xmls, path / "JPEGImages", classes, dataset_root=path, desc=path.name), path
    _, records, root = read_coco_file(path, classes)
    return records, root


def keep_classes(records: list, keep) -> tuple:
    """(the records with the boxes of `keep` only, Counter of the dropped boxes by class)."""
    keep, dropped = set(keep), Counter()
    out = []
    for r in records:
        dropped.update(b[4] for b in r["boxes"] if b[4] not in keep)
        out.append({**r, "boxes": [b for b in r["boxes"] if b[4] in keep]})
    return out, dropped


def _name_forms(name: str) -> set:
    """A class name's forms up to case, punctuation and a plural s / es: 'Scratches', 'scratch',
    'scratch-es' share 'scratch'."""
    base = re.sub(r"[\W_]+", "", name.lower())
    forms = {base}
    for suffix in ("es", "s"):
        if base.endswith(suffix) and len(base) > len(suffix) + 2:
            forms.add(base[: -len(suffix)])
    return forms


def similar_names(new: list, old: list) -> list:
    """(new, old) pairs whose names differ only by case, plural or punctuation (identical names excluded)."""
    return [(n, o) for n in new for o in old if n != o and _name_forms(n) & _name_forms(o)]


def choose_new_classes(path, labelled: list, old: list, classes=None, allow_similar_names: bool = False) -> list:
    """The classes to learn: `classes` (each must be labelled in the data) or every labelled class; none may
    be the model's already, nor named like one of its classes unless allow_similar_names."""
    if classes:
        missing = [c for c in classes if c not in labelled]
        if missing:
            raise DatasetError(path, f"--classes names {missing}, which it does not label (it labels: "
                                     f"{', '.join(labelled)})")
    new = list(dict.fromkeys(classes or labelled))
    clash = [c for c in new if c in old]
    if clash:
        others = [c for c in new if c not in old]
        how = (f"pass --classes {' '.join(others)} to learn only those (the other labels are dropped and counted)"
               if others else "name the new defect types differently, or this is not new data")
        raise DatasetError(path, f"class(es) {clash} are already the model's ({', '.join(old)}): {how}")
    similar = similar_names(new, old)
    if similar and not allow_similar_names:
        n, o = similar[0]
        raise DatasetError(path, f"new class {n!r} is named like the model's {o!r} (case, plural or punctuation): "
                                 f"if it is the same defect, leave it out with --classes; if it is another, rename "
                                 f"it or pass --allow-similar-names")
    return new


def _check_boxes(new_data, new_test, train: list, test: list, new: list):
    """Each new class has a box to learn from and a box to be scored on."""
    for records, what, where in ((train, "training part", new_data),
                                 (test, "--test images" if new_test else "held-out share", new_test or new_data)):
        missing = [c for c in new if not any(b[4] == c for r in records for b in r["boxes"])]
        if missing:
            hint = "" if new_test or what == "training part" else " (give --test FOLDER, or a larger --test-fraction)"
            raise DatasetError(where, f"its {what} holds no box of the new class(es) {missing}{hint}")


def merge_by_image(records: list) -> list:
    """One record per image content (digest): an image given by two sets keeps the boxes of both, once."""
    merged = {}
    for r in records:
        if r["digest"] in merged:
            kept = merged[r["digest"]]
            seen = {(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2), c) for x1, y1, x2, y2, c in kept["boxes"]}
            kept["boxes"] = kept["boxes"] + [b for b in r["boxes"]
                                             if (round(b[0], 2), round(b[1], 2), round(b[2], 2), round(b[3], 2), b[4])
                                             not in seen]
        else:
            merged[r["digest"]] = {**r, "boxes": list(r["boxes"])}
    return list(merged.values())


RUN_FILE = "increment.json"  # in OUT/checkpoints: what the checkpoints were trained with


def _same_run_or_refuse(out_dir: Path, cfg, train_json: Path, teacher_weights: Path):
    """A rerun into the same -o resumes only the same increment (config, training data, teacher): anything
    else is refused in one line before a checkpoint of another run is loaded."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = cfg.MODEL.DISTILL.TEACHER_WEIGHTS = ""  # paths: the same run may be named another way
    fingerprint = {"config": hashlib.sha256(cfg.dump().encode()).hexdigest(),
                   "train_data": file_sha256(train_json), "teacher": file_sha256(teacher_weights)}
    path = out_dir / "checkpoints" / RUN_FILE
    started = (out_dir / "checkpoints" / "last_checkpoint").is_file()
    if started and path.is_file() and json.loads(path.read_text()) != fingerprint:
        raise CheckpointError(f"{out_dir}: holds an increment started with other settings (model, data, classes, "
                              f"method or parameters); rerun that one as it was, choose another -o, or delete "
                              f"{out_dir / 'checkpoints'} to start afresh")
    atomic_write_json(path, fingerprint)


def _register(name: str, records, classes, root, folder: Path) -> str:
    atomic_write_json(folder / f"{name}.json", make_coco(records, classes, root, name))
    register_coco_file(name, folder / f"{name}.json")
    return name


def _absolute(records, root) -> list:
    """Records whose file_name is absolute (sets of different roots in one COCO file)."""
    return [{**r, "file_name": str((Path(root) / r["file_name"]).resolve())} for r in records]


def _quiet_console(verbose: bool):
    """detectron2's INFO lines (the architecture, every 20 iterations) go to the log file only, unless verbose."""
    for name in ("detectron2", "detectron_ext", "d2", "fvcore"):
        for h in logging.getLogger(name).handlers:
            if getattr(h, "stream", None) in (sys.stdout, sys.stderr):
                h.setLevel(logging.INFO if verbose else logging.WARNING)


def increment(params: dict, model_dir, new_data, out_dir, method: str = "sdidd", classes=None, old_test=None,
              new_test=None, test_fraction: float = 0.2, allow_similar_names: bool = False,
              verbose: bool = False) -> dict:
    """Train the new model into out_dir/model/ (resumable from out_dir/checkpoints/) and write
    out_dir/report.{json,md}. `method`: finetune, erd, sdidd or a chain of params' `increments` (a variant,
    e.g. global_erdbox). Returns the report."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    name = method
    method, params = resolve_method(params, name)
    teacher_cfg = load_model_config(model_dir)
    if teacher_cfg.MODEL.META_ARCHITECTURE != "GFL":
        raise CheckpointError(f"{model_dir}: a {teacher_cfg.MODEL.META_ARCHITECTURE} model; SD-IDD, ERD and "
                              f"fine-tuning learn from a GFL model (the pipeline's gfl_* runs and every phase)")
    old = list(teacher_cfg.MODEL.CLASS_NAMES)
    new = choose_new_classes(new_data, labelled_classes(new_data), old, classes, allow_similar_names)
    everything = old + new
    train_records, test_records, root = read_labelled(new_data, int(params["seed"]), 0.0 if new_test else test_fraction)
    dropped = keep_classes(train_records + test_records, new)[1]  # the folder's labels that are not learnt
    train_records = keep_classes(train_records, new)[0]
    test_root = root
    if new_test:  # every new image trains; the user's own images score
        train_records += keep_classes(test_records, new)[0]
        test_records, test_root = read_all(new_test)
    test_records = keep_classes(test_records, everything)[0]  # the old classes' labels kept: the next test set
    check_records(train_records, test_records, new_data, new_test or new_data)
    _check_boxes(new_data, new_test, train_records, test_records, new)

    old_source = Path(old_test) if old_test else model_test_set(model_dir)
    old_records, old_root = read_all(old_source) if old_source is not None else ([], None)
    old_records = keep_classes(old_records, everything)[0]
    if old_source is not None and not any(b[4] in old for r in old_records for b in r["boxes"]):
        if old_test:
            raise DatasetError(old_test, f"labels none of the model's classes ({', '.join(old)}): the old classes' "
                                         f"test images are needed to measure forgetting")
        old_source, old_records = None, []  # the model's test set holds no old-class box: not measured

    data = out_dir / "data"
    key = f"increment_{out_dir.resolve().name}"
    train_set = _register(f"{key}_train", train_records, everything, root, data)
    test_set = _register(f"{key}_test", test_records, everything, test_root, data)
    cfg = increment_config(params, teacher_cfg, model_dir / WEIGHTS_FILE, new, method, len(train_records),
                           (train_set, test_set), out_dir / "checkpoints")
    _same_run_or_refuse(out_dir, cfg, data / f"{train_set}.json", model_dir / WEIGHTS_FILE)
    setup_logger(str(out_dir / "checkpoints"), name="detectron2")
    setup_logger(str(out_dir / "checkpoints"), name="detectron_ext")
    _quiet_console(verbose)
    counts = {c: sum(b[4] == c for r in train_records for b in r["boxes"]) for c in new}
    print(f"increment: {', '.join(old)} + {', '.join(new)} by {name}: {len(train_records)} training images "
          f"({', '.join(f'{c} {n}' for c, n in counts.items())} boxes), {cfg.SOLVER.MAX_ITER} iterations"
          + (f"; dropped the other labels ({', '.join(f'{c} {n}' for c, n in sorted(dropped.items()))} boxes)"
             if dropped else ""), flush=True)
    # the new model's own test set: the new classes' test images and the old classes' (where known), an
    # image given by both once, with the labels of both
    merged = merge_by_image(_absolute(test_records, test_root) + _absolute(old_records, old_root))
    atomic_write_json(data / "model_test_set.json", make_coco(merged, everything, "/", f"{key} test set"))
    train_model(cfg, out_dir / "model", test_set=data / "model_test_set.json", extra_hooks=[ProgressBar("increment")])

    student, student_cfg = load_model(out_dir / "model")
    student_cfg.DATASETS.TEST = (test_set,)
    torch.set_num_threads(student_cfg.SOLVER.NUM_THREADS)
    print("scoring the new model ...", flush=True)
    held_out = evaluate_model(student, student_cfg, test_set, old, new)
    report = {"model": str(out_dir / "model"), "from": str(model_dir), "method": name, "old_classes": old,
              "new_classes": new, "train_images": len(train_records), "iterations": cfg.SOLVER.MAX_ITER,
              "new_test": {"source": f"--test {new_test}" if new_test else
                           LISTED if Path(new_data).is_dir() and voc_split_files(new_data) else HELD_OUT,
                           "path": str(new_test or new_data), "images": len(test_records)},
              "new_classes_mAP50": held_out["mAP50_new"],
              "new_classes_AP50": {c: held_out["AP50_per_class"][c] for c in new},
              "dropped_classes": dict(sorted(dropped.items())), "old_test": None,
              "old_classes_mAP50_before": None, "old_classes_mAP50_after": None,
              "old_classes_AP50_before": None, "old_classes_AP50_after": None}
    if old_source is not None:
        teacher, _ = load_model(model_dir, device=student_cfg.MODEL.DEVICE)
        old_set = _register(f"{key}_old", old_records, everything, old_root, data)
        student_cfg.DATASETS.TEST = (old_set,)
        after = evaluate_model(student, student_cfg, old_set, old, new)
        before = evaluate_model(teacher, student_cfg, old_set, [], old)
        report.update(old_test={"path": str(old_source), "images": len(old_records),
                                "source": "--old-test" if old_test else "the model folder's test set"},
                      old_classes_mAP50_before=before["mAP50"], old_classes_mAP50_after=after["mAP50_old"],
                      old_classes_AP50_before={c: before["AP50_per_class"][c] for c in old},
                      old_classes_AP50_after={c: after["AP50_per_class"][c] for c in old})
    report = json_safe(report)  # an old class without a test box has no AP: null, shown as "-"
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
    return report


def report_markdown(r: dict) -> str:
    f = lambda v: "-" if v is None else f"{v:.1f}"
    t = r["new_test"]
    lines = [f"# Increment: {', '.join(r['old_classes'])} + **{', '.join(r['new_classes'])}** ({r['method']})", "",
             f"Model: `{r['model']}` (from `{r['from']}`), {r['train_images']} training images, "
             f"{r['iterations']} iterations."]
    if r["dropped_classes"]:
        lines += ["", "Labels dropped from the new data (not learnt as new classes): "
                  + ", ".join(f"{c} ({n} boxes)" for c, n in r["dropped_classes"].items()) + "."]
    where = (f"{t['images']} images of `{t['path']}` (--test)" if t["source"].startswith("--test") else
             f"{t['images']} images held out of `{t['path']}` ({t['source']}), the folder it learnt from: images "
             f"like its training images, so expect less on other images; give your own with --test")
    lines += ["", f"## New classes: AP50 (%) on {where}", "", "| class | AP50 |", "|---|---|"]
    lines += [f"| {c} | {f(v)} |" for c, v in r["new_classes_AP50"].items()]
    lines += [f"| **mAP50** | {f(r['new_classes_mAP50'])} |", ""]
    if r["old_test"] is None:
        lines += ["## Old classes: forgetting not measured", "",
                  "No test images of the old classes were given, and the model folder names none "
                  "(test_set.json). Rerun with `--old-test FOLDER` (a VOC folder or COCO .json labelled with "
                  f"{', '.join(r['old_classes'])}) to get each old class's AP50 before and after."]
    else:
        o = r["old_test"]
        lines += [f"## Old classes: AP50 (%) before -> after, on {o['images']} images of `{o['path']}` "
                  f"({o['source']})", "", "| class | old model | new model | change |", "|---|---|---|---|"]
        for c in r["old_classes"]:
            b, a = r["old_classes_AP50_before"][c], r["old_classes_AP50_after"][c]
            lines.append(f"| {c} | {f(b)} | {f(a)} | {'-' if a is None or b is None else f'{a - b:+.1f}'} |")
        b, a = r["old_classes_mAP50_before"], r["old_classes_mAP50_after"]
        lines.append(f"| **mAP50** | {f(b)} | {f(a)} | {'-' if a is None or b is None else f'{a - b:+.1f}'} |")
    return "\n".join(lines) + "\n"
