"""Your own increment: a saved model + a folder of new images labelled with new classes -> a model that
detects the old and the new classes, and a report of what it learnt and what it forgot. What
`defect-il increment` does.

The new data (a Pascal VOC folder or a COCO JSON file) is split into a training part and a held-out
part (seeded). The student learns the new classes from the training part, distilled from the saved
model (SD-IDD by default; ERD or fine-tuning), with the schedule of params.yaml's active scale. Report:
mAP of the new classes on the held-out part; mAP of the old classes on an old test set when one is
given (the old model's beside it), and otherwise the agreement of the new model's old-class detections
with the old model's on the held-out new images (AP50 of the one against the other's as ground truth).
"""
import logging
import math
from pathlib import Path

import torch
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.utils.logger import setup_logger

from detectron_ext.checkpoint import CheckpointError, WEIGHTS_FILE, load_model, load_model_config, save_model
from detectron_ext.data.checks import check_records
from detectron_ext.data.coco_format import make_coco
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.holdout import seeded_split
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_coco_file
from detectron_ext.data.voc import voc_class_names, voc_folder, voc_records
from detectron_ext.engine import train
from detectron_ext.evaluation import DefectEvaluator, ap50_per_class, nanmean, nest_per_class
from detectron_ext.file_io import atomic_write_json, atomic_write_text
from detectron_ext.modeling.distill_gfl import detector_state, init_student_from_teacher

from .config import increment_config

AGREEMENT_SCORE = 0.3  # the old model's detections taken as ground truth for the agreement


def read_labelled(path, classes=None, seed: int = 0, test_fraction: float = 0.2):
    """(classes, train records, test records, root) of a VOC folder (Annotations/ + JPEGImages/; its own
    ImageSets split if any) or a COCO JSON file, split `test_fraction` held out (seeded)."""
    path = Path(path)
    if path.is_dir() and (path / "Annotations").is_dir():
        classes = list(classes or voc_class_names(sorted((path / "Annotations").glob("*.xml"))))
        if not classes:
            raise DatasetError(path / "Annotations", "no labelled objects in any .xml file")
        classes, train, test = voc_folder(path, classes, seed=seed, test_fraction=test_fraction)
        root = path
    elif path.is_file() and path.suffix.lower() == ".json":
        classes, records, root = read_coco_file(path, classes)
        train_ids, test_ids = seeded_split(range(len(records)), test_fraction, seed)
        train, test = [records[i] for i in train_ids], [records[i] for i in test_ids]
    else:
        raise DatasetError(path, "neither a Pascal VOC folder (Annotations/, JPEGImages/) nor a COCO .json file")
    check_records(train, test, path, path)
    return list(classes), train, test, root


def read_all(path, classes):
    """(records, root) of every image of a VOC folder or COCO JSON file (an old test set), `classes` only."""
    path = Path(path)
    if path.is_dir() and (path / "Annotations").is_dir():
        xmls = sorted((path / "Annotations").glob("*.xml"))
        if not xmls:
            raise DatasetError(path / "Annotations", "no .xml annotation files")
        return voc_records(xmls, path / "JPEGImages", classes, dataset_root=path, desc="old test set"), path
    if path.is_file() and path.suffix.lower() == ".json":
        _, records, root = read_coco_file(path, classes)
        return records, root
    raise DatasetError(path, "neither a Pascal VOC folder (Annotations/, JPEGImages/) nor a COCO .json file")


def _check_new_data(path, old: list, new: list, train: list):
    clash = [c for c in new if c in old]
    if clash:
        raise DatasetError(path, f"class(es) {clash} are already the model's ({', '.join(old)}): name the new "
                                 f"defect types differently, or this is not new data")
    counts = {c: sum(b[4] == c for r in train for b in r["boxes"]) for c in new}
    if not any(counts.values()):
        raise DatasetError(path, f"none of the new classes {new} is labelled in its training part")


def _register(name: str, records, classes, root, folder: Path) -> str:
    atomic_write_json(folder / f"{name}.json", make_coco(records, classes, root, name))
    register_coco_file(name, folder / f"{name}.json")
    return name


def _evaluate(model, cfg, dataset: str, old, new) -> dict:
    loader = build_detection_test_loader(cfg, dataset)
    return nest_per_class(inference_on_dataset(model, loader, DefectEvaluator(dataset, old, new))["bbox"])


def _agreement(teacher, student, cfg, dataset: str, old: list) -> dict:
    """AP50 per old class of the student's detections against the teacher's (score >= AGREEMENT_SCORE)
    as ground truth, on `dataset`'s images: 100 = the old classes are found as before."""
    from pycocotools.coco import COCO

    from detectron_ext.evaluation import _quiet

    loader = build_detection_test_loader(cfg, dataset)
    gt = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": c} for i, c in enumerate(old)]}
    dets = []
    with torch.no_grad():
        for inputs in loader:
            t_out, s_out = teacher(inputs)[0]["instances"].to("cpu"), student(inputs)[0]["instances"].to("cpu")
            image_id = inputs[0]["image_id"]
            gt["images"].append({"id": image_id, "height": inputs[0]["height"], "width": inputs[0]["width"]})
            t_out = t_out[t_out.scores >= AGREEMENT_SCORE]
            for box, cls in zip(t_out.pred_boxes.tensor.tolist(), t_out.pred_classes.tolist()):
                x1, y1, x2, y2 = box
                gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                          "category_id": cls + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                          "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
            s_out = s_out[s_out.pred_classes < len(old)]
            for box, cls, score in zip(s_out.pred_boxes.tensor.tolist(), s_out.pred_classes.tolist(),
                                       s_out.scores.tolist()):
                x1, y1, x2, y2 = box
                dets.append({"image_id": image_id, "category_id": cls + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                             "score": score})
    coco = COCO()
    coco.dataset = gt
    _quiet(coco.createIndex)
    ap, _ = ap50_per_class(coco, dets)
    ap = {c: (None if math.isnan(v) else round(v, 2)) for c, v in ap.items()}
    known = [v for v in ap.values() if v is not None]
    return {"agreement_AP50": round(nanmean(known), 2) if known else None, "agreement_AP50_per_class": ap,
            "old_model_detections": len(gt["annotations"])}


