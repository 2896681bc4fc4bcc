"""Stage evaluate: COCO-style evaluation (pycocotools) of one trained run on its phase's
validation or test set (`evaluate.split`).

Usage: python stages/evaluate.py RUN
Writes metrics/RUN.json (AP50 per class, mAP50 old/new/all, AP@[.5:.95], in %; the best periodic
evaluation beside the final model's), metrics/RUN.md, and plots/RUN/samples/*.png (ground truth
left, predictions right).
"""
import sys

import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from detectron_ext.file_io import atomic_write_json, atomic_write_text
from pipeline.params import load_params, run_stage
from pipeline.runner import evaluate_run, per_class_table
from pipeline.runs import METRICS, run_spec


def main(name):
    params = load_params()
    spec = run_spec(params, name)
    metrics = evaluate_run(params, spec)
    atomic_write_json(METRICS / f"{spec.name}.json", metrics)
    atomic_write_text(METRICS / f"{spec.name}.md", per_class_table(metrics, spec))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    run_stage(main, sys.argv[1])
