"""Train and evaluate one run (a RunSpec): what the train, evaluate and increment stages do."""
import json
import shutil

import cv2
import torch
from detectron2.data import DatasetCatalog, DatasetMapper
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from detectron_ext.checkpoint import load_model
from detectron_ext.data.register import register_coco_file
from detectron_ext.distributed import launch
from detectron_ext.engine import DISTILL_TRACE, EVAL_HISTORY, train_model
from detectron_ext.evaluation import evaluate_model
from detectron_ext.file_io import atomic_write_text, json_safe
from detectron_ext.modeling.backbone import convert_torchvision_checkpoint, is_torchvision_checkpoint
from detectron_ext.visualize import draw_gt_and_predictions

from .config import build_config, device
from .provenance import keep_record, provenance, read_record, same_inputs, start_record, training_record
from .runs import RunSpec, dataset_names
from .training_log import write_distill_trace, write_training_log


def train_run(params, spec: RunSpec):
    """Train a run, resuming from spec.checkpoint_dir (a changed config starts afresh); writes
    model_dir/{model_final.pth (the detector alone), config.yaml, eval_history.json} and plot_dir's
    training log (and, for a student, the per-iteration distillation trace). With params `launch`
    asking for several workers, they train it together (DDP; the batch is theirs together)."""
    ln = params["launch"]
    launch(_train_worker, ln["num_gpus"], ln["num_machines"], ln["machine_rank"], ln["dist_url"], device(params),
           args=(params, spec))


def _train_worker(params, spec: RunSpec):
    out_dir, model_dir = spec.checkpoint_dir, spec.model_dir
    train_set, val_set = dataset_names(spec)  # periodic evaluation (scales' eval_period) on the validation set
    register_coco_file(train_set, spec.train_json)
    register_coco_file(val_set, spec.val_json)
    images = json.loads(spec.train_json.read_text())["images"]
    cfg = build_config(params, spec, len(images), native_size=min(images[0]["width"], images[0]["height"]))
    if cfg.MODEL.WEIGHTS and is_torchvision_checkpoint(cfg.MODEL.WEIGHTS):
        cfg.MODEL.WEIGHTS = convert_torchvision_checkpoint(cfg.MODEL.WEIGHTS, out_dir / "imagenet_d2.pkl")

    rank = comm.get_rank()
    logger = setup_logger(str(out_dir), distributed_rank=rank, name="detectron2")
    setup_logger(str(out_dir), distributed_rank=rank, name="detectron_ext")
    config_file = out_dir / "config.yaml"
    if comm.is_main_process():
        record = training_record(params, spec)
        if config_file.exists() and config_file.read_text() != cfg.dump():
            logger.info(f"config changed since the checkpoints in {out_dir} were written: starting afresh")
            shutil.rmtree(out_dir)
        elif config_file.exists() and not same_inputs(read_record(out_dir), record):
            logger.info(f"training set or teacher changed (or unrecorded) since the checkpoints in {out_dir} were "
                        f"written: starting afresh")
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_file, cfg.dump())
        start_record(out_dir, params, record)
    comm.synchronize()

    # a student from its teacher, EfficientNet-Lite from ImageNet; the detector alone saved, with its test set
    # (`defect-il increment` scores the old classes on it)
    train_model(cfg, model_dir, test_set=spec.test_json)
    if not comm.is_main_process():
        return
    keep_record(out_dir, model_dir)
    history = out_dir / EVAL_HISTORY
    atomic_write_text(model_dir / EVAL_HISTORY, history.read_text() if history.exists() else "[]\n")
    title = f"{spec.name} ({spec.method or spec.detector}, {params['scale']} scale)"
    write_training_log(out_dir / "metrics.json", spec.plot_dir / "train_log.csv", spec.plot_dir / "train_log.png", title)
    if spec.teacher and (out_dir / DISTILL_TRACE).exists():  # fine-tuning distils nothing: no trace
        write_distill_trace(out_dir / DISTILL_TRACE, spec.plot_dir / "distill_trace.csv",
                            spec.plot_dir / "distill_trace.png", title)


def per_class_table(metrics, spec: RunSpec) -> str:
    lines = [f"# {spec.name}: AP50 per class (%) on the {metrics['split']} split, pycocotools 101-point, final model", "",
             "| class | group | AP50 |", "|---|---|---|"]
    for c, v in metrics["AP50_per_class"].items():
        group = "old" if c in spec.old_classes else "new"
        lines.append(f"| {c} | {group} | {'-' if v is None else f'{v:.1f}'} |")
    for key in ("mAP50_old", "mAP50_new", "mAP50", "AP"):
        v = metrics[key]
        lines.append(f"| **{key}** | | {'-' if v is None else f'{v:.1f}'} |")
    return "\n".join(lines) + "\n"


def evaluate_run(params, spec: RunSpec) -> dict:
    """pycocotools on the phase's validation or test set (params `evaluate.split`): returns the metrics (AP50 per class, mAP50 old/new/all,
    AP@[.5:.95], in %; the best periodic evaluation beside the final model's) and draws a few test
    images, ground truth beside predictions, into plot_dir/samples/."""
    setup_logger(name="detectron2")
    split = params["evaluate"]["split"]
    _, test_set = dataset_names(spec, split)
    register_coco_file(test_set, spec.eval_json(split))
    model, cfg = load_model(spec.model_dir)
    cfg.DATASETS.TEST = (test_set,)
    torch.set_num_threads(cfg.SOLVER.NUM_THREADS)

    metrics = evaluate_model(model, cfg, test_set, spec.old_classes, spec.new_classes)

    history = json.loads((spec.model_dir / EVAL_HISTORY).read_text())
    history = [h for h in history if h.get("mAP50") is not None]
    best = max(history, key=lambda h: h["mAP50"]) if history else None
    out = json_safe({"run": spec.name, "detector": spec.detector, "assigner": spec.assigner, "method": spec.method,
                    "teacher": spec.teacher,
                    "phase": spec.phase, "dataset": params["dataset"], "task": str(params.get("task", "default")),
                    "scale": params["scale"], "split": split, "iterations": cfg.SOLVER.MAX_ITER, **metrics,
                    "best_periodic": None if best is None else
                    {"split": "val", **{k: best[k] for k in ("iteration", "mAP50", "mAP50_old", "mAP50_new", "AP")}},
                    "provenance": provenance(params, spec)})

    dicts = DatasetCatalog.get(test_set)  # a few test images, evenly spaced through the set
    n = int(params["evaluate"]["num_images_drawn"])
    picks = [dicts[i * len(dicts) // n] for i in range(n)] if dicts and n else []
    sample_dir = spec.plot_dir / "samples"
    sample_dir.mkdir(parents=True, exist_ok=True)
    for old in sample_dir.glob("*.png"):
        old.unlink()
    mapper = DatasetMapper(cfg, is_train=False)  # as the test loader reads an image
    with torch.no_grad():
        for k, d in enumerate(picks):
            instances = model([mapper(d)])[0]["instances"]
            img = draw_gt_and_predictions(d, instances, test_set, params["evaluate"]["draw_score_thresh"])
            cv2.imwrite(str(sample_dir / f"sample_{k}.png"), img)
    print(f"{spec.name}: mAP50 {out['mAP50']} (old {out['mAP50_old']}, new {out['mAP50_new']}), AP {out['AP']}")
    return out