def increment(params: dict, model_dir, new_data, out_dir, method: str = "sdidd", classes=None, old_test=None,
              test_fraction: float = 0.2) -> dict:
    """Train the new model into out_dir/model/ (resumable from out_dir/checkpoints/) and write
    out_dir/report.{json,md}. Returns the report."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    teacher_cfg = load_model_config(model_dir)
    if teacher_cfg.MODEL.META_ARCHITECTURE != "GFL":
        raise CheckpointError(f"{model_dir}: a {teacher_cfg.MODEL.META_ARCHITECTURE} model; SD-IDD, ERD and "
                              f"fine-tuning learn from a GFL model (the pipeline's gfl_* runs and every phase)")
    old = list(teacher_cfg.MODEL.CLASS_NAMES)
    new, train_records, test_records, root = read_labelled(new_data, classes, int(params["seed"]), test_fraction)
    _check_new_data(new_data, old, new, train_records)
    everything = old + new
    data = out_dir / "data"
    key = f"increment_{out_dir.name}"
    train_set = _register(f"{key}_train", train_records, everything, root, data)
    test_set = _register(f"{key}_test", test_records, everything, root, data)

    cfg = increment_config(params, teacher_cfg, model_dir / WEIGHTS_FILE, new, method, len(train_records),
                           (train_set, test_set), out_dir / "checkpoints")
    setup_logger(str(out_dir / "checkpoints"), name="detectron2")
    setup_logger(str(out_dir / "checkpoints"), name="detectron_ext")
    logging.getLogger("detectron_ext").info(f"increment: {old} + {new} by {method}, {len(train_records)} training "
                                            f"images, {cfg.SOLVER.MAX_ITER} iterations")
    trainer = train(cfg, resume=True, init_weights=init_student_from_teacher)
    save_model(out_dir / "model", detector_state(trainer.model.state_dict()), cfg, cfg.SOLVER.MAX_ITER)

    student, student_cfg = load_model(out_dir / "model")
    student_cfg.DATASETS.TEST = (test_set,)
    torch.set_num_threads(student_cfg.SOLVER.NUM_THREADS)
    held_out = _evaluate(student, student_cfg, test_set, old, new)
    report = {"model": str(out_dir / "model"), "from": str(model_dir), "method": method, "old_classes": old,
              "new_classes": new, "train_images": len(train_records), "held_out_images": len(test_records),
              "iterations": cfg.SOLVER.MAX_ITER,
              "new_classes_mAP50": held_out["mAP50_new"],
              "new_classes_AP50": {c: held_out["AP50_per_class"][c] for c in new}}
    teacher, _ = load_model(model_dir, device=student_cfg.MODEL.DEVICE)
    if old_test:
        old_records, old_root = read_all(old_test, old)
        old_set = _register(f"{key}_old", old_records, everything, old_root, data)
        student_cfg.DATASETS.TEST = (old_set,)
        after = _evaluate(student, student_cfg, old_set, old, new)
        before = _evaluate(teacher, student_cfg, old_set, [], old)
        report.update(old_test=str(old_test), old_classes_mAP50=after["mAP50_old"],
                      old_classes_mAP50_before=before["mAP50"],
                      old_classes_AP50={c: after["AP50_per_class"][c] for c in old})
    else:
        report.update(_agreement(teacher, student, student_cfg, test_set, old))
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
    return report


def report_markdown(r: dict) -> str:
    f = lambda v: "-" if v is None else f"{v:.1f}"
    lines = [f"# Increment: {', '.join(r['old_classes'])} + **{', '.join(r['new_classes'])}** ({r['method']})", "",
             f"Model: `{r['model']}` (from `{r['from']}`), {r['train_images']} training images, "
             f"{r['iterations']} iterations; {r['held_out_images']} held-out images.", "",
             "| what | AP50 (%) |", "|---|---|",
             f"| new classes, held-out new images (mAP) | {f(r['new_classes_mAP50'])} |"]
    lines += [f"| {c} (new) | {f(v)} |" for c, v in r["new_classes_AP50"].items()]
    if "old_classes_mAP50" in r:
        lines += [f"| old classes on `{r['old_test']}`: new model (mAP) | {f(r['old_classes_mAP50'])} |",
                  f"| old classes on `{r['old_test']}`: old model (mAP) | {f(r['old_classes_mAP50_before'])} |"]
        lines += [f"| {c} (old) | {f(v)} |" for c, v in r["old_classes_AP50"].items()]
    else:
        lines += [f"| agreement with the old model on its classes (mAP; 100 = nothing forgotten) | "
                  f"{f(r['agreement_AP50'])} |"]
        lines += [f"| {c} (old, agreement) | {f(v)} |" for c, v in r["agreement_AP50_per_class"].items()]
        lines += ["", f"Agreement: the new model's old-class detections scored against the old model's "
                      f"(score >= {AGREEMENT_SCORE}, {r['old_model_detections']} boxes) on the held-out images; "
                      f"give an old test set (--old-test) for mAP against real labels."]
    return "\n".join(lines) + "\n"
