"""Stage evaluate: COCO-style evaluation (pycocotools) of one trained run on its phase's test set.

Usage: python stages/evaluate.py RUN
Writes metrics/RUN.json (AP50 per class, mAP50 old/new/all, AP@[.5:.95], in %; the best periodic
evaluation beside the final model's), metrics/RUN.md, and plots/RUN/samples/*.png (ground truth
left, predictions right).
"""
import json
import sys

import cv2
import torch

import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

from detectron_ext import engine  # noqa: F401  (registers models, applies v0.6 fixes)
from detectron_ext.config import new_config
from detectron_ext.data.coco_format import atomic_write_json, atomic_write_text
from detectron_ext.data.register import register_coco_file
from detectron_ext.engine import EVAL_HISTORY, sanitize
from detectron_ext.evaluation import DefectEvaluator, nest_per_class
from detectron_ext.pipeline import METRICS, MODELS, PLOTS, dataset_spec, load_params, run_spec
from detectron_ext.visualize import draw_gt_and_predictions


def per_class_table(run_name, metrics, spec) -> str:
    lines = [f"# {run_name}: AP50 per class (%), pycocotools 101-point, final model", "",
             "| class | group | AP50 |", "|---|---|---|"]
    for c, v in metrics["AP50_per_class"].items():
        group = "old" if c in spec.old_classes else "new"
        lines.append(f"| {c} | {group} | {'-' if v is None else f'{v:.1f}'} |")
    for key in ("mAP50_old", "mAP50_new", "mAP50", "AP"):
        v = metrics[key]
        lines.append(f"| **{key}** | | {'-' if v is None else f'{v:.1f}'} |")
    return "\n".join(lines) + "\n"


def main(run_name: str):
    params = load_params()
    spec = run_spec(params, run_name)
    setup_logger(name="detectron2")
    test_set = f"{run_name}_test"
    register_coco_file(test_set, spec.test_json)
    cfg = new_config()
    cfg.merge_from_file(str(MODELS / run_name / "config.yaml"))
    cfg.DATASETS.TEST = (test_set,)
    if cfg.MODEL.META_ARCHITECTURE == "DistillGFL":  # a student's checkpoint is a plain GFL
        cfg.MODEL.META_ARCHITECTURE = "GFL"
    torch.set_num_threads(cfg.SOLVER.NUM_THREADS)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(str(MODELS / run_name / "model_final.pth"))
    model.eval()

    evaluator = DefectEvaluator(test_set, spec.old_classes, spec.new_classes)
    loader = build_detection_test_loader(cfg, test_set)
    metrics = nest_per_class(inference_on_dataset(model, loader, evaluator)["bbox"])

    history = json.loads((MODELS / run_name / EVAL_HISTORY).read_text())
    history = [h for h in history if h.get("mAP50") is not None]
    best = max(history, key=lambda h: h["mAP50"]) if history else None
    out = {"run": run_name, "detector": spec.detector, "method": spec.method, "teacher": spec.teacher,
           "phase": spec.phase, "dataset": params["dataset"],
           "scale": params["scale"], "iterations": cfg.SOLVER.MAX_ITER, **metrics,
           "best_periodic": None if best is None else
           {k: best[k] for k in ("iteration", "mAP50", "mAP50_old", "mAP50_new", "AP")}}
    out = sanitize(out)
    atomic_write_json(METRICS / f"{run_name}.json", out)
    atomic_write_text(METRICS / f"{run_name}.md", per_class_table(run_name, out, spec))

    # a few test images, evenly spaced through the set, ground truth beside predictions
    dicts = DatasetCatalog.get(test_set)
    n = int(params["evaluate"]["num_images_drawn"])
    picks = [dicts[i * len(dicts) // n] for i in range(n)] if dicts and n else []
    sample_dir = PLOTS / run_name / "samples"
    sample_dir.mkdir(parents=True, exist_ok=True)
    for old in sample_dir.glob("*.png"):
        old.unlink()
    with torch.no_grad():
        for k, d in enumerate(picks):
            inputs = loader.dataset[dicts.index(d)]
            instances = model([inputs])[0]["instances"]
            img = draw_gt_and_predictions(d, instances, test_set, params["evaluate"]["draw_score_thresh"])
            cv2.imwrite(str(sample_dir / f"sample_{k}.png"), img)
    print(f"{run_name}: mAP50 {out['mAP50']} (old {out['mAP50_old']}, new {out['mAP50_new']}), AP {out['AP']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
