"""COCO-style evaluation with pycocotools: AP50 per class, mAP50 over old/new/all classes, AP@[.5:.95]."""
import contextlib
import io
import math

import numpy as np
from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.utils import comm
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def ap50_per_class(coco_gt: COCO, detections: list) -> tuple[dict, float]:
    """pycocotools' 101-point interpolated AP at IoU 0.5 per class (in %), and AP@[.5:.95] (in %).
    A class without ground truth in the set gets NaN."""
    names = {c["id"]: c["name"] for c in coco_gt.loadCats(coco_gt.getCatIds())}
    if not detections:
        ap = {n: (0.0 if coco_gt.getAnnIds(catIds=[cid]) else math.nan) for cid, n in names.items()}
        return ap, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (T iou, R recall, K class, A area, M maxdets)
    t50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    out = {}
    for k, cid in enumerate(ev.params.catIds):
        p = precision[t50, :, k, 0, -1]
        p = p[p > -1]
        out[names[cid]] = float(p.mean() * 100) if p.size else math.nan
    return out, float(ev.stats[0] * 100)


def nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


PER_CLASS_PREFIX = "AP50-"


def summarize(ap50: dict, ap: float, old_classes, new_classes) -> dict:
    """Flat metrics in percent, rounded to 0.01 (NaN where a class has no ground truth):
    mAP50, mAP50_old, mAP50_new, AP and AP50-<class> (the flat form detectron2's hooks expect)."""
    r = lambda v: v if math.isnan(v) else round(v, 2)
    out = {"mAP50": r(nanmean(ap50.values())), "mAP50_old": r(nanmean([ap50[c] for c in old_classes])),
           "mAP50_new": r(nanmean([ap50[c] for c in new_classes])), "AP": r(ap)}
    out.update({PER_CLASS_PREFIX + c: r(v) for c, v in ap50.items()})
    return out


def nest_per_class(flat: dict) -> dict:
    """AP50-<class> keys -> one AP50_per_class dict."""
    out = {k: v for k, v in flat.items() if not k.startswith(PER_CLASS_PREFIX)}
    out["AP50_per_class"] = {k[len(PER_CLASS_PREFIX):]: v for k, v in flat.items() if k.startswith(PER_CLASS_PREFIX)}
    return out


class DefectEvaluator(DatasetEvaluator):
    """Collects detections on a registered COCO-JSON dataset and scores them with pycocotools."""

    def __init__(self, dataset_name: str, old_classes=(), new_classes=None):
        meta = MetadataCatalog.get(dataset_name)
        self.coco_gt = _quiet(COCO, meta.json_file)
        self.classes = list(meta.thing_classes)
        self.old_classes = list(old_classes)
        self.new_classes = list(new_classes) if new_classes is not None else \
            [c for c in self.classes if c not in self.old_classes]
        self._cat_ids = sorted(self.coco_gt.getCatIds())
        self.reset()

    def reset(self):
        self.detections = []

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            dets = instances_to_coco_json(out["instances"].to("cpu"), inp["image_id"])
            for d in dets:  # contiguous class index -> COCO category id
                d["category_id"] = self._cat_ids[d["category_id"]]
            self.detections.extend(dets)

    def evaluate(self):
        """Scores on the main process, over every process's detections (each saw its share of the
        test set: detectron2's InferenceSampler); None on the others, as detectron2's evaluators."""
        detections = self.detections
        if comm.get_world_size() > 1:
            gathered = comm.gather(self.detections, dst=0)
            if not comm.is_main_process():
                return None
            detections = [d for part in gathered for d in part]
        ap50, ap = ap50_per_class(self.coco_gt, detections)
        return {"bbox": summarize(ap50, ap, self.old_classes, self.new_classes)}


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def evaluate_model(model, cfg, dataset: str, old_classes, new_classes) -> dict:
    """A model's scores on a registered dataset (pycocotools, DefectEvaluator): AP50 per class, mAP50
    old / new / all, AP@[.5:.95], in %. The pipeline's evaluation and `defect-il increment`'s, written once."""
    loader = build_detection_test_loader(cfg, dataset)
    return nest_per_class(inference_on_dataset(model, loader, DefectEvaluator(dataset, old_classes, new_classes))["bbox"])
